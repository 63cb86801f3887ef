"""The reply policy as a table: (reply, tries) → what happens to the row and the run."""

from __future__ import annotations

import pytest

from digest.delivery.policy import decide, mailbox_problem, names_sender, reply_key
from digest.mail.transports import make_reply

CASES = [
    # code, text, stage, tries → status, bounced, repeatable
    (250, "2.0.0 queued", "message", 1, "sent", False, False),
    (451, "4.3.0 try again later", "rcpt", 1, "retry", False, False),
    (451, "4.3.0 try again later", "rcpt", 4, "deferred", False, False),
    (452, "4.2.2 mailbox full", "message", 3, "retry", False, False),
    (550, "5.1.1 no such user", "rcpt", 1, "failed", True, False),
    (553, "5.1.3 bad recipient address syntax", "rcpt", 1, "failed", True, False),
    (550, "5.1.1 no such user", "message", 1, "failed", True, False),
    (553, "5.1.7 bad sender address", "rcpt", 1, "stop", False, False),
    (550, "5.1.8 sender domain does not resolve", "message", 1, "stop", False, False),
    (553, "5.7.1 sender address rejected", "mail", 1, "stop", False, False),
    (550, "mailbox unavailable", "mail", 1, "stop", False, False),
    (552, "5.3.4 message too big", "message", 1, "stop", False, False),
    (552, "message size exceeds limit", "message", 1, "stop", False, False),
    (552, "5.2.2 mailbox full", "rcpt", 1, "failed", False, False),
    # An enhanced code decides before the basic one: a full mailbox after DATA is the reader's.
    (552, "5.2.2 mailbox full", "message", 1, "failed", False, False),
    (552, "5.2.2 mailbox full", "data", 1, "failed", False, False),
    (552, "5.3.4 message too big", "rcpt", 1, "stop", False, False),
    (530, "5.7.0 authentication required", "message", 1, "stop", False, False),
    (554, "5.6.0 malformed content", "message", 1, "stop", False, False),
    (503, "5.5.1 bad sequence of commands", "message", 1, "stop", False, False),
    (500, "5.5.2 command not recognized", "rcpt", 1, "stop", False, False),
    (530, "5.7.0 authentication required", "rcpt", 1, "stop", False, False),
    (501, "5.5.4 syntax error in parameters", "mail", 1, "stop", False, False),
    (554, "5.7.1 relay access denied", "rcpt", 1, "failed", False, True),
    (550, "5.7.1 rejected by policy", "message", 1, "failed", False, True),
    (550, "no such user here", "rcpt", 1, "failed", False, True),
    (554, "transaction failed", "message", 1, "failed", False, True),
]


@pytest.mark.parametrize(("code", "text", "stage", "tries", "status", "bounced", "repeatable"), CASES)
def test_the_reply_policy_table(
    code: int, text: str, stage: str, tries: int, status: str, bounced: bool, repeatable: bool
) -> None:
    outcome = decide(make_reply(code, [text], stage), tries=tries, retries=3)
    assert (outcome.status, outcome.bounced, outcome.repeatable) == (status, bounced, repeatable)
    if status == "stop":
        assert outcome.why in ("the sender", "the message", "the session")


SENDERS = ("bounces+1a-abcdefghij@news.example.org", "digest@example.org")

REFUSALS_NAMING = [
    # text, recipient → about the send (names our sender)?
    ("5.1.0 <digest@example.org>: Sender address rejected: not owned by user", "a@example.net", True),
    ("5.1.0 <Digest@Example.ORG>: address not permitted", "a@example.net", True),
    ("5.1.1 <bounces+zz-qqqqqqqqqq@news.example.org>: unknown", "a@example.net", True),
    ("5.1.1 bounces+zz-qqqqqqqqqq@news.example.org. user unknown", "a@example.net", True),
    ("5.7.1 Sender address rejected: Access denied", "a@example.net", True),
    ("5.1.1 <a@example.net>: Recipient address rejected: User unknown", "a@example.net", False),
    ("5.1.1 The email account that you tried to reach does not exist", "a@example.net", False),
    ("5.1.1 <bounces@example.org>: unknown", "a@example.net", False),  # not our domain
    ("5.1.1 <digest@example.org>: Recipient address rejected", "digest@example.org", False),
]


@pytest.mark.parametrize(("text", "recipient", "about_the_send"), REFUSALS_NAMING)
def test_a_refusal_that_names_our_sender_stops_the_run(
    text: str, recipient: str, about_the_send: bool
) -> None:
    outcome = decide(
        make_reply(550, [text], "rcpt"), tries=1, retries=3, senders=SENDERS, recipient=recipient
    )
    assert (outcome.status == "stop" and outcome.why == "the sender") is about_the_send
    assert names_sender(text, SENDERS, recipient) is about_the_send


def test_the_same_refusal_is_the_same_enhanced_code_whatever_the_basic_one() -> None:
    assert reply_key(make_reply(550, ["5.7.1 no"], "message")) == reply_key(
        make_reply(554, ["5.7.1 x"], "rcpt")
    )
    assert reply_key(make_reply(550, ["no"], "rcpt")) == "550" != reply_key(make_reply(554, ["no"], "rcpt"))


def test_a_mailbox_problem_is_5_1_x_but_not_the_senders() -> None:
    assert mailbox_problem("5.1.1") and mailbox_problem("5.1.10")
    assert not mailbox_problem("5.1.7") and not mailbox_problem("5.7.1") and not mailbox_problem(None)
