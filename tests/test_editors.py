"""`digest editors add|list|remove|link` against a real workspace: one line and exit 1 for bad
input, the database untouched."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import new_workspace
from store_switch import store_at
from web_process import SECRET

from digest.editors import InvalidSignin, redeem_signin


def _emails(ws) -> list[str]:
    db = ws.db()
    try:
        return [r[0] for r in db.execute("SELECT email FROM editors ORDER BY email")]
    finally:
        db.close()


def test_add_list_remove(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    added = ws.run_cli("editors", "add", "Editor@Example.org")
    assert added.exit_code == 0, added.output
    assert "Added editor editor@example.org" in added.output
    assert ws.run_cli("editors", "add", "second@example.org").exit_code == 0
    listing = ws.run_cli("editors", "list")
    assert listing.exit_code == 0
    assert "editor@example.org" in listing.output and "never" in listing.output
    removed = ws.run_cli("editors", "remove", "EDITOR@example.org")
    assert removed.exit_code == 0 and "Removed editor editor@example.org" in removed.output
    assert _emails(ws) == ["second@example.org"]


def test_bad_input_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    assert ws.run_cli("editors", "add", "editor@example.org").exit_code == 0
    for args, said in (
        (("add", "not an address"), "email"),
        (("add", "editor@example.org"), "already an editor"),
        (("remove", "nobody@example.org"), "is not an editor"),
        (("link", "nobody@example.org"), "is not an editor"),
    ):
        result = ws.run_cli("editors", *args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and said in lines[0], result.output
        assert "Traceback" not in result.output
    assert _emails(ws) == ["editor@example.org"]


def test_link_prints_a_single_use_sign_in_link(tmp_path: Path) -> None:
    ws = new_workspace(tmp_path / "ws")
    assert ws.run_cli("editors", "add", "editor@example.org").exit_code == 0
    result = ws.run_cli("editors", "link", "editor@example.org")
    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"http://localhost:8080/desk/signin/(\S+)\n", result.output)
    assert match, result.output
    db = store_at(ws.db_path)
    try:
        assert redeem_signin(db, SECRET.encode(), match.group(1))["email"] == "editor@example.org"
        try:
            redeem_signin(db, SECRET.encode(), match.group(1))
        except InvalidSignin as exc:
            assert "used already" in str(exc)
        else:
            raise AssertionError("a sign-in link worked twice")
    finally:
        db.close()
