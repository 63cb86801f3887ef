"""The web app behind the links in every email, the sign-up form and the archive.

:func:`create_app` builds the Flask app (see :mod:`digest.web.app`);
:func:`digest.web.server.serve` runs it under gunicorn for ``digest web serve``;
:func:`digest.web.static.build_static_archive` writes the archive as files.

- ``app`` — the app factory, request hooks, error pages, ``/healthz`` and ``/style.css``.
- ``common`` — what every route module shares: state, the request's database, pages.
- ``links`` — ``/confirm``, ``/unsubscribe`` (RFC 8058 one-click), ``/preferences``.
- ``signup`` — ``/subscribe`` and the embeddable form.
- ``archive`` — ``/issues/<id>``, ``/archive``, ``/feed.atom``.
- ``desk`` — the editors' desk under ``/desk`` (a package: sign-in, pages, actions).
- ``assets`` — ``/assets/logo.<ext>``: the publisher's logo, where emails load it.
- ``static`` — ``digest archive build``: the archive as static files.
- ``server`` — gunicorn with an idle-safe worker; ``logs`` — token-free access logs.

The only package besides ``digest.cli`` that imports Flask (and gunicorn).
"""

from __future__ import annotations

from digest.web.app import create_app
from digest.web.common import web_template_dirs
from digest.web.logs import redact_path

__all__ = ["create_app", "redact_path", "web_template_dirs"]
