"""The issue on a phone: rendered at 375 px in headless Chromium (Playwright, the system's
Chromium, never a download), light and dark (``prefers-color-scheme`` emulated). Every
visible text must be ≥ 14 px (summaries ≥ 16 px) and ≥ 4.5:1 against its background
(WCAG AA); every link must be a tap target ≥ 44 px tall; every text must sit on a colour the
email sets itself (so a client that inverts colours inverts both)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from test_render_support import big_issue, enrich, fixture_issue, make_store

from digest.render.personalise import personalise
from digest.render.variants import render_issue

CHROMIUM = Path("/usr/bin/chromium")
MIN_FONT_PX = 14.0
MIN_SUMMARY_PX = 16.0
MIN_CONTRAST = 4.5
MIN_TAP_PX = 44.0

RECIPIENT = {
    "name": "Ada",
    "email": "ada@example.org",
    "unsubscribe_url": "https://news.harbour-gazette.example/unsubscribe/t0k3n",
    "preferences_url": "https://news.harbour-gazette.example/preferences/t0k3n",
}

# Runs in the page: one record per visible element with its own text, and per link.
MEASURE_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(',').map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const background = (el) => {
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a >= 0.99) return {colour: c, from: e.tagName};
    }
    return {colour: {r: 255, g: 255, b: 255, a: 1}, from: null};
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
  };
  const texts = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
    if (!own || !visible(el)) continue;
    const s = getComputedStyle(el);
    const bg = background(el);
    texts.push({
      text: own.slice(0, 60), tag: el.tagName, cls: el.className || el.parentElement.className,
      size: parseFloat(s.fontSize), colour: parse(s.color), bg: bg.colour, bgFrom: bg.from,
    });
  }
  const links = [...document.querySelectorAll('a[href]')].filter(visible).map(a => ({
    text: a.textContent.trim().slice(0, 60), height: a.getBoundingClientRect().height,
  }));
  return {texts, links, width: document.documentElement.scrollWidth};
}
"""


def luminance(c: dict[str, float]) -> float:
    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c["r"]) + 0.7152 * channel(c["g"]) + 0.0722 * channel(c["b"])


def contrast(a: dict[str, float], b: dict[str, float]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def problems(measured: dict[str, Any]) -> list[str]:
    """Every text and link below the thresholds, one line each."""
    out = []
    for t in measured["texts"]:
        where = f"{t['tag']}.{t['cls']} {t['text']!r}"
        if t["size"] < MIN_FONT_PX:
            out.append(f"{where}: {t['size']} px < {MIN_FONT_PX}")
        if "s" in str(t["cls"]).split() and t["size"] < MIN_SUMMARY_PX:
            out.append(f"{where}: summary {t['size']} px < {MIN_SUMMARY_PX}")
        ratio = contrast(t["colour"], t["bg"])
        if ratio < MIN_CONTRAST:
            out.append(f"{where}: contrast {ratio:.2f}:1 < {MIN_CONTRAST}")
        if t["bgFrom"] is None:
            out.append(f"{where}: on no background the email sets (a client's inversion may hide it)")
    for link in measured["links"]:
        if link["height"] < MIN_TAP_PX:
            out.append(f"link {link['text']!r}: {link['height']:.1f} px tall < {MIN_TAP_PX}")
    if measured["width"] > 375:
        out.append(f"page is {measured['width']} px wide at 375: it scrolls sideways")
    return out


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield b
        b.close()


def measure(browser, html: str, scheme: str) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 375, "height": 800}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())  # nothing leaves the machine
        page.set_content(html, wait_until="domcontentloaded")
        return page.evaluate(MEASURE_JS)
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_and_link_on_a_phone_meets_the_thresholds(browser, tmp_path: Path, scheme: str) -> None:
    config, db = make_store(tmp_path / "ws")
    issue = enrich(db, fixture_issue(config, db))
    html = personalise(render_issue(db, config, issue["id"]).html, RECIPIENT, html=True)
    assert "Also covered by" in html and "By Mara Quill" in html and "from the editor" in html
    measured = measure(browser, html, scheme)
    assert len(measured["texts"]) > 20 and len(measured["links"]) > 10
    found = problems(measured)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_trimmed_issue_meets_them_too(browser, tmp_path: Path, scheme: str) -> None:
    config, db = make_store(tmp_path / "ws")
    issue = big_issue(config, db, 150, words=60)
    rendered = render_issue(db, config, issue["id"])
    assert rendered.trimmed > 0
    found = problems(measure(browser, personalise(rendered.html, RECIPIENT, html=True), scheme))
    assert not found, "\n".join(found[:40])


def test_the_measurement_catches_the_old_small_grey_footer(browser) -> None:
    html = (
        '<html><body style="background:#eef0f3"><p style="font-size:12px;color:#6b7280">Footer</p>'
        '<a href="https://x.example/" style="font-size:14px">Unsubscribe</a></body></html>'
    )
    found = problems(measure(browser, html, "light"))
    assert any("12 px < 14" in f for f in found)
    assert any("contrast 4.23:1" in f for f in found)
    assert any("Unsubscribe" in f and "tall" in f for f in found)
