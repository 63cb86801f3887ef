"""Signed subscriber tokens: purpose-bound, per-subscriber, expiring confirm links, key file."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import load_config
from subscribers.links import subscriber_links
from subscribers.tokens import (
    CONFIRM_TTL,
    InvalidToken,
    TokenExpired,
    load_secret,
    make_token,
    verify_token,
)

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("purpose", ["confirm", "unsubscribe", "preferences"])
def test_round_trip(purpose: str) -> None:
    token = make_token(SECRET, 42, purpose, now=NOW)
    assert verify_token(SECRET, token, purpose, now=NOW) == 42


def test_tokens_are_per_subscriber_and_stable() -> None:
    assert make_token(SECRET, 1, "unsubscribe") == make_token(SECRET, 1, "unsubscribe")
    assert make_token(SECRET, 1, "unsubscribe") != make_token(SECRET, 2, "unsubscribe")


def test_every_single_character_change_is_rejected() -> None:
    token = make_token(SECRET, 7, "unsubscribe")
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_."
    for i, original in enumerate(token):
        for replacement in alphabet:
            if replacement == original:
                continue
            altered = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(InvalidToken):
                verify_token(SECRET, altered, "unsubscribe")
    for broken in ("", token[:-1], token + "A", token.replace(".", ""), "7." + "A" * 43, " " + token):
        with pytest.raises(InvalidToken):
            verify_token(SECRET, broken, "unsubscribe")


def test_another_subscribers_id_with_a_valid_mac_is_rejected() -> None:
    token = make_token(SECRET, 7, "unsubscribe")
    mac = token.split(".")[-1]
    with pytest.raises(InvalidToken):
        verify_token(SECRET, f"8.{mac}", "unsubscribe")


def test_purpose_is_bound() -> None:
    unsubscribe = make_token(SECRET, 3, "unsubscribe")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, unsubscribe, "preferences")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, unsubscribe, "confirm")
    confirm = make_token(SECRET, 3, "confirm", now=NOW)
    with pytest.raises(InvalidToken):
        verify_token(SECRET, confirm, "unsubscribe", now=NOW)


def test_other_secret_is_rejected() -> None:
    token = make_token(SECRET, 3, "preferences")
    with pytest.raises(InvalidToken):
        verify_token(b"another-secret-another-secret-xx", token, "preferences")


def test_confirm_token_expires() -> None:
    token = make_token(SECRET, 9, "confirm", now=NOW)
    assert verify_token(SECRET, token, "confirm", now=NOW + CONFIRM_TTL - timedelta(seconds=1)) == 9
    with pytest.raises(TokenExpired):
        verify_token(SECRET, token, "confirm", now=NOW + CONFIRM_TTL + timedelta(seconds=1))
    with pytest.raises(InvalidToken):  # issued in the future
        verify_token(SECRET, token, "confirm", now=NOW - timedelta(hours=1))


def test_unknown_purpose_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        make_token(SECRET, 1, "login")


def test_secret_from_environment(tmp_path: Path) -> None:
    config = load_config(None, db=str(tmp_path / "digest.db"))
    assert load_secret(config) == b"test-secret-not-for-production"
    assert not (tmp_path / "digest.key").exists()


def test_key_file_is_generated_with_mode_0600_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_SECRET")
    (tmp_path / "data").mkdir()
    config = load_config(None, db=str(tmp_path / "data" / "digest.db"))
    old_umask = os.umask(0)  # even a permissive umask must not make the key readable by others
    try:
        first = load_secret(config)
    finally:
        os.umask(old_umask)
    key_file = tmp_path / "data" / "digest.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_secret(config) == first
    assert list((tmp_path / "data").iterdir()) == [key_file]  # no temp file left behind


def test_links_use_base_url(tmp_path: Path) -> None:
    config = load_config(None, db=str(tmp_path / "digest.db"))
    config.publication.base_url = "https://news.example.org/"
    links = subscriber_links(config, SECRET, {"id": 5, "email": "a@example.org"}, now=NOW)
    assert links["unsubscribe_url"].startswith("https://news.example.org/unsubscribe/5.")
    assert links["preferences_url"].startswith("https://news.example.org/preferences/5.")
    token = links["confirm_url"].rsplit("/", 1)[1]
    assert verify_token(SECRET, token, "confirm", now=NOW) == 5


def test_a_short_digest_secret_is_refused_without_echoing_it(
    workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.errors import DigestError
    from subscribers.tokens import load_secret

    monkeypatch.setenv("DIGEST_SECRET", "hunter2")
    with pytest.raises(DigestError) as info:
        load_secret(load_config(workspace / "digest.toml"))
    assert "too short" in str(info.value)
    assert "hunter2" not in str(info.value)
