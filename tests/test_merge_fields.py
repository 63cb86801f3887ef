"""`{{ subscriber.attributes.KEY }}` merge fields: rendered once as placeholders, filled per recipient."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from smtp_server import Handler, SMTPServer
from store_switch import store_at
from test_render_support import fixture_issue, write_config

from digest.cli import cli
from digest.config import load_config
from digest.render.personalise import personalise
from digest.render.templating import bundled_templates_dir
from subscribers.importer import import_csv


def _workspace(tmp_path: Path) -> Path:
    """The render fixture's workspace, with a header template that greets by company."""
    folder = tmp_path / "ws"
    config_path = write_config(folder)
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(text.replace("[render]\n", '[render]\ntemplates = "tpl"\n'), encoding="utf-8")
    override = folder / "tpl" / "email"
    override.mkdir(parents=True)
    for name in ("_header.mjml.j2", "issue.txt.j2"):
        source = (bundled_templates_dir() / "email" / name).read_text(encoding="utf-8")
        marked = source.replace(
            "{{ p.greeting }}", "Hi {{ subscriber.name }} of {{ subscriber.attributes.company }} here", -1
        )
        assert marked != source
        (override / name).write_text(
            marked.replace("company }} here", "company }} ({{ subscriber.attributes['Member Tier'] }}) here"),
            encoding="utf-8",
        )
    config = load_config(config_path)
    db = store_at(config.db_path)
    fixture_issue(config, db)
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,Company,Member Tier\n"
        'ada@example.org,Ada,"Engines & <Sons>",gold\n'
        "bob@example.org,Bob,,\n",
        encoding="utf-8",
    )
    import_csv(db, people)
    return folder


def _preview(folder: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(folder / "digest.toml"), "preview", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_preview_fills_a_subscribers_attributes_escaped_for_html(tmp_path: Path) -> None:
    folder = _workspace(tmp_path)
    html = _preview(folder, "--subscriber", "ada@example.org")
    assert "Hi Ada of Engines &amp; &lt;Sons&gt; (gold) here" in html
    assert "__DIGEST_" not in html
    text = _preview(folder, "--subscriber", "ada@example.org", "--format", "text")
    assert "Hi Ada of Engines & <Sons> (gold) here" in text


def test_a_missing_attribute_is_empty(tmp_path: Path) -> None:
    folder = _workspace(tmp_path)
    text = _preview(folder, "--subscriber", "bob@example.org", "--format", "text")
    assert "Hi Bob of  () here" in text
    sample = _preview(folder, "--format", "text")
    assert "Hi Alex Example of  () here" in sample and "__DIGEST_" not in sample


def test_personalise_reads_attributes_from_a_dict_or_json() -> None:
    rendered = "<p>__DIGEST_ATTR_COMPANY__ / __DIGEST_ATTR_CITY_NAME__ / __DIGEST_NAME__</p>"
    fields = {"name": "Ada", "attributes": {"company": "A\nB", "city_name": "Z<rich"}}
    assert personalise(rendered, fields, html=True) == "<p>A B / Z&lt;rich / Ada</p>"
    as_json = {"attributes": '{"company": "C"}'}
    assert personalise(rendered, as_json, html=False) == "<p>C /  / Reader</p>"


def test_feed_text_cannot_forge_an_attribute_placeholder() -> None:
    """Untrusted text is defused before rendering, so it never becomes a live merge field."""
    from digest.render.context import defuse as _defuse

    assert "__DIGEST_ATTR_COMPANY__" not in _defuse("__DIGEST_ATTR_COMPANY__")


def test_a_real_send_fills_each_readers_attributes(tmp_path: Path) -> None:
    """The send engine fills merge fields per recipient in the bytes it hands the relay."""
    folder = _workspace(tmp_path)
    handler = Handler()
    with SMTPServer(handler) as smtp:
        result = CliRunner().invoke(
            cli, ["--config", str(folder / "digest.toml"), "send", "latest", "--transport", smtp.url]
        )
        assert result.exit_code == 0, result.output
    got = {r.rcpt_tos[0]: r.message for r in handler.received}
    assert set(got) == {"ada@example.org", "bob@example.org"}
    ada, bob = got["ada@example.org"], got["bob@example.org"]
    assert "Hi Ada of Engines & <Sons> (gold) here" in ada.get_body(("plain",)).get_content()
    assert "Hi Ada of Engines &amp; &lt;Sons&gt; (gold) here" in ada.get_body(("html",)).get_content()
    assert "Hi Bob of  () here" in bob.get_body(("plain",)).get_content()
    for message in got.values():
        assert "__DIGEST_" not in message.as_string()
