"""`digest subscribers import`: each row's status from the file (other tools' exports), --status,
suppression of those who left, the counts by status, and consent columns into the consent log.

The fixtures in tests/fixtures/exports are shaped like Mailchimp's, Substack's, Buttondown's,
listmonk's and Ghost's exports, with made-up people.
"""

from __future__ import annotations

import json
import shutil
from contextlib import closing
from pathlib import Path

import pytest
from store_switch import store_at

from subscribers import importer

EXPORTS = Path(__file__).parent / "fixtures" / "exports"


@pytest.fixture(autouse=True, params=["ordinary", "bulk"])
def load_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs as a small file imports and as a bulk load (see tests/test_import.py)."""
    if request.param == "bulk":
        monkeypatch.setattr(importer, "_BULK_MIN_ROWS", 0)
        monkeypatch.setattr(importer, "_BYTES_PER_ROW", 1)
    return request.param


def _statuses(workspace: Path) -> dict[str, str]:
    with closing(store_at(workspace / "digest.db")) as conn:
        return dict(conn.execute("SELECT email, status FROM subscribers"))


def _import(run_cli, name: str, *args: str) -> dict:
    shutil.copy(EXPORTS / name, name)
    result = run_cli("subscribers", "import", name, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize(
    ("export", "expected"),
    [
        (
            "mailchimp_unsubscribed_members_export.csv",
            {
                "marguerite.oyelaran@example.org": "unsubscribed",
                "ansel.brightwater@example.com": "unsubscribed",
            },
        ),
        (
            "mailchimp_cleaned_members_export.csv",
            {"nobody.here@example.org": "bounced", "gone.mailbox@example.net": "bounced"},
        ),
        (
            "mailchimp_subscribed_members_export.csv",
            {"wren.alvarez@example.org": "active", "tobias.quill@example.net": "active"},
        ),
        (
            "substack_subscribers.csv",
            {
                "ilse.vanterpool@example.org": "active",
                "rafe.kettleborough@example.com": "active",
                "odile.fenwick@example.net": "unsubscribed",
            },
        ),
        (
            "buttondown_subscribers.csv",
            {
                "pim.hollander@example.org": "active",
                "sunniva.drake@example.com": "unsubscribed",
                "casimir.wold@example.net": "bounced",
                "ottilie.brand@example.org": "pending",
                "lucan.merrow@example.com": "active",
            },
        ),
        (
            "listmonk_subscribers.csv",
            {
                "hester.ambrose@example.org": "active",
                "ivo.castellane@example.com": "unsubscribed",  # enabled, but unsubscribed from the list
                "juno.pardee@example.net": "unsubscribed",  # blocklisted
                "kestrel.ng@example.org": "pending",
            },
        ),
        (
            "ghost_members.csv",
            {
                "bryony.keel@example.org": "active",
                "dorian.faulk@example.com": "unsubscribed",
                "elspeth.moor@example.net": "active",
            },
        ),
    ],
)
def test_each_exporters_status_is_stored(run_cli, workspace: Path, export: str, expected: dict) -> None:
    report = _import(run_cli, export)
    assert _statuses(workspace) == expected
    counts: dict[str, int] = {}
    for status in expected.values():
        counts[status] = counts.get(status, 0) + 1
    if export.startswith("mailchimp_subscribed"):
        counts = {"": 2}  # no status column: new rows are active, known ones keep theirs
    assert report["statuses"] == counts


def test_people_who_left_are_never_made_active_by_a_later_import(run_cli, workspace: Path) -> None:
    _import(run_cli, "mailchimp_unsubscribed_members_export.csv")
    _import(run_cli, "mailchimp_cleaned_members_export.csv")
    # The same people again, in a plain list and with --status active: still not active.
    Path("again.csv").write_text(
        "email\nmarguerite.oyelaran@example.org\nnobody.here@example.org\nfresh@example.org\n",
        encoding="utf-8",
    )
    for args in ((), ("--status", "active")):
        result = run_cli("subscribers", "import", "again.csv", *args, "--json")
        assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["suppressed"] == 2
    statuses = _statuses(workspace)
    assert statuses["marguerite.oyelaran@example.org"] == "unsubscribed"
    assert statuses["nobody.here@example.org"] == "bounced"
    assert statuses["fresh@example.org"] == "active"
    # Nobody who left is eligible for an issue.
    result = run_cli("subscribers", "list", "--status", "active", "--json")
    assert [r["email"] for r in json.loads(result.output)] == ["fresh@example.org"]


def test_an_unsubscribed_export_unsubscribes_a_known_active_reader(run_cli, workspace: Path) -> None:
    assert run_cli("subscribers", "add", "ansel.brightwater@example.com").exit_code == 0
    report = _import(run_cli, "mailchimp_unsubscribed_members_export.csv")
    assert (report["added"], report["updated"]) == (1, 1)
    assert _statuses(workspace)["ansel.brightwater@example.com"] == "unsubscribed"
    with closing(store_at(workspace / "digest.db")) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM events ORDER BY id")]
    assert "unsubscribe" in kinds


def test_status_option_for_a_file_without_one(run_cli, workspace: Path) -> None:
    Path("left.csv").write_text(
        "email,name\nold.one@example.org,Old\nold.two@example.org,\n", encoding="utf-8"
    )
    dry = run_cli("subscribers", "import", "left.csv", "--status", "unsubscribed", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "By status: 2 unsubscribed." in dry.output
    assert _statuses(workspace) == {}
    result = run_cli("subscribers", "import", "left.csv", "--status", "bounced")
    assert result.exit_code == 0, result.output
    assert _statuses(workspace) == {"old.one@example.org": "bounced", "old.two@example.org": "bounced"}


def test_status_option_is_refused_for_a_file_that_says_the_status(run_cli, workspace: Path) -> None:
    shutil.copy(EXPORTS / "mailchimp_unsubscribed_members_export.csv", "unsub.csv")
    shutil.copy(EXPORTS / "listmonk_subscribers.csv", "listmonk.csv")
    shutil.copy(EXPORTS / "mailchimp_cleaned_members_export.csv", "cleaned.csv")
    for name, said in (
        ("unsub.csv", "Mailchimp's unsubscribed export"),
        ("listmonk.csv", "status, subscription_status"),
        ("cleaned.csv", "Mailchimp's cleaned export"),
    ):
        result = run_cli("subscribers", "import", name, "--status", "active")
        assert result.exit_code == 1
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
        assert said in result.output and "--status is only for a file without one" in result.output
    assert _statuses(workspace) == {}


def test_dry_run_prints_the_counts_by_status(run_cli, workspace: Path) -> None:
    shutil.copy(EXPORTS / "buttondown_subscribers.csv", "bd.csv")
    result = run_cli("subscribers", "import", "bd.csv", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run, nothing written: bd.csv: 5 added" in result.output
    assert "By status: 1 pending, 2 active, 1 unsubscribed, 1 bounced." in result.output
    assert _statuses(workspace) == {}


def test_an_unknown_status_value_names_the_row_and_column(run_cli, workspace: Path) -> None:
    Path("odd.csv").write_text("email,subscribed_to_emails\na@example.org,true\nb@example.org,maybe\n")
    result = run_cli("subscribers", "import", "odd.csv")
    assert result.exit_code == 1
    assert "line 3: subscribed_to_emails 'maybe' is not a status digest knows: true or false" in result.output
    assert _statuses(workspace) == {}


def test_consent_columns_go_into_the_consent_log(run_cli, workspace: Path) -> None:
    report = _import(run_cli, "mailchimp_subscribed_members_export.csv")
    assert report["consent_columns"] == ["optin_time", "optin_ip", "confirm_time", "confirm_ip"]
    assert "optin_time" not in report["attribute_columns"]
    with closing(store_at(workspace / "digest.db")) as conn:
        rows = conn.execute(
            "SELECT s.email, e.detail, s.attributes FROM events AS e"
            " JOIN subscribers AS s ON s.id = e.subscriber_id WHERE e.kind = 'subscribe' ORDER BY s.email"
        ).fetchall()
    consent = {email: json.loads(detail)["consent"] for email, detail, _attrs in rows}
    assert consent["wren.alvarez@example.org"] == {
        "optin_time": "2021-03-04 09:12:44",
        "optin_ip": "203.0.113.7",
        "confirm_time": "2021-03-04 09:13:02",
        "confirm_ip": "203.0.113.7",
    }
    assert consent["tobias.quill@example.net"]["confirm_ip"] == "2001:db8::42"
    assert all("optin_ip" not in json.loads(attrs) for _e, _d, attrs in rows)
    # The unsubscribed export's consent is kept too, beside its status.
    _import(run_cli, "mailchimp_unsubscribed_members_export.csv")
    with closing(store_at(workspace / "digest.db")) as conn:
        (detail,) = conn.execute(
            "SELECT e.detail FROM events AS e JOIN subscribers AS s ON s.id = e.subscriber_id"
            " WHERE s.email = 'marguerite.oyelaran@example.org'"
        ).fetchone()
    assert json.loads(detail)["status"] == "unsubscribed"
    assert json.loads(detail)["consent"]["optin_ip"] == "198.51.100.23"


def test_a_bad_consent_ip_is_an_invalid_row(run_cli, workspace: Path) -> None:
    Path("c.csv").write_text("Email Address,OPTIN_IP\na@example.org,10.0.0.1\nb@example.org,not-an-ip\n")
    result = run_cli("subscribers", "import", "c.csv")
    assert result.exit_code == 1
    assert "line 3: optin_ip 'not-an-ip' is not an IP address" in result.output
