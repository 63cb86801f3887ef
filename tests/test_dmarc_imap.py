"""DMARC reports read over IMAP from a real, private Dovecot (the harness of
tests/test_bounces_imap.py): stored, moved to `processed`, a hostile one to `rejected`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import new_workspace
from dmarc_fixtures import BOMB_XML, OUR_IP, SPOOFER_IP, aggregate_xml, record, report_mail
from test_bounces_imap import PASSWORD, USER, Dovecot, dovecot  # noqa: F401  (the fixture)


def test_reports_over_imap_are_stored_and_moved_and_a_bomb_is_rejected(
    tmp_path: Path,
    dovecot: Dovecot,  # noqa: F811  (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = new_workspace(tmp_path / "ws", config="", append='\n[dmarc]\nour_ips = ["192.0.2.0/28"]\n')
    now = int(time.time())
    good = aggregate_xml(
        "imap-1",
        [record(OUR_IP, 12, "pass", "pass"), record(SPOOFER_IP, 4, "fail", "fail")],
        begin=now - 86400,
    )
    dovecot.append(
        [report_mail(good, how="zip", name="imap-1"), report_mail(BOMB_XML, how="gzip", name="bomb")]
    )
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", PASSWORD)
    source = f"imap://{USER}@127.0.0.1:{dovecot.port}/INBOX"
    first = ws.run_cli("dmarc", "process", source)
    assert first.exit_code == 0, first.output
    assert "2 messages, 1 report stored; 1 rejected" in first.output
    assert PASSWORD not in first.output
    assert dovecot.count("INBOX") == 0 and dovecot.count("processed") == 1 and dovecot.count("rejected") == 1
    shown = {r["ip"]: r for r in json.loads(ws.run_cli("dmarc", "report", "--json").output)["ips"]}
    assert shown[OUR_IP]["messages"] == 12 and shown[SPOOFER_IP]["ours"] is False
    again = ws.run_cli("dmarc", "process", source)
    assert "0 messages" in again.output, again.output
