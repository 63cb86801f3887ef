"""One message in the bounce mailbox cannot stop bounce processing: a MIME nesting bomb or an
oversized message is moved to the `rejected` folder with a one-line reason, the others are read."""

from __future__ import annotations

import email
import mailbox
import subprocess
import sys
from pathlib import Path

from bounce_support import fill_maildir, fill_mbox, make_bounce_workspace, nesting_bomb, reader_dsn

from digest.bounces.classify import refusal
from digest.bounces.limits import MAX_DEPTH, MAX_MESSAGE_BYTES, scan_depth, tree_depth


def test_a_nesting_bomb_in_a_maildir_is_moved_to_rejected_and_the_rest_is_read(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    bomb = nesting_bomb(1000)
    assert 60_000 < len(bomb) < 70_000
    box = fill_maildir(tmp_path / "bounces", [bomb, reader_dsn("gone@example.com", mid="<after-bomb@relay>")])
    result = ws.invoke("bounces", "process", f"maildir:{tmp_path / 'bounces'}")
    assert result.exit_code == 0, result.output
    assert "1 new report: 1 hard" in result.output
    assert "1 rejected: nested 1000 deep (limit 20)" in result.output
    assert ws.status("gone@example.com") == "bounced"
    assert len(box) == 0
    rejected = box.get_folder("rejected")
    assert [rejected.get_bytes(k) for k in rejected.iterkeys()] == [bomb]
    assert len(box.get_folder("processed")) == 1
    listed = ws.invoke("bounces", "list")
    assert "rejected: nested 1000 deep (limit 20)" in listed.output
    # A second pass has nothing left to read.
    again = ws.invoke("bounces", "process", f"maildir:{tmp_path / 'bounces'}")
    assert again.exit_code == 0 and "0 new reports" in again.output


def test_nesting_just_within_the_limit_is_read_and_just_past_it_is_refused() -> None:
    assert refusal(nesting_bomb(MAX_DEPTH - 1)) is None
    assert refusal(nesting_bomb(MAX_DEPTH + 1)) == f"nested {MAX_DEPTH + 1} deep (limit {MAX_DEPTH})"
    # A boundary in RFC 2231 pieces, a part of a multipart/digest without a Content-Type (a
    # message/rfc822 by default), bare CR line ends: measured as the parser reads them.
    split = nesting_bomb(60).replace(b'boundary="b1"', b"boundary*0=b;boundary*1=1")
    assert refusal(split) == f"nested 60 deep (limit {MAX_DEPTH})"
    digest = (
        nesting_bomb(15)
        .replace(b"multipart/mixed", b"multipart/digest")
        .replace(
            b"\r\nContent-Type: multipart/digest;",
            b"\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/digest;",
        )
    )
    assert scan_depth(digest) == tree_depth(email.message_from_bytes(digest)) > MAX_DEPTH
    bare_cr = nesting_bomb(30).replace(b"\r\n", b"\r")
    assert scan_depth(bare_cr) == tree_depth(email.message_from_bytes(bare_cr)) == 30
    # What the parser builds is measured too, whatever the scan made of it.
    assert tree_depth(email.message_from_bytes(nesting_bomb(60))) == 60


def test_an_oversized_message_is_rejected_unparsed(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    big = reader_dsn("gone@example.com", mid="<big@relay>") + b"x" * MAX_MESSAGE_BYTES
    box = fill_maildir(tmp_path / "bounces", [big])
    result = ws.invoke("bounces", "process", f"maildir:{tmp_path / 'bounces'}")
    assert result.exit_code == 0, result.output
    assert "1 rejected: larger than 10 MB" in result.output
    assert ws.status("gone@example.com") == "active"
    assert len(box) == 0 and len(box.get_folder("rejected")) == 1


def test_a_nesting_bomb_in_an_mbox_is_remembered_as_rejected(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")
    fill_mbox(
        tmp_path / "bounces.mbox", [nesting_bomb(1000), reader_dsn("gone@example.com", mid="<m-1@relay>")]
    )
    source = f"mbox:{tmp_path / 'bounces.mbox'}"
    first = ws.invoke("bounces", "process", source)
    assert first.exit_code == 0, first.output
    assert "1 rejected: nested 1000 deep (limit 20)" in first.output
    assert ws.status("gone@example.com") == "bounced"
    before = ws.snapshot()
    again = ws.invoke("bounces", "process", source)
    assert again.exit_code == 0, again.output
    assert "0 new reports (2 seen before)" in again.output and "rejected" not in again.output
    assert ws.snapshot() == before


def test_the_bomb_is_refused_without_deep_recursion_in_a_small_stack(tmp_path: Path) -> None:
    """Refusing the bomb needs no deep recursion: it works even with a recursion limit of 150."""
    code = (
        "import sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from bounce_support import nesting_bomb\n"
        "from digest.bounces.classify import refusal\n"
        "sys.setrecursionlimit(150)\n"
        "print(refusal(nesting_bomb(5000)))\n"
    )
    root = Path(__file__).parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nested 5000 deep (limit 20)"


def test_a_maildir_message_is_read_no_further_than_the_limit(tmp_path: Path) -> None:
    from digest.bounces.sources import open_source

    box = mailbox.Maildir(str(tmp_path / "bounces"), create=True)
    box.add(b"Subject: big\r\n\r\n" + b"x" * (MAX_MESSAGE_BYTES * 2))
    source = open_source(f"maildir:{tmp_path / 'bounces'}")
    ((_handle, data),) = list(source.messages())
    assert len(data) == MAX_MESSAGE_BYTES + 1
