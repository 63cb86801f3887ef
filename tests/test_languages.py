"""The reader's language: every shipped catalogue leaves no English built-in label in the
issue (HTML and text), the transactional mail or the web pages; right-to-left languages
are laid out right to left; a workspace's labels/<lang>.po overrides any string."""

from __future__ import annotations

import re
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po
from conftest import new_workspace
from delivery_fixtures import make_setup
from jinja2.ext import babel_extract
from mail_checks import spamassassin
from store_switch import store_at
from test_render_phone import browser  # noqa: F401 - a fixture
from test_render_support import PERIOD_END, add_article
from werkzeug.serving import make_server

from digest.compose.build import compose_issue
from digest.errors import DigestError
from digest.i18n import LOCALE_DIR, SHIPPED, direction, format_date, translations
from digest.mail.message import build_message
from digest.mail.outbox import KINDS, render_transactional
from digest.render.personalise import config_greeting, personalise
from digest.render.variants import render_issue
from digest.web import create_app
from subscribers.links import subscriber_links
from subscribers.store import add_subscriber
from subscribers.tokens import load_secret, make_token

# Every name in the test workspace is a made-up word, so any English word in the output
# is one of digest's own labels.
CONFIG = """
[publication]
name = "Zorblat Kwex"
from = "Zorblat Kwex <kwex@zorblat.example>"
base_url = "https://zorblat.example"
postal_address = "Vrax 4, Quillo"
timezone = "Europe/Berlin"
language = "{language}"

[editions.daily]
title = "Kwex Tagrit"
schedule = "0 7 * * *"
timezone = "Europe/Berlin"
window = "1d"
categories = ["Alfor", "Betrix"]
"""

ARTICLES = [
    ("Quazzle vorn plim", "Alfor", "Zorp quindle mave trosk vell.", "Yara Quenn"),
    ("Drevik samu toll", "Alfor", "Plint vosh kerramu drell.", ""),
    ("Minta grosh alu", "Betrix", "Vell quazz trimo pask.", "Olum Tresk"),
]
RECIPIENT = {
    "name": "",
    "email": "kwex@zorblat.example",
    "unsubscribe_url": "https://zorblat.example/unsubscribe/t0k",
    "preferences_url": "https://zorblat.example/preferences/t0k",
}
TRANSACTIONAL = {
    "confirm_url": "https://zorblat.example/confirm/t0k",
    "unsubscribe_url": "https://zorblat.example/unsubscribe/t0k",
    "preferences_url": "https://zorblat.example/preferences/t0k",
    "latest_url": "https://zorblat.example/issues/1",
    "archive_url": "https://zorblat.example/archive",
    # the editors' review and sign-in mail
    "issue_name": "Kwex Tagrit #4",
    "issue_subject": "Quazzle vorn plim",
    "due": "2026-01-23 07:00 Europe/Berlin",
    "stories": 3,
    "review_url": "https://zorblat.example/desk/review/t0k",
    "signin_url": "https://zorblat.example/desk/signin/t0k",
    "minutes": 15,
}
TRANSLATED = [lang for lang in SHIPPED if lang != "en"]


def english_labels() -> list[str]:
    """Every msgid of the English catalogue: the built-in labels."""
    with (LOCALE_DIR / "en" / "LC_MESSAGES" / "digest.po").open("rb") as handle:
        return [m.id for m in read_po(handle) if m.id and isinstance(m.id, str)]


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_catalogue_translates_every_label_with_the_same_placeholders(language: str) -> None:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "digest.po").open("rb") as handle:
        catalogue = {m.id: m.string for m in read_po(handle) if m.id}
    for msgid in english_labels():
        assert catalogue.get(msgid), f"{language}: {msgid!r} is not translated"
        placeholders = sorted(re.findall(r"\{\w+\}", msgid))
        assert sorted(re.findall(r"\{\w+\}", catalogue[msgid])) == placeholders, f"{language}: {msgid!r}"


def leftovers(text: str, language: str) -> list[str]:
    """The English label fragments (the text between placeholders) found in ``text``, but for
    those the language's own translation also contains (a word both languages share)."""
    words = translations(language)
    labels = english_labels()
    # A word of the language itself (Polish "to", German "Name") is not a leftover.
    native = "\n".join(words.gettext(msgid) for msgid in labels)
    found = []
    for msgid in labels:
        own = words.gettext(msgid) + "\n" + native
        for fragment in re.split(r"\{\w+\}", msgid):
            fragment = fragment.strip(" ,.:;!?()")
            whole = rf"(?<![\w-]){re.escape(fragment)}(?![\w-])"
            if not re.search(r"[A-Za-z]{2}", fragment) or re.search(whole, own):
                continue
            if re.search(whole, text):
                found.append(fragment)
    return sorted(set(found))


class _Text(HTMLParser):
    """The text a reader sees (and hears: alt, aria-label, title, placeholders), no CSS."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        for name, value in attrs:
            if name in ("alt", "aria-label", "title", "placeholder") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n".join(parser.parts)


def without_urls(text: str) -> str:
    return re.sub(r"https?://\S+", "", text)


def _workspace(folder: Path, language: str):
    ws = new_workspace(folder, config=CONFIG.format(language=language))
    db = store_at(ws.db_path)
    for i, (title, category, summary, author) in enumerate(ARTICLES):
        pk = add_article(
            db,
            title=title,
            category=category,
            summary=summary,
            published_at=PERIOD_END - timedelta(minutes=30 + i),
            source="Vellum Trosk",
            reading_minutes=4,
        )
        db["articles"].update(pk, {"author": author})
    return ws, db


def issue_parts(folder: Path, language: str) -> dict[str, str]:
    """The issue in ``language`` as a reader without a name gets it: subject, HTML, text."""
    ws, db = _workspace(folder, language)
    config = ws.config
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    assert issue is not None
    rendered = render_issue(db, config, issue["id"])
    greeting = config_greeting(config)
    return {
        "subject": rendered.subject,
        "html": personalise(rendered.html, RECIPIENT, html=True, greeting_pair=greeting),
        "text": personalise(rendered.text, RECIPIENT, html=False, greeting_pair=greeting),
    }


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_issue_has_no_english_label_left(tmp_path: Path, language: str) -> None:
    parts = issue_parts(tmp_path / "ws", language)
    words = translations(language)
    html, text = visible(parts["html"]), without_urls(parts["text"])
    assert leftovers(html, language) == [], f"{language}: English left in the HTML part"
    assert leftovers(text, language) == [], f"{language}: English left in the text part"
    for label in ("View in browser", "Unsubscribe", "Preferences", "Top story", "Read more"):
        assert words.gettext(label) in html + text, f"{language}: {label!r} is not shown translated"
    day = format_date(PERIOD_END.astimezone(ZoneInfo("Europe/Berlin")), language)
    assert day in html and day in text, f"{language}: the issue's date is not {day!r}"
    assert f'lang="{language}"' in parts["html"]
    assert f'dir="{direction(language)}"' in parts["html"]


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_transactional_mail_has_no_english_label_left(tmp_path: Path, language: str) -> None:
    ws = new_workspace(tmp_path / "ws", config=CONFIG.format(language=language), db=False)
    config = ws.config
    for kind in KINDS:
        for name, hold in (("", False), ("Quenn", True)):
            context = {"name": name, "email": "kwex@zorblat.example", "hold": hold, **TRANSACTIONAL}
            subject, text, html = render_transactional(config, kind, context)
            for part, shown in (
                ("subject", subject),
                ("text", without_urls(text)),
                ("html", without_urls(visible(html))),
            ):
                assert leftovers(shown, language) == [], f"{language} {kind} {part}: English left"
            assert f'dir="{direction(language)}"' in html


def _serve(config: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _get(url: str, data: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def web_pages(folder: Path, language: str) -> dict[str, str]:
    """Every page of the web app a reader can meet, served by the real app on loopback."""
    ws, db = _workspace(folder, language)
    config = ws.config
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    db["issues"].update(issue["id"], {"status": "sent", "sent_at": "2026-01-23T06:00:00Z"})
    reader = add_subscriber(db, "kwex@zorblat.example", name="Quenn", status="pending", source="cli")["id"]
    gone = add_subscriber(db, "vell@zorblat.example", status="unsubscribed", source="cli")["id"]
    db.conn.close()
    secret = load_secret(config)
    pages = {}
    served = _serve(config)
    base = next(served)
    try:
        paths = {
            "subscribe": "/subscribe",
            "archive": "/archive",
            "issue": f"/issues/{issue['id']}",
            "missing": "/nope",
            "confirm": f"/confirm/{make_token(secret, reader, 'confirm')}",
            "preferences": f"/preferences/{make_token(secret, reader, 'preferences')}",
            "unsubscribe": f"/unsubscribe/{make_token(secret, reader, 'unsubscribe')}",
            "unsubscribed already": f"/unsubscribe/{make_token(secret, gone, 'unsubscribe')}",
            "preferences of a leaver": f"/preferences/{make_token(secret, gone, 'preferences')}",
            "bad link": "/preferences/x.y.z",
        }
        for name, path in paths.items():
            pages[name] = _get(base + path)[1]
        pages["confirmed"] = _get(base + paths["confirm"], data=b"")[1]
        pages["signed up"] = _get(base + "/subscribe", data=b"email=new%40zorblat.example")[1]
        pages["bad address"] = _get(base + "/subscribe", data=b"email=not-an-address")[1]
        wrong = b"edition=nope&category=nope&timezone=Mars%2FBase"
        pages["preferences refused"] = _get(base + paths["preferences"], data=wrong)[1]
        pages["unsubscribed"] = _get(base + paths["unsubscribe"], data=b"")[1]
    finally:
        next(served, None)
    return pages


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_web_pages_have_no_english_label_left(tmp_path: Path, language: str) -> None:
    pages = web_pages(tmp_path / "ws", language)
    for name, html in pages.items():
        assert leftovers(visible(html), language) == [], f"{language}: English left on the {name} page"
        assert f'dir="{direction(language)}"' in html, f"{language}: the {name} page has no dir"


def test_every_label_in_the_templates_and_code_is_in_the_catalogue() -> None:
    """A new label must reach the catalogues (else every language would show it in English)."""
    root = Path(__file__).resolve().parent.parent
    used = set()
    for path in [*(root / "templates").rglob("*.j2"), *(root / "templates" / "web").glob("*.html")]:
        with path.open("rb") as handle:
            options = {"trim_blocks": "true", "lstrip_blocks": "true"}
            used |= {m[2] for m in babel_extract(handle, ("_", "gettext"), [], options) if m[2]}
    for path in (root / "digest").rglob("*.py"):
        used |= set(re.findall(r'(?:translate|gettext)\(\s*"([^"]+)"\s*\)', path.read_text("utf-8")))
    missing = sorted(used - set(english_labels()))
    assert missing == [], "labels missing from digest/locale/en/LC_MESSAGES/digest.po (and the others)"


def test_a_workspace_po_file_overrides_any_string_and_the_rest_stays_translated(tmp_path: Path) -> None:
    ws, db = _workspace(tmp_path / "ws", "de")
    (ws.path / "labels").mkdir()
    (ws.path / "labels" / "de.po").write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "Read more"\nmsgstr "Ganzen Artikel lesen"\n\n'
        'msgid "Unsubscribe"\nmsgstr "Newsletter abbestellen"\n\n'
        'msgid "Hello!"\nmsgstr "Moin!"\n',
        encoding="utf-8",
    )
    config = ws.config
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    rendered = render_issue(db, config, issue["id"])
    text = personalise(rendered.text, RECIPIENT, html=False, greeting_pair=config_greeting(config))
    assert "Ganzen Artikel lesen: https://" in text and "Weiterlesen" not in text
    assert "Newsletter abbestellen" in rendered.html and "Moin!" in text
    assert "Im Browser ansehen" in rendered.html  # not overridden: the shipped German
    _subject, mail_text, _html = render_transactional(
        config, "welcome", {"name": "", "email": "kwex@zorblat.example", **TRANSACTIONAL}
    )
    assert "Newsletter abbestellen: https://" in mail_text


def test_a_broken_override_file_is_named(tmp_path: Path) -> None:
    ws, db = _workspace(tmp_path / "ws", "de")
    (ws.path / "labels").mkdir()
    (ws.path / "labels" / "de.po").write_text('msgid "Read more"\nmsgstr:\n', encoding="utf-8")
    config = ws.config
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    with pytest.raises(
        DigestError, match=r"labels/de\.po: not a readable \.po catalogue .*; fix or remove it"
    ):
        render_issue(db, config, issue["id"])


def test_an_override_with_an_unknown_field_is_named(tmp_path: Path) -> None:
    ws, db = _workspace(tmp_path / "ws", "de")
    (ws.path / "labels").mkdir()
    (ws.path / "labels" / "de.po").write_text(
        'msgid "{n} min read"\nmsgstr "{minuten} Minuten"\n', encoding="utf-8"
    )
    config = ws.config
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END).issue
    wrong = r"labels/de\.po:\d+: the translation of '\{n\} min read' uses \{minuten\}; its fields: \{n\}"
    with pytest.raises(DigestError, match=wrong):
        render_issue(db, config, issue["id"])


def test_a_regional_tag_uses_its_language_and_its_own_date_style(tmp_path: Path) -> None:
    parts = issue_parts(tmp_path / "ws", "pt-BR")
    assert "Ler mais" in parts["text"] and leftovers(without_urls(parts["text"]), "pt") == []
    assert 'lang="pt-BR"' in parts["html"]


@pytest.mark.parametrize("language", ["ar", "he"])
def test_right_to_left_issues_and_pages_read_right_to_left_in_chromium(
    browser,  # noqa: F811 - the fixture
    tmp_path: Path,
    language: str,
) -> None:
    parts = issue_parts(tmp_path / "issue", language)
    pages = web_pages(tmp_path / "web", language)
    config = new_workspace(tmp_path / "mail", config=CONFIG.format(language=language), db=False).config
    context = {"name": "Quenn", "email": "kwex@zorblat.example", **TRANSACTIONAL}
    confirmation = render_transactional(config, "confirm", context)[2]
    shown = {"issue": parts["html"], "subscribe page": pages["subscribe"], "confirmation": confirmation}
    context = browser.new_context(viewport={"width": 375, "height": 800})
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort())  # nothing leaves the machine
        for name, html in shown.items():
            page.set_content(html, wait_until="domcontentloaded")
            seen = page.evaluate(
                """() => {
                  const p = [...document.querySelectorAll('p, h1, h3')].filter(e => e.innerText.trim());
                  return {
                    dir: document.documentElement.dir,
                    direction: getComputedStyle(document.body).direction,
                    aligned: p.map(e => getComputedStyle(e).textAlign),
                    width: document.documentElement.scrollWidth,
                  };
                }"""
            )
            assert seen["dir"] == "rtl" and seen["direction"] == "rtl", f"{language} {name}: {seen}"
            assert all(a in ("right", "start") for a in seen["aligned"]), f"{language} {name}: {seen}"
            assert seen["width"] <= 375, f"{language} {name} scrolls sideways"
    finally:
        context.close()


@pytest.mark.skipif(shutil.which("spamassassin") is None, reason="spamassassin is not installed")
@pytest.mark.parametrize("language", ["de", "ar", "ja"])
def test_a_translated_issue_still_scores_zero_with_spamassassin(tmp_path: Path, language: str) -> None:
    setup = make_setup(tmp_path / "ws", subscribers=2)
    db, config, issue = setup.db, setup.config, setup.issue
    config.publication.language = language
    rendered = render_issue(db, config, issue["id"], "*")
    assert translations(language).gettext("View in browser") in rendered.html
    sub = setup.subscribers[1]
    links = subscriber_links(config, load_secret(config), sub)
    who = {**links, "email": sub["email"], "name": sub["name"], "subscriber_id": sub["id"]}
    message = build_message(config, issue, rendered, who)
    assert len(message) <= 100_000 + 5_000  # the HTML part within its budget, plus headers and text
    score, rules, report = spamassassin(message, tmp_path / "home")
    assert score <= 0.0, report.split("Content analysis details")[-1]
    assert all(float(points) <= 0.0 for points, _ in rules), rules
