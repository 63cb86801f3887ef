"""The size budget of an issue's HTML part: its size on the wire, and what is cut first.

:func:`html_budget_size` is what ``render.max_html_bytes`` is checked against;
:func:`trim_order` is the order an over-budget issue keeps its articles in.
"""

from __future__ import annotations

import binascii
from typing import Any

from digest.render.lead import pick_lead
from digest.render.personalise import PLACEHOLDER_RE

# Each placeholder occurrence may grow by this much when filled (a signed URL, a long name);
# the size budget reserves it so a personalised message still fits.
PLACEHOLDER_ALLOWANCE = 200


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
    :mod:`digest.mail.message` sends each part (its soft breaks around placeholders aside)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    size = 0
    for line in lines:
        encoded = binascii.b2a_qp(line.encode("utf-8"), quotetabs=False, istext=False)
        size += len(encoded) + encoded.count(b"=\n") + 2  # CRLF soft and hard line ends
    return size


def html_budget_size(html: str) -> int:
    """Bytes the HTML part may reach on the wire once personalised: its quoted-printable
    size (what Gmail counts towards its ~102 KB clip: non-Latin text grows 1.7× and more)
    plus an allowance per placeholder (attribute merge fields included)."""
    occurrences = sum(1 for _ in PLACEHOLDER_RE.finditer(html))
    return wire_size(html) + PLACEHOLDER_ALLOWANCE * occurrences
