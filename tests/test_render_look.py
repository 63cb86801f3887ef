"""The publisher's look on a phone: a real feed ingested, an issue composed and rendered with
a logo, a masthead and an accent, then measured in headless Chromium at 375 px, light and dark
(the harness of test_render_phone). Also the confirmation mail, from the real sign-up path."""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import new_workspace
from store_switch import store_at
from test_render_phone import browser, measure, problems  # noqa: F401 - browser is a fixture
from test_render_support import CONFIG_TOML, PERIOD_END, png_bytes

from digest.compose.build import compose_issue
from digest.ingest.sources import ingest_sources
from digest.render.personalise import config_greeting, personalise
from digest.render.variants import render_issue
from digest.signup import request_signup
from subscribers.tokens import load_secret

BODY = " ".join(["The harbour council met again to weigh the barrier's costs."] * 120)
FEED = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Riverside Review</title><link>https://riverside.example/</link>
<item><title>Council opens the tidal barrier a year early</title>
<link>https://riverside.example/barrier</link><category>World</category>
<author>reviews@riverside.example (Elena Fischer)</author>
<pubDate>Fri, 23 Jan 2026 05:00:00 +0000</pubDate>
<description>Crews worked through a dry autumn to finish early.</description>
<content:encoded><![CDATA[<p>{BODY}</p>]]></content:encoded></item>
<item><title>Ferries keep running late</title>
<link>https://riverside.example/ferries</link><category>World</category>
<author>Tom Baker &lt;tom@riverside.example&gt;</author>
<pubDate>Fri, 23 Jan 2026 04:00:00 +0000</pubDate>
<description>Timetables were written for older boats, operators say.</description></item>
<item><title>Tide tables reach version 2</title>
<link>https://riverside.example/tides</link><category>Technology</category>
<author>desk@riverside.example</author>
<pubDate>Fri, 23 Jan 2026 03:00:00 +0000</pubDate>
<description>The volunteer project now predicts tides for forty harbours.</description></item>
</channel></rss>
"""

BRAND = """logo = "brand/logo.png"
masthead = "News from the river, every morning"
accent_color = "#9d174d"
"""

# Runs in the page: font sizes of the headlines, the meta lines, the logo's attributes.
LOOK_JS = """
() => ({
  headlines: [...document.querySelectorAll('h3')].map(h => ({
    text: h.textContent.trim(), size: parseFloat(getComputedStyle(h).fontSize),
    meta: h.nextElementSibling ? h.nextElementSibling.textContent : ''})),
  logo: [...document.querySelectorAll('img')].filter(i => i.src.includes('/assets/logo')).map(i => ({
    width: i.getAttribute('width'), height: i.getAttribute('height'), alt: i.getAttribute('alt'),
    shown: i.getBoundingClientRect().width})),
  text: document.body.innerText,
  width: document.documentElement.scrollWidth,
})
"""


def _branded_workspace(folder: Path):
    """The render tests' workspace with BRAND in [render] and a 360×80 PNG logo."""
    config = CONFIG_TOML.replace("[render]\n", "[render]\n" + BRAND)
    ws = new_workspace(folder / "ws", config=config, db=False)
    (ws.path / "brand").mkdir()
    (ws.path / "brand" / "logo.png").write_bytes(png_bytes(360, 80, (157, 23, 77)))
    return ws


@pytest.fixture(scope="module")
def issue_html(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("look")
    ws = _branded_workspace(folder)
    feed = ws.path / "riverside.rss"
    feed.write_text(FEED, encoding="utf-8")
    config = ws.config
    db = store_at(config.db_path)
    (result,) = ingest_sources(db, config, [str(feed)], now=PERIOD_END)
    assert result.ok and result.new == 3
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert issue is not None
    html = render_issue(db, config, issue["id"]).html
    base = {
        "email": "ada@example.org",
        "unsubscribe_url": "https://news.example/unsubscribe/t0k3n",
        "preferences_url": "https://news.example/preferences/t0k3n",
    }
    greeting = config_greeting(config)
    return {
        "named": personalise(html, {**base, "name": "Ada Lovelace"}, html=True, greeting_pair=greeting),
        "anonymous": personalise(html, {**base, "name": ""}, html=True, greeting_pair=greeting),
    }


def look(browser, html: str, scheme: str) -> dict[str, Any]:  # noqa: F811 - the fixture
    context = browser.new_context(viewport={"width": 375, "height": 800}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())  # nothing leaves the machine
        page.set_content(html, wait_until="domcontentloaded")
        return page.evaluate(LOOK_JS)
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_issue_opens_with_a_larger_lead_and_meets_the_phone_thresholds(
    browser,  # noqa: F811 - the fixture
    issue_html: dict[str, str],
    scheme: str,
) -> None:
    seen = look(browser, issue_html["named"], scheme)
    lead, *others = seen["headlines"]
    assert lead["text"] == "Council opens the tidal barrier a year early"
    assert others and all(lead["size"] > h["size"] for h in others), seen["headlines"]
    found = problems(measure(browser, issue_html["named"], scheme))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_bylines_are_names_and_reading_time_only_where_the_article_is_known(
    browser,  # noqa: F811 - the fixture
    issue_html: dict[str, str],
    scheme: str,
) -> None:
    seen = look(browser, issue_html["named"], scheme)
    metas = {h["text"]: h["meta"] for h in seen["headlines"]}
    assert all("@" not in meta for meta in metas.values()), metas
    assert "By Elena Fischer" in metas["Council opens the tidal barrier a year early"]
    assert "By Tom Baker" in metas["Ferries keep running late"]
    assert "By" not in metas["Tide tables reach version 2"]  # only an address: left out
    assert "min read" in metas["Council opens the tidal barrier a year early"]  # full content in the feed
    assert "min read" not in metas["Ferries keep running late"]  # a summary alone
    assert "min read" not in metas["Tide tables reach version 2"]
    assert "Read more" not in seen["text"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_greeting_has_a_name_or_none_never_reader(
    browser,  # noqa: F811 - the fixture
    issue_html: dict[str, str],
    scheme: str,
) -> None:
    named = look(browser, issue_html["named"], scheme)["text"]
    anonymous = look(browser, issue_html["anonymous"], scheme)["text"]
    assert "Hello, Ada! Here are 3 stories." in named
    assert "Hello! Here are 3 stories." in anonymous
    assert "Reader" not in named and "Reader" not in anonymous


def test_the_logo_has_its_real_width_height_and_the_publication_as_alt(
    browser,  # noqa: F811 - the fixture
    issue_html: dict[str, str],
) -> None:
    (logo,) = look(browser, issue_html["named"], "light")["logo"]
    assert logo == {"width": "360", "height": "80", "alt": "The Harbour Gazette", "shown": 319}
    assert "News from the river, every morning" in issue_html["named"]
    assert 'src="https://news.harbour-gazette.example/assets/logo.png"' in issue_html["named"]


@pytest.fixture(scope="module")
def confirmation_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The HTML part of a confirmation mail, queued by the real sign-up path."""
    folder = tmp_path_factory.mktemp("confirm")
    ws = _branded_workspace(folder)
    config = ws.config
    db = store_at(config.db_path)
    row = request_signup(
        db, config, load_secret(config), email="a.very.long.address.indeed@example.org", send=False
    )
    (raw,) = db.execute("SELECT message FROM outbox WHERE id = ?", [row]).fetchone()
    data = raw if isinstance(raw, bytes) else raw.encode()
    message = email.message_from_bytes(data, policy=email.policy.SMTP)
    html = message.get_body(("html",)).get_content()
    assert "/confirm/" in html and "#9d174d" in html
    return html


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_confirmation_mail_fits_a_phone_in_light_and_dark(
    browser,  # noqa: F811 - the fixture
    confirmation_html: str,
    scheme: str,
) -> None:
    measured = measure(browser, confirmation_html, scheme)
    assert measured["width"] <= 375, f"{measured['width']} px wide at 375: it scrolls sideways"
    found = [p for p in problems(measured) if "tall" not in p]  # inline links in a sentence
    assert not found, "\n".join(found)
    assert re.search(r'<img [^>]*width="360" height="80" alt="The Harbour Gazette"', confirmation_html)


def test_a_stored_byline_with_an_address_is_a_name_when_rendered(tmp_path: Path) -> None:
    """Articles stored before bylines were cleaned at ingest are cleaned when rendered."""
    ws = new_workspace(tmp_path / "ws", config=CONFIG_TOML, db=False)
    config = ws.config
    db = store_at(config.db_path)
    feed = ws.path / "riverside.rss"
    feed.write_text(FEED, encoding="utf-8")
    ingest_sources(db, config, [str(feed)], now=PERIOD_END)
    db.execute("UPDATE articles SET author = 'old@riverside.example (Old Hand)'")
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert issue is not None
    assert json.loads(issue["snapshot"])["categories"][0]["articles"][0]["author"].startswith("old@")
    rendered = render_issue(db, config, issue["id"])
    for part in (rendered.html, rendered.text):
        assert "By Old Hand" in part and "old@riverside" not in part


@pytest.mark.parametrize("kind", ["welcome", "already-subscribed", "unsubscribe-confirm"])
def test_every_transactional_mail_fits_a_phone_in_dark_mode(
    browser,  # noqa: F811 - the fixture
    tmp_path: Path,
    kind: str,
) -> None:
    from digest.mail.outbox import render_transactional

    config = _branded_workspace(tmp_path).config
    token = "1.1796551437.S_gjDOUwmm2RZ-PsvUhopKncdenlzHbSnCoMgQZrLJk"
    links = {
        f"{name}_url": f"https://news.harbour-gazette.example/{name}/{token}"
        for name in ("confirm", "unsubscribe", "preferences", "archive", "latest")
    }
    context = {"name": "Ada", "email": "a.very.long.address.indeed@example.org", **links}
    _subject, _text, html = render_transactional(config, kind, context)
    measured = measure(browser, html, "dark")
    found = [p for p in problems(measured) if "tall" not in p]
    assert not found, "\n".join(found)
