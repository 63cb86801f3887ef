"""A connection worker's messages: each claimed row's complete message, made once (ahead of
time by the process's signing pool in a signed send), with the reader's own links."""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING

from digest.config import Config
from digest.delivery.rows import Row
from subscribers.tokens import TokenSigner

if TYPE_CHECKING:
    from digest.delivery.worker import Run

__all__ = ["Links", "Messages", "recipient_links"]


class Messages:
    """A worker's recipients' complete messages: made when asked, or ahead of time by the
    process's signing pool (``run.ahead``) in a signed send.

    A DKIM signature is CPU work that lets go of the GIL. Made only when its connection was
    ready to send, it left a core idle whenever every connection was waiting for the relay;
    the pool makes the claimed rows' messages during those waits.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.links = Links(run.config, run.secret)
        self.pending: dict[int, Future[bytes]] = {}  # row id → its message, being made

    def ahead(self, rows: list[Row]) -> None:
        """Start making these claimed rows' messages (when the process has a signing pool)."""
        if self.run.ahead is not None:
            for row in rows:
                self.pending[row.id] = self.run.ahead.submit(self.build, row)

    def take(self, row: Row) -> bytes:
        """The row's message: made ahead, or made now when the pool has not started it (so a
        connection never waits behind another's batch). DigestError when it cannot be built."""
        future = self.pending.pop(row.id, None)
        return self.build(row) if future is None or future.cancel() else future.result()

    def drop(self) -> None:
        """The worker is done: messages not started are never made."""
        for future in self.pending.values():
            future.cancel()
        self.pending.clear()

    def build(self, row: Row) -> bytes:
        """The recipient's complete message."""
        assert row.subscriber_id is not None
        recipient = {
            "email": row.email,
            "name": row.name,
            **self.links(row.subscriber_id),
            "subscriber_id": row.subscriber_id,
            "attributes": row.attributes,
        }
        return self.run.prepared[row.variant].fill(recipient, message_id=row.message_id)


def recipient_links(config: Config, secret: bytes, subscriber_id: int) -> dict[str, str]:
    """The unsubscribe and preferences URLs of :func:`subscribers.links.subscriber_links`,
    without the confirm token a send does not need."""
    return Links(config, secret)(subscriber_id)


class Links:
    """:func:`recipient_links` for the hot path: the HMAC key is prepared once per run."""

    def __init__(self, config: Config, secret: bytes | str) -> None:

        self.base = config.publication.base_url.rstrip("/")
        self.signer = TokenSigner(secret)

    def __call__(self, subscriber_id: int) -> dict[str, str]:
        token = self.signer.token
        return {
            "unsubscribe_url": f"{self.base}/unsubscribe/{token(subscriber_id, 'unsubscribe')}",
            "preferences_url": f"{self.base}/preferences/{token(subscriber_id, 'preferences')}",
        }
