"""Shared fixtures: every test runs in its own temp workspace, never the user's files.

:func:`new_workspace` is the one way a test builds a workspace (the helpers in the
``*_support``/``*_fixtures`` modules call it); :class:`FakeClock` lets a send back off
without the real seconds."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
import store_switch
from click.testing import CliRunner, Result
from store_switch import ON_POSTGRESQL
from wheel_support import build_wheel, install_wheel

import digest.delivery.worker
from digest.cli import cli
from digest.config import Config, load_config
from digest.ingest.articles import add_article
from digest.store.database import open_store
from subscribers.store import add_subscriber


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temp folder with no DIGEST_* variables leaking in from the machine."""
    for var in list(os.environ):
        if var.startswith("DIGEST_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-not-for-production")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@dataclass
class Workspace:
    """A workspace on disk: its folder, its ``digest.toml``, and what the factory added."""

    path: Path
    subscribers: list[dict[str, Any]] = field(default_factory=list)
    url: str | None = None  # its ``[storage] url`` on the PostgreSQL pass

    @property
    def store(self) -> str | Path:
        """What the workspace's commands open: the PostgreSQL URL, else the SQLite file."""
        return self.url or self.db_path

    @property
    def config_file(self) -> Path:
        """The workspace's ``digest.toml``."""
        return self.path / "digest.toml"

    @property
    def config(self) -> Config:
        """The config as it reads now (loaded afresh each time)."""
        return load_config(self.config_file)

    @property
    def db_path(self) -> Path:
        """The database beside ``digest.toml`` (where every test config keeps it)."""
        return self.path / "digest.db"

    def db(self) -> sqlite_utils.Database:
        """A new connection to the workspace's database (created and migrated if need be)."""
        return open_store(self.store)

    def run_cli(self, *args: str, input: str | None = None, **kwargs: Any) -> Result:
        """``digest --config <this workspace> ARGS`` through click's CliRunner."""
        return CliRunner().invoke(cli, ["--config", str(self.config_file), *args], input=input, **kwargs)

    def edit_config(self, old: str, new: str) -> None:
        """Replace ``old`` with ``new`` in ``digest.toml`` (as a hand edit would)."""
        text = self.config_file.read_text(encoding="utf-8")
        self.config_file.write_text(text.replace(old, new), encoding="utf-8")


def new_workspace(
    path: Path,
    *,
    config: str | None = None,
    replace: dict[str, str] | None = None,
    append: str = "",
    db: bool = True,
    subscribers: Iterable[str | dict[str, Any]] = (),
    articles: Iterable[dict[str, Any]] = (),
) -> Workspace:
    """The one workspace factory of the tests.

    ``config`` None runs ``digest init`` (the shipped sample config and its database);
    a string is written as ``digest.toml`` ("" gives every default). ``replace`` edits that
    text (each old string must be there) and ``append`` adds TOML at its end. With ``db``
    the database is created and migrated; ``subscribers`` (emails, or keyword arguments of
    :func:`subscribers.store.add_subscriber`) and ``articles`` (keyword arguments of
    :func:`digest.ingest.articles.add_article`) are added to it.

    On the PostgreSQL pass (:mod:`store_switch`) the workspace's ``[storage] url`` names a
    fresh database of its own on the session's server, and ``digest.db`` is never used."""
    url = store_switch.url_for(path / "digest.db") if ON_POSTGRESQL else None
    if config is None:
        result = CliRunner().invoke(cli, ["init", str(path)])
        assert result.exit_code == 0, result.output
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / "digest.toml").write_text(config, encoding="utf-8")
    ws = Workspace(path, url=url)
    text = ws.config_file.read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        assert old in text, f"{old!r} is not in {ws.config_file}"
        text = text.replace(old, new)
    text += append
    if url:
        text = with_store_url(text, url)
    ws.config_file.write_text(text, encoding="utf-8")
    if not db:
        return ws
    store = ws.db()
    for sub in subscribers:
        kwargs = {"email": sub} if isinstance(sub, str) else sub
        ws.subscribers.append(add_subscriber(store, **kwargs))
    articles = list(articles)
    loaded = ws.config if articles else None  # a test may give a config that does not load
    for article in articles:
        add_article(store, loaded, **article)
    store.close()
    return ws


def with_store_url(text: str, url: str) -> str:
    """``digest.toml``'s text with ``[storage] url`` set to ``url`` (one a test set stays)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "[storage]":
            if any(ln.strip().startswith("url") for ln in _section(lines, i)):
                return text
            lines.insert(i + 1, f'url = "{url}"')
            return "\n".join(lines) + "\n"
    return f'{text}\n[storage]\nurl = "{url}"\n'


def _section(lines: list[str], header: int) -> list[str]:
    """The lines of the TOML table whose header is at ``header``."""
    out: list[str] = []
    for line in lines[header + 1 :]:
        if line.strip().startswith("["):
            break
        out.append(line)
    return out


@pytest.fixture(autouse=True)
def test_store_databases() -> Iterable[None]:
    """On the PostgreSQL pass: each test's databases are dropped when it ends (a module
    fixture's stay until the session's server stops)."""
    first = store_switch.begin_test()
    yield
    store_switch.end_test(first)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test needs an SQLite file; skipped on the PostgreSQL pass"
    )
    if ON_POSTGRESQL and store_switch.missing():
        raise pytest.UsageError(f"DIGEST_TEST_STORE=postgresql: {store_switch.missing()}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not ON_POSTGRESQL:
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker:
            reason = marker.args[0] if marker.args else "needs an SQLite file"
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


def pytest_sessionfinish() -> None:
    store_switch.stop()


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[..., Workspace]:
    """:func:`new_workspace` in ``tmp_path / name`` (name "ws" unless given)."""

    def make(name: str = "ws", **kwargs: Any) -> Workspace:
        return new_workspace(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh workspace made by `digest init`: digest.toml + digest.db in tmp_path/ws."""
    return new_workspace(tmp_path / "ws", db=False).path


@pytest.fixture
def run_cli(workspace: Path):
    """Invoke the CLI against the workspace's config; returns click's Result."""

    def invoke(*args: str, input: str | None = None):
        runner = CliRunner()
        return runner.invoke(cli, ["--config", str(workspace / "digest.toml"), *args], input=input)

    return invoke


@pytest.fixture
def edit_config(workspace: Path) -> Callable[[str, str], None]:
    """Replace text in the workspace's digest.toml, as a hand edit would."""
    return Workspace(workspace).edit_config


class FakeClock:
    """The send engine's back-off clock without the seconds: each wait is recorded and moves
    virtual time on at once (see :class:`digest.delivery.worker.Clock`)."""

    def __init__(self) -> None:
        self.time = 0.0
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.time

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        with self._lock:
            self.waits.append(seconds)
            self.time += seconds
        return stop.is_set()


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Every send in the test backs off on a :class:`FakeClock`; its ``waits`` show the delays."""
    clock = FakeClock()
    monkeypatch.setattr(digest.delivery.worker, "CLOCK", clock)
    return clock


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel`` builds from this checkout, once per test session."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def installed_digest(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a virtualenv with digest installed from :func:`built_wheel` only."""
    return install_wheel(built_wheel, tmp_path_factory.mktemp("installed") / "venv")


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL server for the session (skips when PostgreSQL is not installed)."""
    if store_switch.missing():
        pytest.skip(store_switch.missing())
    return store_switch.server()  # one server for the session, stopped when it ends


@pytest.fixture
def pg_url(pg_server) -> str:
    """The URL of a new, empty PostgreSQL database for one test."""
    url = pg_server.fresh_database()
    yield url
    pg_server.drop_database(url)
