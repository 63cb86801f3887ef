"""Rendering: golden output, size budget, MJML/premailer traps, placeholders, variants, templates.

Regenerate the golden files after an intended template change with
``UPDATE_GOLDEN=1 pytest tests/test_render.py`` and review the diff.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest
from test_render_support import big_issue, fixture_issue, make_store

from digest.errors import DigestError
from digest.render.personalise import PLACEHOLDERS, personalise
from digest.render.templating import bundled_templates_dir
from digest.render.variants import render_issue, stored_variant, variant_key

GOLDEN = Path(__file__).resolve().parent / "golden"
REPO = Path(__file__).resolve().parent.parent

RECIPIENT = {
    "name": "Ada Lovelace",
    "email": "ada@example.org",
    # As long as the real signed links.
    "unsubscribe_url": "https://news.harbour-gazette.example/unsubscribe/" + "x" * 60,
    "preferences_url": "https://news.harbour-gazette.example/preferences/" + "y" * 60,
}


@pytest.fixture
def store(tmp_path: Path):
    return make_store(tmp_path / "ws")


def _readable(html: str) -> list[str]:
    return re.sub(r">(?=<)", ">\n", html).splitlines(keepends=True)


def _check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(_readable(expected), _readable(actual), "golden", "actual", n=2))
        pytest.fail(f"{name} differs from the golden file (UPDATE_GOLDEN=1 to accept):\n{diff[:6000]}")


def test_golden_html_and_text(store) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    rendered = render_issue(db, config, issue["id"])
    _check_golden("issue.html", rendered.html)
    _check_golden("issue.txt", rendered.text)
    assert rendered.subject == "Daily Briefing #1: Tidal barrier opens a year early"
    assert rendered.variant == "*" and rendered.trimmed == 0


def test_html_pipeline_keeps_what_email_clients_need(store) -> None:
    config, db = store
    html = render_issue(db, config, fixture_issue(config, db)["id"]).html
    assert html.startswith("<!doctype html>")
    assert not re.search(r"</?mj-", html), "MJML left elements unconverted"
    assert "@media" in html and "!important" in html, "responsive rules were stripped"
    assert "<!--[if mso" in html, "Outlook conditional comments were lost"
    assert "<link" not in html
    # The CSS was inlined.
    assert re.search(r'<h3 style="[^"]*font-size:18px', html)
    # Untrusted text is escaped, never raw.
    assert "&lt;why&gt;" in html and "<why>" not in html


def test_entries_and_header_and_footer_carry_what_the_reader_needs(store) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    rendered = render_issue(db, config, issue["id"])
    html, text = rendered.html, rendered.text
    web = f"https://news.harbour-gazette.example/issues/{issue['id']}"
    for part in (html, text):
        assert "The Harbour Gazette" in part and "Daily Briefing #1" in part and "23 Jan 2026" in part
        assert "Estuary Wire" in part and "3 min read" in part
        assert "23 Jan 2026, 06:10" in part  # published 05:10 UTC, shown in Berlin time
        assert "Harbour Gazette Ltd, 4 Quay Lane" in part
        assert web in part
        for field in ("greeting", "email", "unsubscribe_url", "preferences_url"):
            assert PLACEHOLDERS[field] in part
        assert PLACEHOLDERS["name"] not in part  # the greeting says the name: never "Hi Reader"
    # The headline is the story's one link in HTML; the text part keeps one link per story.
    assert "Read more" not in html
    assert "Read more: https://news.harbour-gazette.example/2026/01/22/story-1" in text
    # Table of contents with counts, as plain text: no in-message anchors.
    assert re.search(r"World(&nbsp;|\xa0)\(2\)", html) and 'href="#' not in html
    assert "- World (2)" in text and "- Arts (1)" in text
    # Links survive in attributes, & escaped in HTML.
    assert f'href="{PLACEHOLDERS["unsubscribe_url"]}"' in html
    assert 'href="https://news.harbour-gazette.example/2026/01/22/story-1?ref=digest&amp;src=email"' in html


def test_text_part_has_the_same_titles_summaries_and_links_as_html(store) -> None:
    config, db = store
    rendered = render_issue(db, config, fixture_issue(config, db)["id"])
    import html as html_lib

    links_html = {html_lib.unescape(h) for h in re.findall(r'href="([^"#]+)"', rendered.html)}
    links_text = set(re.findall(r"(https?://\S+|__DIGEST_\w+_URL__)", rendered.text))
    assert links_html == links_text
    for title in ("Tidal barrier opens a year early", "Q&A: <why> ferries keep running late"):
        assert title in rendered.text and html_lib.escape(title, quote=False) in rendered.html
    flat_text = " ".join(rendered.text.split())
    assert "Engineers finished the barrier ahead of schedule" in flat_text
    assert "dock & turn around." in flat_text


def test_forty_articles_with_sixty_word_summaries_fit_under_100_kb(store) -> None:
    config, db = store
    issue = big_issue(config, db, 40, words=60)
    rendered = render_issue(db, config, issue["id"])
    assert rendered.trimmed == 0
    personalised = personalise(rendered.html, RECIPIENT, html=True)
    size = len(personalised.encode("utf-8"))
    assert size < 100_000, size
    assert personalised.count("<h3") == 40


def test_oversized_issue_keeps_the_newest_and_says_how_many_more(store) -> None:
    config, db = store
    issue = big_issue(config, db, 120, words=60)
    rendered = render_issue(db, config, issue["id"])
    personalised = personalise(rendered.html, RECIPIENT, html=True)
    assert len(personalised.encode("utf-8")) <= config.render.max_html_bytes
    assert 0 < rendered.trimmed < 120
    shown = 120 - rendered.trimmed
    assert personalised.count("<h3") == shown
    counts = [int(n) for n in re.findall(r"(\d+) more in \w+ in the web version", personalised)]
    assert sum(counts) == rendered.trimmed
    text_counts = [int(n) for n in re.findall(r"(\d+) more in \w+ in the web version", rendered.text)]
    assert text_counts == counts
    assert rendered.text.count("Read more: ") == shown
    # Newest kept, oldest dropped (plan 0 is the newest, 119 the oldest).
    assert (
        "council-weighs-plan-0-tidal" in personalised and "council-weighs-plan-119-tidal" not in personalised
    )
    # The footer stays, after the trimmed lists.
    assert RECIPIENT["unsubscribe_url"] in personalised
    assert personalised.index("more in Sport in the web version") < personalised.index("Unsubscribe")
    assert "Harbour Gazette Ltd" in personalised


def test_personalise_escapes_for_html_and_keeps_text_plain() -> None:
    template = f'<p>Hi {PLACEHOLDERS["name"]}</p><a href="{PLACEHOLDERS["unsubscribe_url"]}">x</a>'
    fields = {"name": "<script>alert('x')</script>", "unsubscribe_url": "https://e.example/u?a=1&b=2"}
    html = personalise(template, fields, html=True)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert 'href="https://e.example/u?a=1&amp;b=2"' in html
    text = personalise(f"Hi {PLACEHOLDERS['name']}\n{PLACEHOLDERS['email']}", fields, html=False)
    assert text == "Hi <script>alert('x')</script>\n"
    # No line can be smuggled in through a field, and an empty name reads naturally.
    assert personalise(PLACEHOLDERS["name"], {"name": "Eve\r\nBcc: x"}, html=False) == "Eve Bcc: x"
    assert personalise(PLACEHOLDERS["name"], {"name": ""}, html=False) == "Reader"


def test_placeholder_like_text_in_articles_is_not_filled(store) -> None:
    config, db = store
    from test_render_support import PERIOD_END, add_article

    from digest.compose.build import compose_issue

    add_article(db, title=f"Leak {PLACEHOLDERS['email']}", category="World", published_at=PERIOD_END)
    add_article(db, title="Normal", category="World", published_at=PERIOD_END.replace(hour=5), summary="fine")
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END.replace(hour=7)).issue
    rendered = render_issue(db, config, issue["id"])
    for part, as_html in ((rendered.html, True), (rendered.text, False)):
        filled = personalise(part, RECIPIENT, html=as_html)
        assert "Leak ada@example.org" not in filled


@pytest.mark.parametrize(
    "spelling", ["__digest_unsubscribe_url__", "__Digest_Unsubscribe_Url__", "__DIGEST_UNSUBSCRIBE_URL__"]
)
def test_no_case_or_filter_turns_untrusted_text_into_a_placeholder(store, spelling: str) -> None:
    """The text template prints ``category.name | upper``: a token in any case in a category,
    title, summary or source must stay dead in both parts after every filter."""
    config, db = store
    from test_render_support import PERIOD_END, add_article

    from digest.compose.build import compose_issue

    add_article(
        db,
        title=f"Title {spelling}",
        category=spelling,
        published_at=PERIOD_END,
        source=f"Source {spelling}",
        summary=f"Summary {spelling} end",
        url=f"https://news.example.org/a{spelling}b",
    )
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END.replace(hour=7)).issue
    rendered = render_issue(db, config, issue["id"])
    secret = "https://leak.example/unsubscribe"
    for part, as_html in ((rendered.html, True), (rendered.text, False)):
        filled = personalise(part, {**RECIPIENT, "unsubscribe_url": secret}, html=as_html)
        assert filled.count(secret) == part.count(PLACEHOLDERS["unsubscribe_url"]) == 1
        visible = filled.replace("\u2060", "")
        for label in ("Title ", "Source ", "Summary "):
            assert label + spelling in visible
        assert (spelling if as_html else spelling.upper()) in visible  # the heading, still readable
        assert "https://news.example.org/a_%5F" in filled


def test_variant_key() -> None:
    present = ["World", "Technology", "Science"]
    assert variant_key(None, present) == "*"
    assert variant_key(["World", "Technology", "Science", "Sport"], present) == "*"
    assert variant_key(["science", "world"], present) == '["Science","World"]'
    assert variant_key(["World", "Science"], present) == variant_key(["Science", "World"], present)
    assert variant_key(["Sport"], present) == "[]"


def test_variants_are_rendered_once_per_distinct_category_set(store) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    present = ["World", "Technology", "Science", "Arts"]
    follows = [
        None,
        ["World"],
        ["world"],
        ["Science", "World"],
        ["World", "Science"],
        present,
        ["Sport"],
        None,
    ]
    keys = [variant_key(c, present) for c in follows]
    for key in keys:
        if key != "[]":
            stored_variant(db, config, issue["id"], key)
    rows = {r["variant"] for r in db.query("SELECT variant FROM issue_variants")}
    assert rows == {"*", '["World"]', '["Science","World"]'}
    world = stored_variant(db, config, issue["id"], '["World"]')
    assert "Tidal barrier" in world.text and "Seagrass" not in world.text and "Seagrass" not in world.html
    assert "- Technology" not in world.text
    # The variant's own top story heads its subject; its next one leads the preheader.
    assert world.subject == "Daily Briefing #1: Tidal barrier opens a year early"
    assert world.preheader == "Q&A: <why> ferries keep running late"
    science = render_issue(db, config, issue["id"], '["Science"]')
    assert science.subject == "Daily Briefing #1: Seagrass meadows store more carbon than thought"
    with pytest.raises(DigestError, match="none of these categories"):
        render_issue(db, config, issue["id"], '["Sport"]')


def test_stored_variant_is_frozen_against_later_template_changes(store, tmp_path: Path) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    first = stored_variant(db, config, issue["id"], "*")
    override = tmp_path / "ws" / "my-templates" / "email"
    override.mkdir(parents=True)
    (override / "_footer.txt.j2").write_text("Custom footer {{ p.unsubscribe_url }}\n", encoding="utf-8")
    config.render.templates = "my-templates"
    assert "Custom footer" in render_issue(db, config, issue["id"]).text
    again = stored_variant(db, config, issue["id"], "*")
    assert (again.html, again.text) == (first.html, first.text)
    assert again.trimmed == first.trimmed == 0


def test_stored_variant_remembers_how_many_were_trimmed(store) -> None:
    config, db = store
    issue = big_issue(config, db, 120)
    first = stored_variant(db, config, issue["id"], "*")
    again = stored_variant(db, config, issue["id"], "*")
    assert first.trimmed > 0 and again.trimmed == first.trimmed


def test_stored_variant_trimmed_is_not_read_from_article_text(store) -> None:
    """A summary whose wrapped line says "7 more articles in the web version" must not make
    a stored, untrimmed variant claim 7 trimmed articles."""
    config, db = store
    from test_render_support import PERIOD_END, add_article

    from digest.compose.build import compose_issue

    add_article(
        db,
        title="Spoof",
        category="World",
        published_at=PERIOD_END,
        summary="7 more articles in the web version: https://elsewhere.example",
    )
    issue = compose_issue(db, config, "daily", period_end=PERIOD_END.replace(hour=7)).issue
    first = stored_variant(db, config, issue["id"], "*")
    assert "\n7 more articles in the web version" in first.text
    again = stored_variant(db, config, issue["id"], "*")
    assert first.trimmed == again.trimmed == 0


def test_override_folder_comes_first_and_missing_templates_name_every_path(store, tmp_path: Path) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    override = tmp_path / "ws" / "tpl" / "email"
    override.mkdir(parents=True)
    (override / "_footer.mjml.j2").write_text(
        '<mj-section><mj-column><mj-text>Sent by the harbour crew. <a href="{{ p.unsubscribe_url }}">'
        "Unsubscribe</a></mj-text></mj-column></mj-section>\n",
        encoding="utf-8",
    )
    config.render.templates = "tpl"
    assert "Sent by the harbour crew." in render_issue(db, config, issue["id"]).html
    (override / "issue.txt.j2").write_text('{% include "email/missing.txt.j2" %}', encoding="utf-8")
    with pytest.raises(DigestError) as err:
        render_issue(db, config, issue["id"])
    message = str(err.value)
    assert "email/missing.txt.j2" in message
    assert str(override.parent / "email" / "missing.txt.j2") in message
    assert str(bundled_templates_dir() / "email" / "missing.txt.j2") in message
    config.render.templates = "does-not-exist"
    with pytest.raises(DigestError, match="does-not-exist"):
        render_issue(db, config, issue["id"])


def test_bundled_templates_are_found_from_the_source_tree() -> None:
    assert bundled_templates_dir() == REPO / "templates"
    assert (bundled_templates_dir() / "email" / "issue.mjml.j2").is_file()


def test_unknown_mjml_elements_and_lost_footers_are_errors(store, tmp_path: Path) -> None:
    config, db = store
    issue = fixture_issue(config, db)
    override = tmp_path / "ws" / "tpl" / "email"
    override.mkdir(parents=True)
    config.render.templates = "tpl"
    footer = override / "_footer.mjml.j2"
    # mjml-python passes unknown elements through unconverted.
    footer.write_text(
        '<mj-section><mj-column><mj-buton href="{{ p.unsubscribe_url }}">Unsubscribe</mj-buton>'
        "</mj-column></mj-section>\n",
        encoding="utf-8",
    )
    with pytest.raises(DigestError, match="mj-buton"):
        render_issue(db, config, issue["id"])
    # A footer without the unsubscribe link never renders.
    footer.write_text(
        "<mj-section><mj-column><mj-text>Bye</mj-text></mj-column></mj-section>\n", encoding="utf-8"
    )
    with pytest.raises(DigestError, match="no unsubscribe link"):
        render_issue(db, config, issue["id"])
