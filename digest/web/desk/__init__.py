"""The editor's desk: ``/desk`` in the web app, for the editors only (issue #21).

Entry point: :func:`register` adds the desk's blueprint to the app (:mod:`digest.web.app`).

- ``session`` — who is signed in (the signed cookie), CSRF, the 404 for everyone else, the
  headers of every desk answer.
- ``signin`` — ``/desk/signin`` (a link mailed to an editor), ``/desk/signin/<token>``,
  ``/desk/signout``.
- ``pages`` — ``/desk`` and ``/desk/issues/<edition>/<number>`` (with ``/email``, the
  rendering the page frames).
- ``stats`` — ``/desk/stats``: the charts of ``digest stats --html``.
- ``actions`` — the POSTs of an issue's page; each calls one function of
  :mod:`digest.compose.editing`, the code path the CLI uses too.

Editors and their sign-in links, sessions and CSRF tokens are :mod:`digest.editors`'.
Everything works without JavaScript: plain forms, POST then redirect.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response

from digest.web.common import state, web_template_dirs
from digest.web.desk import actions, pages, signin, stats
from digest.web.desk.session import desk_headers


def register(app: Flask) -> None:
    """Add the desk under ``/desk`` to ``app``."""
    desk = Blueprint("desk", __name__, url_prefix="/desk")
    signin.register(desk)
    pages.register(desk)
    actions.register(desk)
    stats.register(desk)
    desk.add_url_rule("/desk.css", "stylesheet", stylesheet)
    app.register_blueprint(desk)
    app.after_request(desk_headers)


def stylesheet() -> Response:
    """The desk's own stylesheet (after the site's ``/style.css``)."""
    for folder in web_template_dirs(state().config):
        path = folder / "desk" / "desk.css"
        if path.is_file():
            return Response(path.read_text("utf-8"), mimetype="text/css")
    return Response("", mimetype="text/css")


__all__ = ["register"]
