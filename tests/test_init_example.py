"""`digest init --example`: the tour's sample files, written beside the config, never over a
file that is already there."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli
from digest.init import EXAMPLE_FILES

SAMPLES = Path(__file__).resolve().parent.parent / "digest" / "data" / "examples"


def test_init_example_writes_the_sample_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "ws"), "--example"])
    assert result.exit_code == 0, result.output
    assert sorted(EXAMPLE_FILES) == [
        "articles.jsonl",
        "bounces.mbox",
        "cleaned_members_export.csv",
        "dmarc.mbox",
        "feed.xml",
        "people.csv",
    ]
    for name in EXAMPLE_FILES:
        assert (tmp_path / "ws" / name).read_bytes() == (SAMPLES / name).read_bytes()
        assert f"Wrote sample {tmp_path / 'ws' / name}" in result.output
    assert "digest feeds add feed.xml" in result.output


def test_init_example_keeps_a_file_already_there_even_with_force(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "people.csv").write_text("email\nmine@example.org\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["init", str(ws), "--example", "--force"])
    assert result.exit_code == 0, result.output
    assert (ws / "people.csv").read_text(encoding="utf-8") == "email\nmine@example.org\n"
    assert f"Kept existing {ws / 'people.csv'}" in result.output
    assert (ws / "feed.xml").is_file()


def test_init_without_example_writes_no_sample(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["init", str(tmp_path / "ws")]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["digest.db", "digest.toml"]
