"""How strong a DKIM key is: its size, and the sizes receivers refuse or frown on.

Receivers refuse a DKIM signature made with an RSA key under 1024 bits (RFC 8301), and
a DMARC policy of ``p=reject`` then turns every issue into a bounce; under 2048 bits
is accepted but weak. The configuration refuses the first when it loads
(:mod:`digest.config`), the signer when it loads the key, and `digest doctor` fails
the first and warns about the second.
"""

from __future__ import annotations

from pathlib import Path

from digest.errors import ConfigError

MIN_BITS = 1024
"""Receivers refuse smaller RSA keys (RFC 8301 §3.2)."""
GOOD_BITS = 2048
"""Anything smaller is a doctor warning."""

MAKE_KEY = "openssl genrsa -out dkim.pem 2048, then publish its public part"


def rsa_bits(pem: bytes) -> int | None:
    """The size in bits of the RSA private key in ``pem``; None when it holds no RSA key
    (an Ed25519 key, a file that does not parse: the signer says what is wrong with it)."""
    from cryptography.hazmat.primitives.asymmetric import rsa  # lazy: start-up
    from cryptography.hazmat.primitives.serialization import load_pem_private_key  # lazy: start-up

    if b"PRIVATE KEY" not in pem:
        return None
    try:
        key = load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError):
        return None
    return key.key_size if isinstance(key, rsa.RSAPrivateKey) else None


def key_file_bits(path: Path) -> int | None:
    """:func:`rsa_bits` of the key file at ``path``; None when it cannot be read."""
    try:
        return rsa_bits(path.read_bytes())
    except OSError:
        return None


def too_small(bits: int, where: str) -> str:
    """The one line that refuses a key of ``bits`` bits found at ``where``."""
    return (
        f"{where}: an RSA key of {bits} bits; receivers reject DKIM keys under {MIN_BITS} bits "
        f"(RFC 8301), so every signed message would fail: make a new key ({MAKE_KEY})"
    )


def refuse_weak_key(path: Path, where: str) -> None:
    """Raise :class:`ConfigError` when the key file at ``path`` holds an RSA key under
    :data:`MIN_BITS` (a file that cannot be read or parsed is left to the signer)."""
    bits = key_file_bits(path)
    if bits is not None and bits < MIN_BITS:
        raise ConfigError(too_small(bits, f"{where} {path}"))
