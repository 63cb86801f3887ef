"""``digest init``: a new workspace with a commented config and an empty database."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from digest.atomic import PRIVATE, create_new, write_atomic
from digest.config import CONFIG_NAME, load_config
from digest.errors import DigestError
from digest.store.database import open_store


@dataclass
class InitResult:
    """What ``init_workspace`` made."""

    config_path: Path
    db_path: Path
    config_written: bool


def sample_config() -> str:
    """The commented sample configuration shipped with digest."""
    return resources.files("digest").joinpath("data", CONFIG_NAME).read_text(encoding="utf-8")


SAMPLE_BASE_URL = "http://localhost:8080"


def init_workspace(directory: str | Path, *, force: bool = False, base_url: str | None = None) -> InitResult:
    """Write ``digest.toml`` into ``directory`` (unless present) and create the database.

    ``base_url`` (the public https address of ``digest web serve``) replaces the sample's
    local one; an SMTP send refuses a localhost or http base URL.
    """
    text = sample_config()
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
    db = open_store(config.db_path)
    db.close()
    return InitResult(config_path=config_path, db_path=config.db_path, config_written=written)
