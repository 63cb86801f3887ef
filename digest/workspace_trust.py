"""Whose workspace is this? A ``digest.toml`` found by walking up is used only if it is yours.

Found the way git finds a repository, a config in a parent folder may belong to someone
else: a ``digest.toml`` that another user left in a shared folder would choose the database,
the transport and the templates (Jinja, run by whoever runs ``digest``). Like git's
``safe.directory``, a config found by walking up, and the templates folder it names, are
refused when another user owns them or anyone may write to them, unless the workspace is
listed in ``DIGEST_SAFE_DIRECTORIES`` (folders separated by ``os.pathsep``, or ``*``) or the
config is named with ``--config`` / ``DIGEST_CONFIG``, which is trusting it explicitly.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from digest.config import SAFE_DIRECTORIES_ENV, Config, find_workspace, load_config
from digest.errors import ConfigError


class UntrustedWorkspace(ConfigError):
    """A config or templates folder found by walking up belongs to someone else or is writable by anyone."""


def load_workspace(explicit: str | os.PathLike[str] | None = None, *, db: str | None = None) -> Config:
    """The workspace's validated configuration (see :func:`digest.config.find_workspace`).

    A config found by walking up (not named by ``explicit`` or ``$DIGEST_CONFIG``) is checked
    before it is read, and its templates folder once it is; :class:`UntrustedWorkspace` when
    either is someone else's or writable by anyone and the workspace is not listed as safe.
    """
    path = find_workspace(explicit)
    if explicit or os.environ.get("DIGEST_CONFIG"):
        return load_config(path, db=db)
    check_config_file(path)
    config = load_config(path, db=db)
    check_templates(config, path)
    return config


def check_config_file(path: Path, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`UntrustedWorkspace` when ``path`` (a found ``digest.toml``) is not to be trusted."""
    workspace = path.resolve().parent
    if _listed_safe(workspace, environ):
        return
    problem = _problem(path)
    if problem:
        raise UntrustedWorkspace(f"refusing {path}: it {problem}; {_remedy(path, workspace)}")


def check_templates(config: Config, path: Path, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`UntrustedWorkspace` when the ``[render] templates`` folder of the config
    at ``path``, or anything in it, is someone else's or writable by anyone."""
    if not config.render.templates:
        return
    folder = config.path(config.render.templates)
    workspace = path.resolve().parent
    if not folder.is_dir() or _listed_safe(workspace, environ) or _listed_safe(folder.resolve(), environ):
        return
    for entry in _tree(folder):
        problem = _problem(entry)
        if problem:
            which = "it" if entry == folder else str(entry)
            raise UntrustedWorkspace(
                f"refusing the templates folder {folder} (render.templates in {path}): "
                f"{which} {problem}; {_remedy(path, workspace)}"
            )


def _problem(path: Path) -> str:
    """Why ``path`` is not to be trusted ("is owned by ..."), or "" when it is."""
    try:
        info = path.stat()
    except OSError:
        return ""  # gone or unreadable: loading it reports that
    me = os.geteuid()
    if info.st_uid != me:
        return f"is owned by {_user(info.st_uid)}, not by you ({_user(me, with_uid=False)})"
    if info.st_mode & stat.S_IWOTH:
        return f"may be written by anyone (mode {stat.S_IMODE(info.st_mode):04o}: chmod o-w {path})"
    return ""


def _tree(folder: Path) -> Iterator[Path]:
    """The folder, then every folder and file below it (links are looked through, not walked)."""
    yield folder
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            yield Path(root) / name


def _listed_safe(folder: Path, environ: Mapping[str, str] | None) -> bool:
    environ = os.environ if environ is None else environ
    for item in environ.get(SAFE_DIRECTORIES_ENV, "").split(os.pathsep):
        item = item.strip()
        if item == "*":
            return True
        if item and Path(item).expanduser().resolve() == folder:
            return True
    return False


def _remedy(path: Path, workspace: Path) -> str:
    return (
        f"if you trust it, set {SAFE_DIRECTORIES_ENV}={workspace} (or '*') or pass --config {path.resolve()}"
    )


def _user(uid: int, *, with_uid: bool = True) -> str:
    """``nobody (uid 65534)``, ``nobody`` without the uid, or ``uid 1234`` for an unknown user."""
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
    return f"{name} (uid {uid})" if with_uid else name
