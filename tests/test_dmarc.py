"""`digest dmarc process` / `digest dmarc report` against a real maildir and mbox, with rua
reports written here (tests/dmarc_fixtures.py): gzipped, zipped and plain XML, one from a
spoofing IP, and hostile ones (an entity bomb, a decompression bomb, malformed XML)."""

from __future__ import annotations

import json
import mailbox
import time
from pathlib import Path

from click.testing import CliRunner
from conftest import Workspace, new_workspace
from dmarc_fixtures import BOMB_XML, OUR_IP, SPOOFER_IP, aggregate_xml, record, report_mail

from digest.cli import cli
from digest.config import load_config
from digest.doctor.dmarc import check_dmarc

DAY = 86400
OUR_IPS = '\n[dmarc]\nour_ips = ["192.0.2.0/28", "2001:db8::/64"]\n'


def _good_reports(now: float) -> list[bytes]:
    """Three receivers' reports: 10+20+5 messages from us, 3 from a spoofer, all in the last week."""
    google = aggregate_xml(
        "g-1",
        [record(OUR_IP, 10, "pass", "pass"), record(SPOOFER_IP, 3, "fail", "fail", "reject")],
        begin=int(now) - 2 * DAY,
    )
    microsoft = aggregate_xml(
        "m-1", [record(OUR_IP, 20, "pass", "fail")], begin=int(now) - DAY, org="microsoft"
    )
    yahoo = aggregate_xml("y-1", [record("192.0.2.11", 5, "fail", "pass")], begin=int(now) - DAY, org="yahoo")
    return [
        report_mail(google, how="gzip", name="g-1"),
        report_mail(microsoft, how="zip", name="m-1", org="microsoft"),
        report_mail(yahoo, how="xml", name="y-1", org="yahoo"),
    ]


def _hostile() -> list[bytes]:
    gzip_bomb = report_mail(b"<feedback>" + b" " * (150 * 1024 * 1024), how="gzip", name="gzip-bomb")
    return [
        report_mail(BOMB_XML, how="xml", name="entity-bomb"),
        gzip_bomb,
        report_mail(b"<feedback><report_metadata>", how="gzip", name="malformed"),
        b"Subject: not a report\r\nMessage-ID: <plain@x>\r\n\r\nhello\r\n",
    ]


def _maildir(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.Maildir(str(path), create=True)
    for data in messages:
        box.add(data)
    return path


def _workspace(tmp_path: Path, extra: str = OUR_IPS) -> Workspace:
    return new_workspace(tmp_path / "ws", config="", append=extra)


def test_reports_from_a_maildir_are_stored_summed_per_ip_and_moved(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    box = _maildir(tmp_path / "dmarc", _good_reports(time.time()))
    first = ws.run_cli("dmarc", "process", f"maildir:{box}")
    assert first.exit_code == 0, first.output
    assert "3 messages, 3 reports stored" in first.output
    assert len(list((box / ".processed" / "new").iterdir())) == 3
    assert list((box / "new").iterdir()) == []

    shown = ws.run_cli("dmarc", "report", "--days", "7", "--json")
    assert shown.exit_code == 0, shown.output
    ips = {row["ip"]: row for row in json.loads(shown.output)["ips"]}
    assert ips[OUR_IP] == {
        "ip": OUR_IP,
        "messages": 30,
        "dkim_pass_rate": 1.0,
        "spf_pass_rate": 0.3333,
        "ours": True,
    }
    assert ips["192.0.2.11"]["dkim_pass_rate"] == 0.0 and ips["192.0.2.11"]["ours"] is True
    assert ips[SPOOFER_IP] == {
        "ip": SPOOFER_IP,
        "messages": 3,
        "dkim_pass_rate": 0.0,
        "spf_pass_rate": 0.0,
        "ours": False,
    }

    text = ws.run_cli("dmarc", "report")
    spoof_line = next(line for line in text.output.splitlines() if line.startswith(SPOOFER_IP))
    assert "NOT OURS" in spoof_line
    assert "NOT OURS" not in next(line for line in text.output.splitlines() if line.startswith(OUR_IP))


def test_the_same_report_mailed_twice_is_stored_once(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    reports = _good_reports(time.time())
    box = _maildir(tmp_path / "dmarc", reports)
    assert ws.run_cli("dmarc", "process", f"maildir:{box}").exit_code == 0
    resent = [data.replace(b"Message-ID: <", b"Message-ID: <again-") for data in reports]
    _maildir(box, resent)
    again = ws.run_cli("dmarc", "process", f"maildir:{box}")
    assert "3 messages, 0 reports stored, 3 already stored" in again.output, again.output
    shown = json.loads(ws.run_cli("dmarc", "report", "--json").output)
    assert {row["ip"]: row["messages"] for row in shown["ips"]}[OUR_IP] == 30


def test_an_mbox_is_read_once(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    path = tmp_path / "dmarc.mbox"
    box = mailbox.mbox(str(path))
    for data in _good_reports(time.time()):
        box.add(data)
    box.close()
    first = ws.run_cli("dmarc", "process", f"mbox:{path}")
    assert "3 reports stored" in first.output, first.output
    second = ws.run_cli("dmarc", "process", f"mbox:{path}")
    assert "0 reports stored, 3 read before" in second.output, second.output


def test_hostile_reports_are_rejected_with_one_line_each_and_the_rest_is_read(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    box = _maildir(tmp_path / "dmarc", [*_hostile(), *_good_reports(time.time())])
    started = time.monotonic()
    result = ws.run_cli("dmarc", "process", f"maildir:{box}")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "7 messages, 3 reports stored; 4 rejected" in result.output
    rejected = [line for line in result.output.splitlines() if line.startswith("  rejected: ")]
    assert len(rejected) == 4, result.output
    assert any("DOCTYPE" in line for line in rejected)
    assert any("exceeds" in line for line in rejected)
    assert "Traceback" not in result.output
    assert len(list((box / ".rejected" / "new").iterdir())) == 4
    assert len(list((box / ".processed" / "new").iterdir())) == 3
    assert elapsed < 20, elapsed


def test_without_our_ips_nothing_is_flagged_and_the_report_says_how(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, extra="")
    box = _maildir(tmp_path / "dmarc", _good_reports(time.time()))
    ws.run_cli("dmarc", "process", f"maildir:{box}")
    shown = ws.run_cli("dmarc", "report")
    assert "NOT OURS" not in shown.output
    assert "set [dmarc] our_ips" in shown.output


def test_a_bad_cidr_is_one_line_naming_it(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, extra='\n[dmarc]\nour_ips = ["192.0.2.0/33"]\n')
    box = _maildir(tmp_path / "dmarc", _good_reports(time.time()))
    ws.run_cli("dmarc", "process", f"maildir:{box}")
    shown = ws.run_cli("dmarc", "report")
    assert shown.exit_code == 1
    assert "[dmarc] our_ips: '192.0.2.0/33' is not an IP address or CIDR" in shown.output
    assert "Traceback" not in shown.output


def test_old_reports_fall_outside_the_window(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    old = aggregate_xml("old-1", [record(OUR_IP, 99, "fail", "fail")], begin=int(time.time()) - 40 * DAY)
    box = _maildir(tmp_path / "dmarc", [report_mail(old, name="old-1"), *_good_reports(time.time())])
    ws.run_cli("dmarc", "process", f"maildir:{box}")
    recent = {
        r["ip"]: r["messages"] for r in json.loads(ws.run_cli("dmarc", "report", "--json").output)["ips"]
    }
    longer = ws.run_cli("dmarc", "report", "--days", "60", "--json").output
    assert recent[OUR_IP] == 30
    assert {r["ip"]: r["messages"] for r in json.loads(longer)["ips"]}[OUR_IP] == 129


def test_doctor_shows_the_last_weeks_pass_rates_when_there_are_reports(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    config = load_config(ws.config_file)
    assert check_dmarc(config) == []  # no reports: no line
    box = _maildir(tmp_path / "dmarc", _good_reports(time.time()))
    ws.run_cli("dmarc", "process", f"maildir:{box}")
    checks = check_dmarc(config)
    lines = [check.line() for check in checks]
    assert len(checks) == 1, lines
    assert "DKIM 86%" in checks[0].detail and "SPF 43%" in checks[0].detail, lines
    assert SPOOFER_IP in checks[0].detail and checks[0].status == "warn", lines


def test_digest_run_reads_the_dmarc_mailbox_and_a_hostile_report_does_not_stop_it(tmp_path: Path) -> None:
    from test_schedule_support import make_workspace

    ws = make_workspace(tmp_path / "ws")
    box = _maildir(tmp_path / "dmarc", [*_hostile()[:1], *_good_reports(time.time())])
    text = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(f'{text}\n[dmarc]\nsource = "maildir:{box}"\n', encoding="utf-8")
    run = CliRunner().invoke(cli, ["--config", str(ws.config_path), "run", "--at", "2026-11-02T07:05:00Z"])
    assert run.exit_code == 0, run.output
    assert "4 messages, 3 reports stored; 1 rejected" in run.output
    assert len(list((box / ".processed" / "new").iterdir())) == 3
    assert len(list((box / ".rejected" / "new").iterdir())) == 1
