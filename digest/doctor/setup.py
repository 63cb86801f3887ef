"""Checks of the workspace itself: the public base URL, secrets, file modes."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

from digest.config import SECRET_ENV, SMTP_PASSWORD_ENV, Config
from digest.delivery.checks import check_public_base_url
from digest.doctor.check import FAIL, OK, WARN, Check
from digest.errors import DigestError
from digest.mail.transports.registry import capabilities
from subscribers.tokens import KEY_FILE, load_secret


def sends_mail(config: Config) -> bool:
    """True when the transport sends real mail (links in it must then work for readers)."""
    try:
        return capabilities(config.delivery.transport).sends_real_mail
    except DigestError:
        return False  # the transport check says what is wrong with the URL


def base_url_problem(config: Config) -> str | None:
    """Why ``publication.base_url`` cannot be the public address in links readers click, or
    None: the send engine's own rule (https, not this machine), then what only a person
    setting up would get wrong (a private address, a ``.local`` or dot-less host name)."""
    problem = check_public_base_url(config)
    if problem is not None:
        return problem
    url = config.publication.base_url
    host = (urlsplit(url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.endswith((".local", ".internal")) or "." not in host:
            return f"publication.base_url {url!r} names a host readers cannot reach"
        return None
    if address.is_private or address.is_link_local:
        return f"publication.base_url {url!r} is an address readers cannot reach"
    return None


def check_base_url(config: Config) -> Check:
    """``publication.base_url`` is https and public (a failure only when mail really goes out)."""
    url = config.publication.base_url
    problem = base_url_problem(config)
    if problem is None:
        return Check("base_url", OK, f"{url} is https and public")
    fix = "set publication.base_url to the public https address of `digest web serve`"
    if sends_mail(config):
        return Check("base_url", FAIL, f"{problem}: every unsubscribe and confirm link would be dead", fix)
    return Check("base_url", WARN, f"{problem} (fine while the transport writes files)", fix)


def check_secrets(config: Config) -> Check:
    """Secrets come only from the environment: the config file holds none of their values."""

    path = Path(config.source)
    text = ""
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return Check(
                "secrets", FAIL, f"{path}: cannot read ({exc.strerror})", "check the file's permissions"
            )
    for env in (SECRET_ENV, SMTP_PASSWORD_ENV):
        value = os.environ.get(env, "")
        if len(value) >= 6 and value in text:
            return Check(
                "secrets",
                FAIL,
                f"{path} contains the value of {env}",
                f"remove it from the file (secrets are read only from {env}) and change the secret",
            )
    key_file = config.db_path.parent / KEY_FILE
    if not config.secret and not key_file.exists():
        if config.storage.url:
            return _key_of_one_host(key_file)
        return Check(
            "secrets", OK, f"none in the config file; a signing key is made at {key_file} on first use"
        )
    try:
        load_secret(
            config
        )  # reads and checks; makes nothing, as the key exists or comes from the environment
    except DigestError as exc:
        return Check("secrets", FAIL, str(exc), f"set {SECRET_ENV} in the environment")
    where = SECRET_ENV if config.secret else str(key_file)
    if config.storage.url and not config.secret:
        return _key_of_one_host(key_file)
    return Check("secrets", OK, f"none in the config file; links are signed with the key from {where}")


def _key_of_one_host(key_file: Path) -> Check:
    """A shared PostgreSQL store with the signing key in a file of this host's."""
    return Check(
        "secrets",
        WARN,
        f"links and desk sessions are signed with {key_file}, a file on this host, while the "
        "store is a PostgreSQL server other hosts may share",
        f"give every host that uses this store the same key: set {SECRET_ENV} on each "
        "(or copy this file to each)",
    )


def check_file_modes(config: Config) -> Check:
    """The database (subscriber addresses) and the keys are readable by their owner only."""

    files = [("database", config.db_path)]
    if not config.secret:
        files.append(("signing key", config.db_path.parent / KEY_FILE))
    if config.dkim.key_file:
        files.append(("DKIM key", config.path(config.dkim.key_file)))
    problems, warnings, checked = [], [], []
    for what, path in files:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            if what == "DKIM key":
                problems.append(f"the {what} {path} does not exist")
            continue
        checked.append(f"{path.name} {stat.filemode(mode)}")
        if mode & (stat.S_IRWXO | (stat.S_IRWXG if what != "database" else 0)):
            problems.append(f"the {what} {path} is {stat.filemode(mode)}")
        elif mode & stat.S_IRWXG:
            warnings.append(f"the {what} {path} is {stat.filemode(mode)}")
    targets = " ".join(str(p) for _w, p in files if p.exists())
    if problems:
        return Check("file_modes", FAIL, "; ".join(problems), f"chmod 600 {targets}")
    if warnings:
        return Check("file_modes", WARN, "; ".join(warnings) + " (group can read it)", f"chmod 600 {targets}")
    if not checked:
        return Check(
            "file_modes", WARN, "no database yet", "run a command that uses it, e.g. `digest feeds list`"
        )
    return Check("file_modes", OK, ", ".join(checked))
