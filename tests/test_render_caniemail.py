"""The issue's HTML against caniemail.com's data for Gmail, Outlook (Windows and iOS) and
Apple Mail, with @jsx-email/doiuse-email from npm (its data is bundled: runs offline).

Install the checker once with ``npm ci --prefix tests/caniemail`` (``.ci/run`` does);
without node or the package the test skips.

Every feature the checker marks unsupported fails the test, except the stated list below:
each is an enhancement whose absence the email survives (everything it needs is inlined),
or MJML's own client resets. A new one must be fixed, or argued for here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_render_support import big_issue, fixture_issue, make_store

from digest.render.personalise import personalise, sample_fields
from digest.render.variants import render_issue

CHECKER = Path(__file__).resolve().parent / "caniemail"
CLIENTS = ["gmail.*", "outlook.windows", "outlook.ios", "apple-mail.*"]

# (feature, client) → why the email is fine without it there.
ACCEPTED = {
    # The <style> block: dark mode, the phone font-size step and MJML's column widths.
    # Gmail's basic mobile-web view and Outlook for Windows ignore it; the inlined styles
    # carry the layout, sizes and colours on their own (the light scheme).
    ("@media", "gmail.mobile-webmail"): "dark/phone styles are an enhancement; all else is inlined",
    ("@media", "outlook.windows"): "dark/phone styles are an enhancement; all else is inlined",
    ("Type selector", "gmail.mobile-webmail"): "only in <style>; inlined as well",
    ("Class selector", "gmail.mobile-webmail"): "only in <style>; inlined as well",
    ("ID selector", "gmail.mobile-webmail"): "MJML's '#outlook a' reset, for Outlook.com only",
    ("Descendant combinator", "gmail.mobile-webmail"): "only in <style>; inlined as well",
    ("Chaining selectors", "gmail.mobile-webmail"): "only in <style> (dark mode)",
    ("Chaining selectors", "outlook.windows"): "only in <style> (dark mode)",
    # MJML's own resets and wrapper.
    ("outline", "outlook.windows"): "MJML's img reset (outline:none): nothing to reset there",
    ("word-spacing", "outlook.windows"): "MJML's body reset (word-spacing:normal)",
    ("<body> element", "outlook.ios"): "the body's background is repeated on MJML's wrapper div",
    # The hidden preheader: three ways to hide it, each client honours one.
    ("display:none", "gmail.mobile-webmail"): "preheader: max-height:0 + overflow:hidden hide it",
    ("overflow", "outlook.windows"): "preheader: mso-hide:all hides it in Outlook for Windows",
}


def check(html: str) -> list[tuple[str, str]]:
    """(feature, client) for every unsupported feature the checker reports."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (CHECKER / "node_modules" / "@jsx-email" / "doiuse-email").is_dir():
        pytest.skip("the caniemail checker is not installed: npm ci --prefix tests/caniemail")
    out = subprocess.run(
        [node, str(CHECKER / "check.js"), *CLIENTS],
        input=html,
        capture_output=True,
        text=True,
        cwd=CHECKER,
        timeout=120,
        check=True,
    ).stdout
    found = []
    for error in json.loads(out)["errors"]:
        parts = error.split("`")  # "`Feature` is not supported by `client`"
        assert len(parts) >= 4, error
        found.append((parts[1], parts[3]))
    return found


@pytest.mark.parametrize("kind", ["fixture", "trimmed"])
def test_no_feature_is_unsupported_in_gmail_outlook_or_apple_mail(tmp_path: Path, kind: str) -> None:
    config, db = make_store(tmp_path / "ws")
    config.render.images = True
    issue = fixture_issue(config, db) if kind == "fixture" else big_issue(config, db, 150)
    # A lead image on the first story, as ingest stores one (shown: render.images is on).
    snapshot = json.loads(issue["snapshot"])
    snapshot["categories"][0]["articles"][0]["image"] = {
        "url": "https://images.example/lead.jpg",
        "width": 1200,
        "height": 800,
    }
    db.execute("UPDATE issues SET snapshot = ? WHERE id = ?", [json.dumps(snapshot), issue["id"]])
    html = personalise(render_issue(db, config, issue["id"]).html, sample_fields(config), html=True)
    assert "<img" in html
    unexpected = sorted({f for f in check(html) if f not in ACCEPTED})
    assert not unexpected, "\n".join(
        f"{feature} is unsupported in {client}" for feature, client in unexpected
    )


def test_the_checker_catches_a_table_of_contents_anchor() -> None:
    html = '<!doctype html><html><body><a href="#world">World</a><h2 id="world">World</h2></body></html>'
    assert ("Local anchors", "gmail.ios") in check(html)
