"""The clipping budget: Gmail clips at ~102 KB of the message as sent, so the HTML part is
measured as it goes on the wire (quoted-printable), not as decoded text."""

from __future__ import annotations

import random
import re
from datetime import timedelta
from pathlib import Path

from test_render_support import PERIOD_END, add_article, make_store

from digest.compose.build import compose_issue
from digest.mail.message import build_message
from digest.render.size_budget import wire_size
from digest.render.variants import render_issue

RECIPIENT = {
    "subscriber_id": 1,
    "name": "Ада Лавлейс",
    "email": "ada@example.org",
    "unsubscribe_url": "https://news.harbour-gazette.example/unsubscribe/" + "x" * 80,
    "preferences_url": "https://news.harbour-gazette.example/preferences/" + "y" * 80,
}

_GREEK = [
    "λιμάνι",
    "συμβούλιο",
    "φράγμα",
    "παλίρροια",
    "μηχανικοί",
    "μετρήσεις",
    "κάτοικοι",
    "κόστος",
    "ψαράδες",
    "αγορά",
]


def _html_part_on_the_wire(message: bytes) -> bytes:
    """The HTML part's body bytes exactly as sent (still quoted-printable)."""
    start = message.index(b"Content-Type: text/html")
    body = message.index(b"\r\n\r\n", start) + 4
    end = message.index(b"\r\n--=_digest_", body)
    return message[body:end]


def non_latin_issue(tmp_path: Path, count: int = 80):
    config, db = make_store(tmp_path / "ws")
    rng = random.Random(7)
    for i in range(count):
        add_article(
            db,
            title=" ".join(rng.choice(_GREEK) for _ in range(9)) + f" {i}",
            category=["World", "Technology", "Science", "Culture"][i % 4],
            published_at=PERIOD_END - timedelta(minutes=5 * i + 1),
            source="Λιμενική Εφημερίδα",
            summary=" ".join(rng.choice(_GREEK) for _ in range(60)) + ".",
        )
    issue = compose_issue(db, config, "big", period_end=PERIOD_END).issue
    assert issue is not None
    return config, db, issue


def test_wire_size_is_the_quoted_printable_size_message_sends(tmp_path: Path) -> None:
    config, db, issue = non_latin_issue(tmp_path, 20)
    rendered = render_issue(db, config, issue["id"])
    wire = _html_part_on_the_wire(build_message(config, issue, rendered, RECIPIENT))
    # Equal but for the soft breaks around placeholders and the filled-in values.
    assert abs(wire_size(rendered.html) - len(wire)) < 2000, (wire_size(rendered.html), len(wire))
    assert wire_size(rendered.html) > 1.5 * len(rendered.html.encode())


def test_a_trimmed_non_latin_issue_fits_the_budget_as_sent(tmp_path: Path) -> None:
    config, db, issue = non_latin_issue(tmp_path)
    rendered = render_issue(db, config, issue["id"])
    assert rendered.trimmed > 0
    message = build_message(config, issue, rendered, RECIPIENT)
    html_part = _html_part_on_the_wire(message)
    assert len(html_part) <= config.render.max_html_bytes, len(html_part)
    # Not trimmed to nothing: the budget is used.
    assert len(html_part) > 0.8 * config.render.max_html_bytes
    assert re.search(rb"<h3", html_part.replace(b"=\r\n", b""))
