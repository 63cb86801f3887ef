"""What a receiving server checks, for the message tests: a throwaway DKIM key and
SpamAssassin's verdict. (No tests here.)"""

from __future__ import annotations

import base64
import os
import re
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


def spamassassin(message: bytes, home: Path) -> tuple[float, list[tuple[str, str]], str]:
    """SpamAssassin's score for ``message``, the rules that fired as (points, name), and the report.

    Runs offline (-L) with ``home`` as HOME, so the user's own SpamAssassin settings stay out.
    """
    home.mkdir(exist_ok=True)
    report = subprocess.run(
        ["spamassassin", "-L", "-t"],
        input=message,
        capture_output=True,
        env={**os.environ, "HOME": str(home)},
        timeout=300,
    ).stdout.decode("utf-8", "replace")
    status = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.MULTILINE)
    assert status, report[-3000:]
    rules = re.findall(r"^\s*(-?\d+\.\d+)[ \t]+([A-Z0-9_]+)\s", report, re.MULTILINE)
    return float(status.group(1)), rules, report
