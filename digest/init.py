"""``digest init``: a new workspace with a commented config and an empty database, and with
``--example`` the sample files the README tour uses (articles, people, a bounce, a feed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from digest.atomic import PRIVATE, create_new, write_atomic
from digest.config import CONFIG_NAME, DB_PASSWORD_ENV, load_config
from digest.config.store_url import check_store_url, has_password
from digest.errors import DigestError
from digest.store.database import open_store


@dataclass
class InitResult:
    """What ``init_workspace`` made."""

    config_path: Path
    db_path: Path
    config_written: bool
    store: str = ""  # the store as shown: the file, or the PostgreSQL URL without its password
    examples_written: list[Path] = field(default_factory=list)
    examples_kept: list[Path] = field(default_factory=list)


def sample_config() -> str:
    """The commented sample configuration shipped with digest."""
    return resources.files("digest").joinpath("data", CONFIG_NAME).read_text(encoding="utf-8")


SAMPLE_BASE_URL = "http://localhost:8080"
SAMPLE_DB_URL = '# url = "postgresql://digest@db.example.org:5432/digest"'

EXAMPLE_FILES = (
    "feed.xml",
    "articles.jsonl",
    "people.csv",
    "cleaned_members_export.csv",
    "bounces.mbox",
    "dmarc.mbox",
)
"""The sample files ``digest init --example`` writes (shipped in ``digest/data/examples/``): a
feed file, an article file, a subscriber import, a Mailchimp cleaned export and a bounce report."""


def write_examples(directory: Path) -> tuple[list[Path], list[Path]]:
    """Write the sample files into ``directory``; a file already there is kept, never
    overwritten. Returns the files written and the files kept."""
    written: list[Path] = []
    kept: list[Path] = []
    folder = resources.files("digest").joinpath("data", "examples")
    for name in EXAMPLE_FILES:
        target = directory / name
        try:
            create_new(target, folder.joinpath(name).read_text(encoding="utf-8"), mode=0o644)
        except FileExistsError:
            kept.append(target)
            continue
        except OSError as exc:
            raise DigestError(f"{target}: cannot write ({exc.strerror})") from None
        written.append(target)
    return written, kept


def init_workspace(
    directory: str | Path,
    *,
    force: bool = False,
    base_url: str | None = None,
    example: bool = False,
    db_url: str | None = None,
) -> InitResult:
    """Write ``digest.toml`` into ``directory`` (unless present) and create the database.

    ``base_url`` (the public https address of ``digest web serve``) replaces the sample's
    local one; an SMTP send refuses a localhost or http base URL. ``db_url`` (a
    ``postgresql://`` URL without a password) becomes the ``[storage] url`` and its schema is
    created there. ``example`` also writes the sample files (:func:`write_examples`);
    ``force`` never overwrites those.
    """
    text = sample_config()
    if db_url is not None:
        text = text.replace(SAMPLE_DB_URL, f'url = "{_checked_db_url(db_url)}"', 1)
    if base_url is not None:
        url = base_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c in url for c in '"\\ \r\n'):
            raise DigestError(f"--base-url {base_url!r}: give an address like https://news.example.org")
        text = text.replace(f'base_url = "{SAMPLE_BASE_URL}"', f'base_url = "{url}"', 1)
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DigestError(f"{directory}: cannot create folder ({exc.strerror})") from None
    config_path = directory / CONFIG_NAME
    if db_url is not None and not force and config_path.exists():
        raise DigestError(
            f"{config_path} exists; set its [storage] url yourself, or pass --force to rewrite it"
        )
    written = False
    # 0600 under any umask, like the database: the file may name the SMTP user and the list.
    try:
        if force:
            write_atomic(config_path, text, mode=PRIVATE)
            written = True
        elif not config_path.exists() and not config_path.is_symlink():
            create_new(config_path, text)
            written = True
    except FileExistsError:
        pass  # made by someone else meanwhile: theirs is used, as when it was there before
    except OSError as exc:
        raise DigestError(f"{config_path}: cannot write ({exc.strerror})") from None
    config = load_config(config_path)
    db = open_store(config.store)
    db.conn.close()
    result = InitResult(
        config_path=config_path, db_path=config.db_path, config_written=written, store=config.store_shown
    )
    if example:
        result.examples_written, result.examples_kept = write_examples(directory)
    return result


def _checked_db_url(url: str) -> str:
    """``--db-url`` as it may go into digest.toml: a PostgreSQL URL, no password, nothing TOML
    would read differently."""
    url = url.strip()
    check_store_url(url, "--db-url")
    if has_password(url):
        raise DigestError(
            f"--db-url: the URL has a password; leave it out (digest.toml would keep it) and set "
            f"{DB_PASSWORD_ENV} in the environment (or put it in ~/.pgpass)"
        )
    if any(c in url for c in '"\\\r\n'):
        raise DigestError(f"--db-url {url!r}: quotes, backslashes and line breaks are not allowed")
    return url
