"""``digest archive build``: the public archive as static files, with the web app's own pages.

:func:`build_static_archive` is :func:`digest.render.archive.build_archive` given the web
app's templates, stylesheet and issue pages, so the static archive looks like the served one.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import sqlite_utils

from digest.config import Config
from digest.i18n import direction, translations
from digest.render.archive import build_archive
from digest.web.archive import issue_html
from digest.web.common import WebState, page_brand, stylesheet_text, web_template_dirs


def build_static_archive(db: sqlite_utils.Database, config: Config, outdir: Path) -> dict[str, int]:
    """:func:`build_archive` with the web app's own templates and issue pages (``digest archive build``)."""
    folders = web_template_dirs(config)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in folders]),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    language = config.publication.language
    env.install_gettext_translations(translations(language, config.base_dir), newstyle=False)  # type: ignore[attr-defined]
    template = env.get_template("archive.html")
    state = WebState(config=config, secret=b"")
    return build_archive(
        db,
        config,
        outdir,
        render_page=lambda data, links: template.render(
            publication=config.publication,
            archive=data,
            links=links,
            dir=direction(language),
            brand=page_brand(config, links.asset),
        ),
        render_issue=lambda issue_id: issue_html(db, state, issue_id),
        stylesheet=stylesheet_text(config) or "",
    )
