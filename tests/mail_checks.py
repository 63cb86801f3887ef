"""What a receiving server checks, for the message tests: a throwaway DKIM key and
SpamAssassin's verdict. (No tests here.)"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest


def dkim_key(folder: Path) -> tuple[Path, bytes]:
    """A fresh RSA key file in ``folder`` and the DNS TXT record publishing it (skips without openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test key")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
