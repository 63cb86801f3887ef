"""`digest doctor`: check a workspace before the first real send."""

from __future__ import annotations

import click

from digest.cli.common import App, echo_json, json_option, pass_app


@click.command(name="doctor")
@json_option
@click.option("--resolver", metavar="HOST[:PORT]", help="Ask this DNS server instead of the system's.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per network check.")
@click.option(
    "--sending-ip",
    metavar="ADDRESS",
    help="The public address mail leaves from, for its reverse DNS (default: the one reaching the relay).",
)
@pass_app
def doctor(app: App, as_json: bool, resolver: str | None, timeout: float, sending_ip: str | None) -> None:
    """Check the setup before a real send: one ✔/⚠/✘ line per check, with the fix.

    Checks: the config loads; base_url is https and public (for SMTP
    transports); the SMTP server answers (connect, EHLO, STARTTLS when asked,
    AUTH with the configured user; no message is sent); SPF, DKIM (the record
    at selector._domainkey matches dkim.key_file, a key of 2048 bits) and DMARC
    of the From domain, and BIMI readiness (DMARC quarantine/reject at 100 %);
    the sending address's reverse DNS, confirmed forward, names the EHLO name;
    the latest issue's size against the clipping budget and its SpamAssassin
    score (when installed); the web app answers at base_url/healthz; no secret
    in the config file; the database and keys are private (chmod 600).
    Exits 1 when any check fails (✘); warnings (⚠) do not.

    \b
    Example:
      digest doctor
      digest doctor --resolver 1.1.1.1 --json
      digest doctor --sending-ip 203.0.113.25
    """
    from digest.doctor import failed, run_doctor  # lazy: start-up

    checks = run_doctor(
        lambda: app.config, resolver=resolver, timeout=timeout, debug=app.debug, sending_ip=sending_ip
    )
    if as_json:
        echo_json({"ok": not failed(checks), "checks": [check.as_dict() for check in checks]})
    else:
        for check in checks:
            click.echo(check.line())
    if failed(checks):
        raise SystemExit(1)
