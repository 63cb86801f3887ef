"""DKIM signing of outgoing mail: which headers are signed, and a fast RSA signer.

The RSA signature is made by OpenSSL through ``cryptography`` (about 0.7 ms,
against 11-13 ms for dkimpy's pure-Python RSA). For a send, :meth:`DkimSigner.prepare`
does the rest once per prepared message: the fixed headers are parsed and
relaxed-canonicalised, the h= selection worked out, and the body's first piece
hashed; each fill then only canonicalises its four per-recipient headers and
hashes the rest of its body. Bodies are signed ``relaxed`` too, which is the
identity for a body with no run of spaces or tabs, no space at a line's end and
exactly one CRLF at its end: :mod:`digest.mail.message` encodes bodies that way
(a second space in a row is ``=20``, a tab ``=09``), and :meth:`DkimSigner.prepare`
checks it, with dkimpy's path as the fallback. Ed25519 keys are signed by dkimpy
(PyNaCl). Signatures are byte for byte dkimpy's and verify with ``dkim.verify``; the
tests check that, also after a real Postfix hop."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.config import Config
from digest.dkim_keys import MIN_BITS, too_small
from digest.errors import DigestError

__all__ = [
    "OVERSIGNED",
    "DkimSigner",
    "PreparedSigner",
    "dkim_signer",
    "relaxed_body_invariant",
    "relaxed_value",
    "signed_header_list",
]

OVERSIGNED = (
    b"From",
    b"To",
    b"Cc",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"Sender",
    b"In-Reply-To",
    b"References",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"List-Archive",
    b"List-Help",
    b"List-Owner",
    b"List-Post",
    b"List-Subscribe",
    b"MIME-Version",
    b"Content-Type",
    b"Content-Transfer-Encoding",
    b"Feedback-ID",
)
"""Signed once more than they occur (RFC 6376 §8.15), absent ones too: a second Subject or
List-Unsubscribe, or a Reply-To, Cc or Sender the message did not have, added on the way
breaks the signature."""

CANONICALIZATION = b"relaxed/relaxed"
"""Headers and body relaxed: a relay that refolds a header or re-wraps whitespace keeps the
signature valid."""


def signed_header_list(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The ``h=`` list for a message with ``headers``: each of :data:`OVERSIGNED` once per
    occurrence plus once more (so once when the message has none)."""
    counts: dict[bytes, int] = {}
    for name, _ in headers:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    listed: list[bytes] = []
    for name in OVERSIGNED:
        listed.extend([name.lower()] * (counts.get(name.lower(), 0) + 1))
    return listed


def relaxed_body_invariant(data: bytes) -> bool:
    """True when relaxed body canonicalisation leaves ``data`` (a piece of a body that ends in
    CRLF, or is followed by one) as it is: no tab, no two spaces in a row, no space before a
    line end or at the piece's end."""
    return b"\t" not in data and b"  " not in data and b" \r\n" not in data and not data.endswith(b" ")


@dataclass(frozen=True)
class DkimSigner:
    """DKIM signing with the configured key (relaxed/relaxed, rsa-sha256 or ed25519-sha256).

    :meth:`sign` signs any message (dkimpy parses its head); :meth:`prepare` signs the fills of
    one prepared message with no parse. For RSA the signature itself is made by OpenSSL
    (``cryptography``) instead of dkimpy's pure-Python RSA.
    """

    domain: bytes
    selector: bytes
    key: bytes
    algorithm: bytes = b"rsa-sha256"
    _rsa: Any = field(default=None, compare=False, repr=False)
    _templates: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)  # see signature_field
    _scheme: tuple[Any, Any] = field(default=(), compare=False, repr=False)  # PKCS#1 v1.5 of a SHA-256

    def __post_init__(self) -> None:
        if self.algorithm == b"rsa-sha256" and self._rsa is None:
            from cryptography.hazmat.primitives.asymmetric import rsa  # lazy: start-up
            from cryptography.hazmat.primitives.serialization import load_pem_private_key  # lazy: start-up

            try:
                key = load_pem_private_key(self.key, password=None)
            except (ValueError, TypeError) as exc:
                raise DigestError(f"not a usable PEM private key ({exc})") from None
            if not isinstance(key, rsa.RSAPrivateKey):
                raise DigestError("a PEM key for rsa-sha256 must be an RSA key")
            if key.key_size < MIN_BITS:
                raise DigestError(too_small(key.key_size, "the key"))
            object.__setattr__(self, "_rsa", key)
        if self._rsa is not None and not self._scheme:
            from cryptography.hazmat.primitives import hashes  # lazy: start-up
            from cryptography.hazmat.primitives.asymmetric import padding, utils  # lazy: start-up

            object.__setattr__(self, "_scheme", (padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())))

    def sign(self, message: bytes) -> bytes:
        """Return ``message`` with its DKIM-Signature header in front."""
        import dkim  # lazy: start-up

        if self._rsa is None:
            headers, _ = dkim.rfc822_parse(message)
            signature = dkim.sign(
                message,
                self.selector,
                self.domain,
                self.key,
                canonicalize=tuple(CANONICALIZATION.split(b"/")),
                signature_algorithm=self.algorithm,
                include_headers=signed_header_list(headers),
                linesep=b"\r\n",
            )
            return signature + message
        return self._sign_rsa(message) + message

    def _sign_rsa(self, message: bytes) -> bytes:
        """The DKIM-Signature header field as dkimpy's ``sign`` builds it, signed by OpenSSL."""
        import dkim  # lazy: start-up

        # dkimpy's parser splits the whole message into lines; only the head needs parsing.
        end = message.find(b"\r\n\r\n")
        head, body = (message, b"") if end < 0 else (message[: end + 2], message[end + 4 :])
        headers, _ = dkim.rfc822_parse(head + b"\r\n")
        include = signed_header_list(headers)
        digest = hashlib.sha256()
        for name, value in dkim.select_headers(_relaxed().canonicalize_headers(headers), include):
            digest.update(name + b":" + value)
        body_hash = hashlib.sha256(_relaxed().canonicalize_body(body)).digest()
        return self.signature_field(include, body_hash, digest)

    def signature_field(self, include: list[bytes], body_hash: bytes, digest: Any) -> bytes:
        """The signed ``DKIM-Signature`` header line (CRLF-terminated), as dkimpy writes it.

        ``digest`` is a sha256 fed with the selected headers, relaxed-canonicalised (this adds the
        signature header itself, ``b=`` empty); ``body_hash`` is the raw sha256 of the body."""
        stamp = str(int(time.time())).encode("ascii")
        key = (tuple(include), len(stamp))
        templates = self._templates.get(key)
        if templates is None:
            templates = self._templates[key] = self._make_templates(*key)
        hashed, final = templates
        values = {_STAMP: stamp, _BODY_HASH: base64.b64encode(body_hash)}
        # dkim.hash_headers: the signature header is hashed relaxed, with no trailing CRLF.
        digest.update(hashed.fill(values))
        signature = self._rsa.sign(digest.digest(), *self._scheme)
        values[_SIGNATURE] = base64.b64encode(signature)
        return final.fill(values)

    def _make_templates(self, include: tuple[bytes, ...], stamp_length: int) -> tuple[_Template, _Template]:
        """The signature header as dkimpy folds it, with t=, bh= and b= left as slots: the
        relaxed form that is hashed (``b=`` empty) and the final field. The slots' lengths are
        fixed (t= has ``stamp_length`` digits, bh= 44 characters, b= the key's size in base64)
        and none holds a space, so dkimpy's folding puts every other byte in the same place
        whatever their values: the fold is done once, here, on stand-ins."""
        import dkim  # lazy: start-up

        fields = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", CANONICALIZATION),
            (b"d", self.domain),
            (b"i", b"@" + self.domain),
            (b"q", b"dns/txt"),
            (b"s", self.selector),
            (b"t", _STAMP * stamp_length),
            (b"h", b" : ".join(include)),
            (b"bh", _BODY_HASH * 44),
            (b"b", b"0" * 60),  # folds b= onto a line of its own, as dkimpy does
        ]
        name = b"DKIM-Signature"
        value = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(name), linesep=b"\r\n")
        placeholder = b"b=" + b"0" * 60
        value = value[:-60] if value.endswith(placeholder) else dkim.RE_BTAG.sub(b"\\1", value)
        hashed = _Template(b"dkim-signature:" + relaxed_value(value))
        fields[-1] = (b"b", _SIGNATURE * (4 * ((self._rsa.key_size + 7) // 8 + 2) // 3))
        value = b"; ".join(b"=".join(f) for f in fields) + b"\r\n"
        final = _Template(name + b": " + dkim.fold(value, namelen=len(name), linesep=b"\r\n"))
        return hashed, final

    def prepare(
        self, varying: tuple[bytes, ...], head: bytes, segments: list[bytes]
    ) -> PreparedSigner | None:
        """Signing for the fills of one prepared message, or None when only :meth:`sign` can do it.

        The message is the headers ``varying`` (filled per recipient, in this order, at the top),
        then ``head`` (the fixed headers and the blank line), then a body made of ``segments``
        with per-recipient values between them. The fixed headers are parsed and canonicalised
        here, once; the body hash of the first segment is taken here too. Relaxed body
        canonicalisation leaves the body alone when each piece is :func:`relaxed_body_invariant`
        and it ends in exactly one CRLF — checked here on the segments (the fill checks its
        values), not assumed. Ed25519 keys (signed by dkimpy) get None.
        """
        import dkim  # lazy: start-up

        if self._rsa is None or not head.endswith(b"\r\n\r\n"):
            return None
        first, last = segments[0], segments[-1]
        if not last.endswith(b"\r\n") or last.endswith(b"\r\n\r\n") or last == b"\r\n":
            return None
        if not all(relaxed_body_invariant(segment) for segment in segments):
            return None
        fixed, rest = dkim.rfc822_parse(head)
        if rest or any(b"\r\n" in name or not name for name, _ in fixed):
            return None
        include = signed_header_list([(name, b"") for name in varying] + fixed)
        lowered = [name.lower() for name in varying]
        # dkimpy's own selection (bottom-up, each occurrence once) on stand-ins: positions.
        stand_ins = [(name, n) for n, name in enumerate(varying + tuple(name for name, _ in fixed))]
        order = [n for _, n in dkim.select_headers(stand_ins, include)]
        canonical = [b""] * len(varying) + [
            name + b":" + value for name, value in _relaxed().canonicalize_headers(fixed)
        ]
        return PreparedSigner(self, include, lowered, order, canonical, hashlib.sha256(first))


def relaxed_value(value: bytes) -> bytes:
    """A header value in relaxed canonical form (RFC 6376 §3.4.2): unfolded, runs of spaces and
    tabs as one space, no space at either end (the CRLF is the caller's)."""
    if b"\n" not in value and b"\t" not in value and b"  " not in value:
        return value.strip()  # the usual value: one line, single spaces
    return _WSP.sub(b" ", _FOLD.sub(b"", value)).strip()


_WSP = re.compile(rb"[\t ]+")
_FOLD = re.compile(rb"\r?\n")


_STAMP, _BODY_HASH, _SIGNATURE = b"\x01", b"\x02", b"\x03"
"""Stand-in bytes for the slots of a :class:`_Template` (t=, bh=, b=)."""
_SLOTS = re.compile(rb"\x01+|\x02+|\x03+")


class _Template:
    """Bytes with slots: runs of a stand-in byte, filled in order from that slot's value (a
    value folded over two lines fills two runs, in order)."""

    def __init__(self, text: bytes) -> None:
        self.pieces: list[bytes | tuple[bytes, int, int]] = []
        used: dict[bytes, int] = {}
        at = 0
        for m in _SLOTS.finditer(text):
            mark, length = m.group()[:1], len(m.group())
            self.pieces.extend([text[at : m.start()], (mark, used.get(mark, 0), length)])
            used[mark] = used.get(mark, 0) + length
            at = m.end()
        self.pieces.append(text[at:])
        self.lengths = used

    def fill(self, values: dict[bytes, bytes]) -> bytes:
        """The text with each slot filled from ``values`` (whose lengths must be the slots')."""
        for mark, length in self.lengths.items():
            if len(values[mark]) != length:
                raise ValueError(f"slot {mark!r} is {length} bytes, not {len(values[mark])}")
        return b"".join(
            piece if isinstance(piece, bytes) else values[piece[0]][piece[1] : piece[1] + piece[2]]
            for piece in self.pieces
        )


@functools.cache
def _relaxed() -> Any:
    from dkim.canonicalization import CanonicalizationPolicy  # lazy: start-up

    return CanonicalizationPolicy.from_c_value(CANONICALIZATION)


@dataclass
class PreparedSigner:
    """:meth:`DkimSigner.prepare`'s result: signs each fill of one prepared message with no parse
    and no canonicalisation pass over the message (see :meth:`sign`)."""

    signer: DkimSigner
    include: list[bytes]  # the h= list
    names: list[bytes]  # the per-recipient header names, lower case
    order: list[int]  # the headers hashed, in h= order: positions in [varying..., fixed...]
    canonical: list[bytes]  # relaxed "name:value\r\n" of the fixed headers (after len(names) blanks)
    body_start: Any  # sha256 of the body's first piece

    def sign(self, values: list[bytes], rest: bytes | memoryview) -> bytes:
        """The ``DKIM-Signature`` line for the message whose per-recipient header values are
        ``values`` (in :meth:`DkimSigner.prepare`'s order) and whose body is the prepared first
        piece followed by ``rest`` (one buffer: hashlib lets go of the GIL once per big update,
        and every hand-off costs when several connection threads share the process)."""
        body = self.body_start.copy()
        body.update(rest)
        canonical = self.canonical.copy()
        for n, (name, value) in enumerate(zip(self.names, values, strict=True)):
            canonical[n] = name + b":" + relaxed_value(value) + b"\r\n"
        digest = hashlib.sha256(b"".join([canonical[n] for n in self.order]))
        return self.signer.signature_field(self.include, body.digest(), digest)


_LOADED: dict[tuple[str, int, int, str, str], DkimSigner] = {}
_LOADED_LOCK = threading.Lock()


def dkim_signer(config: Config) -> DkimSigner | None:
    """The signer for ``config.dkim``, or None when DKIM is not configured.

    Kept in memory while the key file (path, mtime, size), the domain and the selector stay
    the same: reading and loading the key (about 40 ms) costs more than signing a message,
    and every transactional email (a sign-up's confirmation) asks for it."""
    if not config.dkim.enabled:
        return None
    path = config.path(config.dkim.key_file)
    try:
        before = path.stat()
    except OSError:
        return _load_signer(config, path)  # its own error for a key it cannot read
    key = (str(path), before.st_mtime_ns, before.st_size, config.dkim.domain, config.dkim.selector)
    with _LOADED_LOCK:
        signer = _LOADED.get(key)
    if signer is not None:
        return signer
    signer = _load_signer(config, path)
    with contextlib.suppress(OSError):
        after = path.stat()
        if (after.st_mtime_ns, after.st_size) == key[1:3]:  # not changed while it was read
            with _LOADED_LOCK:
                if len(_LOADED) >= 8:
                    _LOADED.clear()
                _LOADED[key] = signer
    return signer


def _load_signer(config: Config, path: Path) -> DkimSigner:
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise DigestError(f"dkim.key_file {path}: cannot read the private key ({exc.strerror})") from None
    algorithm = b"rsa-sha256"
    if b"PRIVATE KEY" not in key:
        # dkimpy takes an Ed25519 key as 32 raw bytes, base64-encoded; it signs with PyNaCl.
        algorithm = b"ed25519-sha256"
        try:
            # A probe: is PyNaCl installed? (dkimpy imports it itself.)
            import nacl.signing  # noqa: F401  # lazy: start-up
        except ImportError:
            raise DigestError(
                f"dkim.key_file {path}: not a PEM RSA key, and Ed25519 signing needs PyNaCl "
                "(pip install pynacl)"
            ) from None
    try:
        return DkimSigner(
            domain=config.dkim.domain.encode("ascii"),
            selector=config.dkim.selector.encode("ascii"),
            key=key,
            algorithm=algorithm,
        )
    except DigestError as exc:
        raise DigestError(f"dkim.key_file {path}: {exc}") from None
