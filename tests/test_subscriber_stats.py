"""`digest subscribers stats` counts every kind of consent event the list's life cycle writes:
sign-ups from the form, confirmations, bounce and complaint reports, mailed unsubscribes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bounce_support import fill_maildir, fixture_bytes, make_bounce_workspace

from digest.config import load_config
from digest.signup import request_signup
from digest.store.database import utcnow
from subscribers.tokens import load_secret


def test_stats_count_signups_reports_and_mailed_unsubscribes(tmp_path: Path) -> None:
    ws = make_bounce_workspace(tmp_path / "ws")  # 9 subscribers added now
    fill_maildir(tmp_path / "bounces", list(fixture_bytes().values()))
    assert ws.invoke("bounces", "process", f"maildir:{tmp_path / 'bounces'}").exit_code == 0
    config = load_config(ws.config_path)
    db = ws.db()
    secret = load_secret(config)
    request_signup(db, config, secret, email="new@example.org", send=False)
    # A sign-up from 40 days ago is outside the window: neither its signup nor its subscribe counts.
    request_signup(db, config, secret, email="old@example.org", send=False, now=utcnow() - timedelta(days=40))
    confirmed = ws.invoke("subscribers", "confirm", "new@example.org", "--no-email")
    assert confirmed.exit_code == 0, confirmed.output
    assert ws.invoke("subscribers", "resubscribe", "leaver@example.com").exit_code == 0
    assert ws.invoke("subscribers", "set", "slow@example.com", "--name", "Slow").exit_code == 0
    assert ws.invoke("subscribers", "remove", "holiday@example.com", "--yes").exit_code == 0

    result = ws.invoke("subscribers", "stats", "--json")
    assert result.exit_code == 0, result.output
    recent = json.loads(result.output)["last_30_days"]
    assert recent == {
        "signup": 1,
        "subscribe": 10,
        "confirm": 1,
        "resubscribe": 1,
        "unsubscribe": 2,  # the complaint's and the mailed unsubscribe's status changes
        "mailed_unsubscribe": 1,
        "complaint": 1,
        "remove": 1,
        "bounce": 3,  # three hard reports, each past the hard limit of 1
        "hard_bounce": 3,
        "soft_bounce": 2,
        "preferences": 1,
    }

    text = ws.invoke("subscribers", "stats").output
    assert "last 30 days: 1 signup, 10 subscribe, 1 confirm, 1 resubscribe\n" in text
    assert "              2 unsubscribe, 1 mailed_unsubscribe, 1 complaint, 1 remove\n" in text
    assert "              3 bounce, 3 hard_bounce, 2 soft_bounce, 1 preferences\n" in text
