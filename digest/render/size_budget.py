"""The size budget of an issue's HTML part: its size on the wire, and what is cut first.

:func:`html_budget_size` is what ``render.max_html_bytes`` is checked against;
:func:`trim_order` is the order an over-budget issue keeps its articles in.
"""

from __future__ import annotations

from typing import Any

from digest.render.lead import pick_lead
from digest.render.wire import URL_ROOM, encode_qp, shorter_encoding


def trim_order(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The articles in the order an over-budget issue keeps them: the lead story
    (:func:`~digest.render.lead.pick_lead`), then the newest article of every other section
    (in the issue's section order), then all the others newest first.

    Keeping the first N of this list never leaves a shown section empty; only when N is
    smaller than the number of sections do whole sections go, the issue's last ones first.
    """

    def newest(article: dict[str, Any]) -> tuple[str, int]:
        return (article["published_at"], article["id"])

    lead = pick_lead(sections)
    leads = [lead] if lead is not None else []
    leads += [
        max(s["articles"], key=newest)
        for s in sections
        if s["articles"] and (lead is None or all(a["id"] != lead["id"] for a in s["articles"]))
    ]
    lead_ids = {a["id"] for a in leads}
    rest = sorted(
        (a for s in sections for a in s["articles"] if a["id"] not in lead_ids), key=newest, reverse=True
    )
    return leads + rest


def wire_size(text: str) -> int:
    """Bytes ``text`` takes as a quoted-printable MIME body with CRLF line ends, the way
    :mod:`digest.mail.message` encodes a part (placeholders left as they are)."""
    return sum(map(len, encode_qp(text)[0]))


def html_budget_size(html: str, *, url_chars: int = URL_ROOM) -> int:
    """Bytes the HTML part may reach on the wire once personalised: the size in the shorter
    transfer encoding (quoted-printable, or base64, which non-Latin text needs: it triples in
    quoted-printable) with the longest values that can be filled in
    (:func:`digest.render.wire.worst_sizes`; ``url_chars`` from :func:`digest.render.wire.link_room`).
    The message sends the part in that encoding, so the message as sent stays within it."""
    return shorter_encoding(html, html=True, url_chars=url_chars)[1]
