# ruff: noqa: F811  (pytest fixtures imported from test_web are redefined as arguments)
"""The archive: Atom feed, pagination, previous/next links, test links for drafts, the static build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
from test_web import Site, http, issues, site  # noqa: F401  (fixtures)

from digest.render.archive import PER_PAGE, issue_test_token
from digest.store.database import iso


def _more_sent_issues(site: Site, count: int, start_number: int = 100) -> list[int]:
    """Sent issue rows without articles (the archive lists rows; it does not render them)."""
    base = datetime(2025, 1, 1, 6, 0, tzinfo=UTC)
    ids = []
    for n in range(count):
        end = base + timedelta(days=n)
        ids.append(
            site.db["issues"]
            .insert(
                {
                    "edition": "daily",
                    "number": start_number + n,
                    "period_start": iso(end - timedelta(days=1)),
                    "period_end": iso(end),
                    "subject": f"Old issue {start_number + n}",
                    "status": "sent",
                    "created_at": iso(end),
                    "sent_at": iso(end),
                }
            )
            .last_pk
        )
    return ids


def test_the_feed_parses_and_lists_sent_issues_only(site: Site, issues: dict[str, int]) -> None:
    reply = http("GET", f"{site.url}/feed.atom")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/atom+xml")
    parsed = feedparser.parse(reply.body)
    assert not parsed.bozo, parsed.bozo_exception
    [entry] = parsed.entries
    assert entry.link == f"{site.url}/issues/{issues['sent']}"
    assert "Technology" in entry.summary and "World" in entry.summary
    assert entry.updated.startswith("2026-03-02")
    assert "@" not in reply.body  # no personal data (nor the sender's address)


def test_archive_pages_link_the_feed_and_paginate(site: Site) -> None:
    _more_sent_issues(site, PER_PAGE + 5)
    first = http("GET", f"{site.url}/archive")
    assert '<link rel="alternate" type="application/atom+xml"' in first.body
    assert 'href="/feed.atom"' in first.body
    assert first.body.count("Old issue") == PER_PAGE
    assert 'href="/archive?page=2"' in first.body and "Page 1 of 2" in first.body
    second = http("GET", f"{site.url}/archive?page=2")
    assert second.body.count("Old issue") == 5 and 'href="/archive"' in second.body
    assert '<link rel="alternate" type="application/atom+xml"' in second.body
    assert http("GET", f"{site.url}/archive?page=3").status == 404
    assert http("GET", f"{site.url}/archive?page=x").status == 404


def test_issue_pages_link_the_archive_and_their_neighbours(site: Site, issues: dict[str, int]) -> None:
    older = _more_sent_issues(site, 1, start_number=0)[0]  # number 0: before the sent issue (number 1)
    body = http("GET", f"{site.url}/issues/{issues['sent']}").body
    assert 'href="/archive"' in body
    assert f'href="/issues/{older}" rel="prev"' in body
    assert 'rel="next"' not in body  # the next one is a draft: not public


def test_a_draft_is_visible_with_its_test_link_only(site: Site, issues: dict[str, int]) -> None:
    draft = issues["draft"]
    good = http("GET", f"{site.url}/issues/{draft}/test/{issue_test_token(site.secret, draft)}")
    assert good.status == 200 and "Story number 100" in good.body
    assert good.headers["Cache-Control"] == "no-store"
    assert good.headers["Referrer-Policy"] == "no-referrer"
    wrong = issue_test_token(site.secret, issues["sent"])
    assert http("GET", f"{site.url}/issues/{draft}/test/{wrong}").status == 404
    assert http("GET", f"{site.url}/issues/{draft}").status == 404


def test_archive_build_writes_static_files(
    site: Site, issues: dict[str, int], run_cli, tmp_path: Path
) -> None:
    out = tmp_path / "public"
    result = run_cli("archive", "build", str(out))
    assert result.exit_code == 0, result.output
    sent, draft = issues["sent"], issues["draft"]
    index = (out / "index.html").read_text()
    assert f'href="issues/{sent}.html"' in index and 'href="style.css"' in index
    assert 'href="feed.atom"' in index
    page = (out / "issues" / f"{sent}.html").read_text()
    assert 'href="../index.html"' in page and "Story number 1 about technology" in page
    assert not (out / "issues" / f"{draft}.html").exists()
    parsed = feedparser.parse((out / "feed.atom").read_text())
    assert not parsed.bozo
    assert parsed.entries[0].link == f"http://localhost:8080/issues/{sent}.html"  # base_url from digest.toml
    assert (out / "style.css").read_text()


def test_a_trimmed_drafts_test_link_shows_its_latest_note(site: Site) -> None:
    """The untrimmed rendering behind a trimmed email is cached for published issues only:
    a draft's note can still change, and its test link (and, once sent, its public page)
    must not keep an old rendering."""
    from test_web import _article

    from digest.compose.build import compose_issue
    from digest.compose.notes import set_issue_note
    from digest.render.variants import render_issue

    end = datetime(2026, 3, 5, 6, 0, tzinfo=UTC)
    articles = [_article(300 + i, "World", end - timedelta(hours=i + 1)) for i in range(40)]
    site.db["articles"].insert_all(articles)
    draft = compose_issue(site.db, site.config, "daily", period_end=end).issue
    assert draft is not None
    site.config.render.max_html_bytes = 18_000  # the app shares this config: the email is trimmed
    link = f"{site.url}/issues/{draft['id']}/test/{issue_test_token(site.secret, draft['id'])}"
    set_issue_note(site.db, draft["id"], "First word from the desk.")
    first = http("GET", link)
    assert first.status == 200 and "First word from the desk." in first.body
    assert render_issue(site.db, site.config, draft["id"], "*").trimmed  # so the full one is served
    set_issue_note(site.db, draft["id"], "Second thoughts from the desk.")
    second = http("GET", link)
    assert "Second thoughts from the desk." in second.body and "First word" not in second.body


def test_archive_build_never_writes_through_a_planted_link(
    site: Site, issues: dict[str, int], run_cli, tmp_path: Path
) -> None:
    out = tmp_path / "public"
    (out / "issues").mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    sent = issues["sent"]
    # Every name the build once used for its temporary files, planted as links out of OUTDIR.
    planted = [".index.html.tmp", ".feed.atom.tmp", ".style.css.tmp", f"issues/.{sent}.html.tmp"]
    for name in planted:
        (out / name).symlink_to(outside)
    result = run_cli("archive", "build", str(out))
    assert result.exit_code == 0, result.output
    assert outside.read_text() == "keep me\n"
    assert "Story number 1 about technology" in (out / "issues" / f"{sent}.html").read_text()
    assert 'href="feed.atom"' in (out / "index.html").read_text()
    assert (out / "style.css").read_text() and (out / "feed.atom").read_text()
    assert not any(p.is_file() and not p.is_symlink() for p in out.rglob(".*"))  # no temp files left
