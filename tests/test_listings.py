"""Listings have a header row and aligned columns, counts agree in number, and markers
are explained where they are printed."""

from __future__ import annotations

from pathlib import Path


def test_feeds_list_has_a_header_and_aligned_columns(run_cli) -> None:
    run_cli("feeds", "add", "https://example.org/a.xml", "--category", "World", "--name", "A")
    run_cli("feeds", "add", "https://example.org/longer-feed.xml", "--name", "Longer name")
    lines = run_cli("feeds", "list").output.splitlines()
    assert lines[0].split() == ["ID", "URL", "NAME", "CATEGORY", "ARTICLES", "LAST", "FETCH"]
    assert len({line.index("never fetched") for line in lines[1:]}) == 1


def test_subscribers_list_has_a_header(run_cli) -> None:
    run_cli("subscribers", "add", "ada@example.org", "--name", "Ada", "--category", "World")
    lines = run_cli("subscribers", "list").output.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "EMAIL", "NAME", "EDITIONS", "CATEGORIES"]
    assert lines[1].split() == ["1", "active", "ada@example.org", "Ada", "all", "World"]


def test_articles_list_explains_the_estimated_date_marker(run_cli, tmp_path: Path) -> None:
    undated = tmp_path / "undated.jsonl"
    undated.write_text('{"title": "No date", "url": "https://example.org/nodate"}\n')
    assert run_cli("ingest", str(undated)).exit_code == 0
    dated = ["articles", "add", "--title", "Dated", "--url", "https://example.org/d"]
    assert run_cli(*dated, "--published", "2026-01-22T12:00:00+00:00").exit_code == 0
    lines = run_cli("articles", "list").output.splitlines()
    assert lines[0].split()[:2] == ["ID", "PUBLISHED"]
    marked = [line for line in lines if "No date" in line]
    assert marked and " ~ " in marked[0]
    assert " ~ " not in next(line for line in lines if "Dated" in line)
    assert lines[-1].startswith("~ the source gave no date")


def test_one_article_is_singular(run_cli) -> None:
    add = ["articles", "add", "--title", "Only one", "--url", "https://example.org/one"]
    assert run_cli(*add, "--published", "2026-01-22T12:00:00+00:00").exit_code == 0
    built = run_cli("issues", "build", "daily", "--date", "2026-01-23")
    assert "Built issue daily/1 with 1 article\n" in built.output


def test_deliveries_has_a_header_and_explains_variant_star(run_cli) -> None:
    add = ["articles", "add", "--title", "Hello", "--url", "https://example.org/h", "--category", "World"]
    assert run_cli(*add, "--published", "2026-01-22T12:00:00+00:00").exit_code == 0
    assert run_cli("subscribers", "add", "ada@example.org").exit_code == 0
    assert run_cli("issues", "build", "daily", "--date", "2026-01-23").exit_code == 0
    dry = run_cli("send", "daily/1", "--dry-run")
    assert "(* = the whole issue, every category)" in dry.output
    assert run_cli("send", "daily/1").exit_code == 0
    lines = run_cli("deliveries", "daily/1").output.splitlines()
    assert lines[0].split() == ["EMAIL", "STATUS", "VARIANT", "SENT/DUE", "LAST", "ERROR"]
    assert lines[1].split()[:3] == ["ada@example.org", "sent", "*"]
    assert lines[2] == "Issue daily/1 (sent): 1 sent"
    assert lines[3].startswith("Variant * is the whole issue")


def test_articles_list_refuses_a_span_or_date_out_of_range_in_one_line(run_cli) -> None:
    for option, value in (
        ("--since", "10000000d"),
        ("--since", "1000000000d"),
        ("--until", "99999999999999w"),
        ("--since", "0001-01-01T00:00+05:00"),
        ("--until", "9999-12-31T23:00-05:00"),
    ):
        result = run_cli("articles", "list", option, value)
        assert result.exit_code == 1, (value, result.output, result.exception)
        assert result.output.count("\n") == 1, result.output
        assert result.output.startswith(f"Error: {option} {value!r} is out of range"), result.output
        assert "Traceback" not in result.output
