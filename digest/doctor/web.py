"""The web app (confirm, unsubscribe, preferences links) answers at ``base_url/healthz``."""

from __future__ import annotations

import urllib.error
import urllib.request

from digest.config import Config
from digest.doctor.check import FAIL, OK, Check


def check_web(config: Config, *, timeout: float = 10.0) -> Check:
    """GET ``base_url/healthz`` and expect 200."""
    url = config.publication.base_url.rstrip("/") + "/healthz"
    fix = "run `digest web serve` behind publication.base_url"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return Check("web", FAIL, f"{url} answered {exc.code} {exc.reason}", fix)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("web", FAIL, f"no answer at {url} ({reason})", fix)
    if status != 200:
        return Check("web", FAIL, f"{url} answered {status}", fix)
    return Check("web", OK, f"{url} answers")
