"""``/assets/logo.<ext>``: the publisher's logo (``[render] logo``), where every email loads it.

The address is stable (no content hash): an old issue in a reader's inbox keeps showing the
logo after it changes, and a logo that changes format (``logo.png`` → ``logo.jpg``) is still
served under the old name. Emails are read on other origins (webmail), so this one response
may be loaded cross-origin.
"""

from __future__ import annotations

from flask import Flask, Response, abort

from digest.brand import LOGO_TYPES, read_logo
from digest.errors import ConfigError
from digest.web.common import state

LOGO_EXTENSIONS = {*LOGO_TYPES.values(), "jpeg"}


def register(app: Flask) -> None:
    """Add the logo's route to ``app``."""
    app.add_url_rule("/assets/logo.<ext>", "logo", logo)


def logo(ext: str) -> Response:
    """The configured logo's bytes, with its own type; 404 when none is configured."""
    config = state().config
    if ext not in LOGO_EXTENSIONS or not config.render.logo:
        abort(404)
    try:
        found = read_logo(config.path(config.render.logo))
        data = found.path.read_bytes()
    except (ConfigError, OSError):
        abort(404)  # removed since the config was loaded
    response = Response(data, mimetype=found.media_type)
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"  # mail clients on other origins
    return response
