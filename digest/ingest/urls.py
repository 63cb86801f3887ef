"""Article links: tracking parameters removed (:func:`clean_url`), redirect wrappers undone
(:func:`unwrap_redirect`), and the identity form two copies of a link share (:func:`canonical_url`)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.ingest.sanitize import is_web_url

# Query parameters that only track the reader; they never change what the page is.
_TRACKING_EXACT = {
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "igshid",
    "mc_cid",
    "mc_eid",
    "mkt_tok",
    "_hsenc",
    "_hsmi",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "vero_conv",
    "wt.mc_id",
    "ref_src",
    "spm",
}
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "__s")


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_EXACT or lowered.startswith(_TRACKING_PREFIXES)


def clean_url(url: str) -> str:
    """``url`` without tracking parameters (``utm_*``, ``fbclid``, ``gclid``, …); the rest of
    the query keeps its order and the fragment stays."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if not _is_tracking(k)]
    if len(kept) == len(pairs):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))


# Aggregator redirect links → the parameter holding the real address.
_REDIRECTORS = {
    ("google.com", "/url"): ("url", "q"),
    ("l.facebook.com", "/l.php"): ("u",),
    ("lm.facebook.com", "/l.php"): ("u",),
}


def unwrap_redirect(url: str) -> str:
    """The real article address behind a common aggregator's redirect link (a Google Alerts
    ``https://www.google.com/url?…&url=…``, Facebook's ``l.php?u=…``); other links unchanged.
    Only an http(s) target is taken."""
    if "/url?" not in url and "/l.php?" not in url:
        return url  # the common case, without parsing
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().removeprefix("www.")
    except ValueError:
        return url
    keys = _REDIRECTORS.get((host, parts.path))
    if not keys:
        return url
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key in keys:
        target = params.get(key, "").strip()
        if is_web_url(target):
            return target
    return url


def canonical_url(url: str) -> str:
    """The identity form of a link: tracking parameters and fragment removed, scheme and
    host lower-cased, default port dropped, empty path written as ``/``."""
    cleaned = clean_url(url)
    try:
        parts = urlsplit(cleaned)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return cleaned
    scheme = parts.scheme.lower()
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
