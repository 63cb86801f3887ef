"""Subscriber attributes: unknown CSV columns kept as JSON, exported again, other tools' headers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from store_switch import store_at

from subscribers import importer
from subscribers.exporter import export_subscribers
from subscribers.importer import import_csv


@pytest.fixture(autouse=True, params=["ordinary", "bulk"])
def load_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """As in test_import: every test also runs as a bulk load (indexes dropped, a filter in front)."""
    if request.param == "bulk":
        monkeypatch.setattr(importer, "_BULK_MIN_ROWS", 0)
        monkeypatch.setattr(importer, "_BYTES_PER_ROW", 1)
    return request.param


def _rows(workspace: Path) -> dict[str, dict]:
    conn = store_at(workspace / "digest.db")
    rows = {r["email"]: dict(r) for r in conn.query("SELECT * FROM subscribers")}
    conn.conn.close()
    return rows


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_columns_are_kept_as_attributes(run_cli, workspace: Path, tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "email,name,Company,Company Size,plan\n"
        "ada@example.org,Ada,Analytical Engines,12,gold\n"
        "bob@example.org,Bob,,,\n"
        'cy@example.org,Cy,"<b>Acme</b>, Inc.",3,\n',
    )
    result = run_cli("subscribers", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["added"] == 3
    assert report["attribute_columns"] == ["company", "company_size", "plan"]
    assert report["ignored_columns"] == []
    rows = _rows(workspace)
    assert json.loads(rows["ada@example.org"]["attributes"]) == {
        "company": "Analytical Engines",
        "company_size": "12",
        "plan": "gold",
    }
    assert json.loads(rows["bob@example.org"]["attributes"]) == {}
    assert json.loads(rows["cy@example.org"]["attributes"]) == {
        "company": "<b>Acme</b>, Inc.",
        "company_size": "3",
    }


def test_a_reimport_updates_its_own_attribute_columns_and_keeps_the_others(
    workspace: Path, tmp_path: Path
) -> None:
    db = store_at(workspace / "digest.db")
    import_csv(db, _csv(tmp_path, "email,company,plan\nada@example.org,Engines,gold\n"))
    report = import_csv(db, _csv(tmp_path, "email,plan,city\nADA@example.org,,London\n"))
    assert (report.added, report.updated) == (0, 1)
    attributes = json.loads(db.execute("SELECT attributes FROM subscribers").fetchone()[0])
    # company was not in the file: kept; plan's empty cell removes it; city is new.
    assert attributes == {"company": "Engines", "city": "London"}
    event = db.execute("SELECT detail FROM events WHERE kind = 'preferences'").fetchone()[0]
    assert json.loads(event)["attributes"] == "changed"
    again = import_csv(db, _csv(tmp_path, "email,plan,city\nada@example.org,,London\n"))
    assert (again.updated, again.unchanged) == (0, 1)


def test_other_tools_headers_are_understood(workspace: Path, tmp_path: Path) -> None:
    db = store_at(workspace / "digest.db")
    report = import_csv(
        db,
        _csv(
            tmp_path,
            "Email Address,First Name,Last Name,Member Rating\n"
            "ada@example.org,Ada,Lovelace,5\n"
            "bob@example.org,,Smith,\n"
            "cy@example.org,Cy,,\n",
        ),
    )
    # The first name is joined into the name and kept for the greeting's {first_name} too.
    assert report.added == 3 and report.attribute_columns == ["first_name", "member_rating"]
    names = dict(db.execute("SELECT email, name FROM subscribers").fetchall())
    assert names == {"ada@example.org": "Ada Lovelace", "bob@example.org": "Smith", "cy@example.org": "Cy"}
    report = import_csv(db, _csv(tmp_path, "E-mail,first_name\ndee@example.org,Dee\n"))
    assert report.added == 1
    assert db.execute("SELECT name FROM subscribers WHERE email = 'dee@example.org'").fetchone()[0] == "Dee"


def test_mailchimps_fname_becomes_the_first_name_the_greeting_uses(workspace: Path, tmp_path: Path) -> None:
    db = store_at(workspace / "digest.db")
    mailchimp = "EMAIL,FNAME,LNAME\nada@example.org,Ada,Lovelace\nbob@example.org,,Smith\n"
    import_csv(db, _csv(tmp_path, mailchimp))
    found = db.execute("SELECT email, name, attributes FROM subscribers")
    rows = {e: (n, json.loads(a or "{}")) for e, n, a in found}
    assert rows["ada@example.org"] == ("Ada Lovelace", {"first_name": "Ada"})
    assert rows["bob@example.org"] == ("Smith", {})
    import_csv(db, _csv(tmp_path, "email,name,Given Name\ncy@example.org,Dr Cy Twombly,Cy\n"))
    (attributes,) = db.execute("SELECT attributes FROM subscribers WHERE email = 'cy@example.org'").fetchone()
    assert json.loads(attributes) == {"first_name": "Cy"}


def test_first_and_last_name_are_attributes_when_there_is_a_name_column(
    workspace: Path, tmp_path: Path
) -> None:
    db = store_at(workspace / "digest.db")
    import_csv(db, _csv(tmp_path, "email,name,first name,last name\nada@example.org,Countess,Ada,Lovelace\n"))
    name, attributes = db.execute("SELECT name, attributes FROM subscribers").fetchone()
    assert name == "Countess"
    assert json.loads(attributes) == {"first_name": "Ada", "last_name": "Lovelace"}


def test_a_bad_attribute_value_names_the_line(workspace: Path, tmp_path: Path) -> None:
    from digest.errors import DigestError

    db = store_at(workspace / "digest.db")
    path = _csv(tmp_path, "email,notes\nada@example.org,fine\nbob@example.org," + "x" * 1001 + "\n")
    with pytest.raises(DigestError, match=r"line 3: attribute value is longer than 1000"):
        import_csv(db, path)
    assert db.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 0


def test_a_wrong_field_count_with_joined_names_counts_the_files_columns(
    workspace: Path, tmp_path: Path
) -> None:
    db = store_at(workspace / "digest.db")
    report = import_csv(
        db, _csv(tmp_path, "email,first name,last name\nada@example.org,Ada\n"), skip_invalid=True
    )
    assert report.invalid_rows == [(2, "2 fields, but the first line names 3 columns")]


def test_two_columns_with_one_attribute_key_are_refused(workspace: Path, tmp_path: Path) -> None:
    from digest.errors import DigestError

    db = store_at(workspace / "digest.db")
    with pytest.raises(DigestError, match=r"'Company Size' and 'company.size' are both the attribute"):
        import_csv(db, _csv(tmp_path, "email,Company Size,company.size\na@example.org,1,2\n"))


def test_attributes_round_trip_through_the_export(workspace: Path, tmp_path: Path) -> None:
    db = store_at(workspace / "digest.db")
    import_csv(
        db,
        _csv(
            tmp_path, "email,name,company,formula\nada@example.org,Ada,Engines,=1+1\nbob@example.org,Bob,,\n"
        ),
    )
    out = io.StringIO()
    assert export_subscribers(db, out) == 2
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["email", "name", "editions", "categories", "timezone", "status", "company", "formula"]
    assert rows[1][6:] == ["Engines", "'=1+1"]  # a formula is guarded, as every other cell
    assert rows[2][6:] == ["", ""]
    before = db.execute("SELECT email, attributes FROM subscribers ORDER BY email").fetchall()
    fresh = store_at(tmp_path / "fresh.db")
    exported = tmp_path / "exported.csv"
    exported.write_text(out.getvalue(), encoding="utf-8")
    import_csv(fresh, exported)
    after = fresh.execute("SELECT email, attributes FROM subscribers ORDER BY email").fetchall()
    assert [(e, json.loads(a)) for e, a in after] == [(e, json.loads(a)) for e, a in before]
    as_json = io.StringIO()
    export_subscribers(db, as_json, format="json")
    assert json.loads(as_json.getvalue())[0]["attributes"] == {"company": "Engines", "formula": "=1+1"}


def test_the_cli_says_which_columns_became_attributes_and_show_lists_them(
    run_cli, workspace: Path, tmp_path: Path
) -> None:
    path = _csv(
        tmp_path, "Email Address,First Name,Last Name,Company,???\nada@example.org,Ada,Lovelace,Engines,x\n"
    )
    result = run_cli("subscribers", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "1 added" in result.output
    assert "Kept as attributes: first_name, company" in result.output
    assert "Ignored columns: ???" in result.output
    shown = run_cli("subscribers", "show", "ada@example.org")
    assert "name:            Ada Lovelace" in shown.output
    assert "attribute:       company = Engines" in shown.output
