"""Jinja templates: where they are looked up (override folder, then bundled) and rendering one.

:func:`render_template` renders a named template with a context; a missing template names
every path searched, a template error its file and line. :func:`environment` is the cached
Jinja environment behind it (the issue's templates and the transactional mail's share it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

import digest
from digest.config import Config
from digest.errors import DigestError
from digest.i18n import translations


def bundled_templates_dir() -> Path:
    """The templates shipped with digest: inside the package when installed from a wheel,
    else the repository's top-level ``templates/``."""
    package = Path(digest.__file__).resolve().parent
    inside = package / "templates"
    return inside if inside.is_dir() else package.parent / "templates"


def template_dirs(config: Config) -> list[Path]:
    """Folders searched for templates, in order: the configured override, then the bundled."""
    dirs = []
    if config.render.templates:
        override = config.path(config.render.templates)
        if not override.is_dir():
            raise DigestError(
                f"{config.source}: render.templates = {config.render.templates!r}: folder {override} "
                "does not exist; create it or remove the setting"
            )
        dirs.append(override)
    dirs.append(bundled_templates_dir())
    return dirs


def wrap(text: str, width: int = 72) -> str:
    """Greedy word wrap for the text part; long words are never broken. (textwrap, behind
    Jinja's ``wordwrap``, is several times slower and this runs for every summary.)"""
    return "\n".join(m.rstrip() for m in _wrap_re(width).findall(" ".join(text.split())))


@functools.lru_cache(maxsize=8)
def _wrap_re(width: int) -> re.Pattern[str]:
    return re.compile(rf"\S.{{0,{width - 1}}}(?=\s|$)|\S+")


def environment(
    dirs: tuple[Path, ...], language: str = "en", workspace: Path | None = None
) -> jinja2.Environment:
    """The Jinja environment for templates found in ``dirs`` (searched in order) speaking
    ``language`` (``_()``, ``gettext``, ``{% trans %}``: :func:`digest.i18n.translations`,
    with ``workspace``'s own ``labels/<lang>.po`` over the shipped catalogue), cached.

    Autoescaped: ``*.mjml.j2``, ``*.mjml``, ``*.html`` (the issue) and ``*.html.j2`` (the
    transactional mail's HTML part); the text templates are not."""
    # Jinja notices edits to a template it already loaded, not a new override file that now
    # shadows a bundled one; a listing of the override folder keys the cache for that.
    listing = tuple(
        (str(p), p.stat().st_mtime_ns) for d in dirs[:-1] for p in sorted(d.rglob("*")) if p.is_file()
    )
    return _cached_environment(dirs, listing, translations(language, workspace))


@functools.lru_cache(maxsize=16)
def _cached_environment(
    dirs: tuple[Path, ...], listing: tuple[tuple[str, int], ...], words: Any
) -> jinja2.Environment:
    env = jinja2.Environment(
        extensions=["jinja2.ext.i18n"],
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(d)) for d in dirs]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("mjml.j2", "html", "mjml", "html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    env.install_gettext_translations(words, newstyle=False)  # type: ignore[attr-defined]
    return env


def render_template(
    dirs: tuple[Path, ...],
    name: str,
    context: Mapping[str, Any],
    *,
    language: str = "en",
    workspace: Path | None = None,
) -> str:
    """Render template ``name`` found in ``dirs`` (searched in order) with ``context``, its
    labels in ``language`` (see :func:`environment`)."""
    env = environment(dirs, language, workspace)
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        searched = ", ".join(str(d / exc.name) for d in dirs)
        raise DigestError(f"template {exc.name} not found; searched: {searched}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise DigestError(f"{exc.filename or exc.name}:{exc.lineno}: template error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise DigestError(f"template {name}: {exc.message}; check the variable names") from None
