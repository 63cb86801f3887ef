"""Does the configured SMTP server answer: connect, EHLO, STARTTLS when asked, AUTH. No message is sent."""

from __future__ import annotations

import smtplib
import ssl

from digest.config import SMTP_PASSWORD_ENV, Config
from digest.doctor import FAIL, OK, WARN, Check
from digest.errors import DigestError

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def check_transport(config: Config, *, timeout: float = 10.0) -> Check:
    """Open a session with the transport's server as a send would, then QUIT before MAIL FROM."""
    from digest.transports import _helo_name, parse_transport_url

    try:
        spec = parse_transport_url(config.delivery.transport)
    except DigestError as exc:
        return Check("transport", FAIL, str(exc), "fix delivery.transport")
    if spec.scheme in ("maildir", "mbox"):
        return Check(
            "transport",
            WARN,
            f"{spec.describe()} writes files; no mail leaves this machine",
            "set delivery.transport = smtp://USER@HOST:587?starttls=true (or smtps://) for real sends",
        )
    where = f"{spec.host}:{spec.port}"
    helo = _helo_name(config)
    user = spec.user or config.delivery.smtp_user
    password = config.smtp_password
    context = ssl.create_default_context()
    steps = ["connected", "EHLO"]
    notes: list[tuple[str, str]] = []  # (warning, fix)
    try:
        if spec.scheme == "smtps":
            session: smtplib.SMTP = smtplib.SMTP_SSL(spec.host, spec.port, timeout=timeout, context=context)
            steps[0] = "connected with TLS"
        else:
            session = smtplib.SMTP(spec.host, spec.port, timeout=timeout)
        with session:
            code, reply = session.ehlo(helo)
            if code != 250:
                return Check(
                    "transport", FAIL, f"{where} refused EHLO: {code} {_text(reply)}", "check the host"
                )
            encrypted = spec.scheme == "smtps"
            if spec.starttls:
                if not session.has_extn("starttls"):
                    return Check(
                        "transport",
                        FAIL,
                        f"{where} does not offer STARTTLS, which the transport URL asks for",
                        "use the server's submission port (587), smtps://HOST:465, or fix the server",
                    )
                session.starttls(context=context)
                session.ehlo(helo)
                encrypted = True
                steps.append("STARTTLS")
            elif not encrypted and spec.host not in _LOOPBACK:
                offered = session.has_extn("starttls")
                notes.append(
                    (
                        "the session is not encrypted"
                        + (" although the server offers STARTTLS" if offered else ""),
                        "add ?starttls=true to delivery.transport" if offered else "use smtps:// or STARTTLS",
                    )
                )
            if user:
                if password is None:
                    return Check(
                        "transport",
                        FAIL,
                        f"user {user!r} is set but {SMTP_PASSWORD_ENV} is not",
                        f"export {SMTP_PASSWORD_ENV} in the environment that runs digest",
                    )
                if not encrypted and spec.host not in _LOOPBACK:
                    return Check(
                        "transport",
                        FAIL,
                        f"{where}: the password would cross the network unencrypted",
                        "use smtps:// or add ?starttls=true to delivery.transport",
                    )
                if not session.has_extn("auth"):
                    return Check(
                        "transport",
                        FAIL,
                        f"{where} offers no AUTH"
                        + ("" if encrypted else " (some servers offer it only after STARTTLS)"),
                        "remove the user from delivery.transport, or enable TLS",
                    )
                session.login(user, password)
                steps.append(f"AUTH as {user}")
    except smtplib.SMTPAuthenticationError as exc:
        return Check(
            "transport",
            FAIL,
            f"{where} rejected the login for {user!r}: {exc.smtp_code} {_text(exc.smtp_error)}",
            f"check the user and {SMTP_PASSWORD_ENV}",
        )
    except ssl.SSLCertVerificationError as exc:
        return Check(
            "transport",
            FAIL,
            f"{where}: TLS certificate not trusted ({exc.verify_message})",
            "fix the server's certificate, or use the host name the certificate names",
        )
    except (OSError, smtplib.SMTPException) as exc:
        return Check(
            "transport",
            FAIL,
            f"{where} does not answer as an SMTP server ({_describe(exc)})",
            "check delivery.transport's host and port, and that the server runs",
        )
    done = ", ".join(steps)
    if notes:
        warning, fix = notes[0]
        return Check("transport", WARN, f"{spec.describe()}: {done}; but {warning}", fix)
    return Check("transport", OK, f"{spec.describe()}: {done} (no message sent)")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__
