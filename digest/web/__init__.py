"""The web app behind the links in every email, the sign-up form and the archive.

:func:`create_app` builds the Flask app (see :mod:`digest.web.app`);
:func:`digest.web.server.serve` runs it under gunicorn for ``digest web serve``.
"""

from __future__ import annotations

from digest.web.app import create_app, web_template_dirs
from digest.web.logs import redact_path

__all__ = ["create_app", "redact_path", "web_template_dirs"]
