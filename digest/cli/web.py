"""`digest web` commands: serve the sign-up, link and archive pages; print an embeddable sign-up form."""

from __future__ import annotations

import click

from digest.cli.common import App, pass_app


@click.group(name="web")
def web() -> None:
    """The web app behind the links in every email.

    \b
    Example:
      digest web serve --port 8080
    """


@web.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.option(
    "--workers", default=0, type=click.IntRange(0, 256), help="Worker processes (default: one per core)."
)
@click.option(
    "--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Threads per worker."
)
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds a request may take (a stalled client is cut off after this).",
)
@pass_app
def web_serve(app: App, host: str, port: int, workers: int, threads: int, timeout: float) -> None:
    """Serve sign-up, confirm, unsubscribe (one-click), preferences, issues, the archive and its feed.

    A production server (gunicorn, pre-fork, threaded workers that park idle
    connections): put it behind a reverse proxy that terminates HTTPS at the
    config's publication.base_url. Tokens are cut out of its access log.
    Stop it with Ctrl-C or SIGTERM.

    \b
    Example:
      digest web serve --host 127.0.0.1 --port 8080 --workers 4
    """
    from digest.web.server import ServeOptions, listen, serve  # lazy: start-up

    options = ServeOptions(workers=workers, threads=threads, timeout=timeout)
    sock = listen(host, port)
    bound = sock.getsockname()[1]

    def announce() -> None:
        click.echo(
            f"Serving {app.config.publication.name} on http://{host}:{bound} with {options.worker_count} "
            f"worker(s) (public address: {app.config.publication.base_url}); Ctrl-C to stop"
        )

    # The database and secret are checked before the announcement (a damaged or newer
    # database is a one-line error, with no "Serving …" line first).
    status = serve(app.config, options, sock, on_ready=announce)  # gunicorn closes the socket
    click.echo("Stopped.")
    if status:
        raise SystemExit(status)


@web.command(name="embed")
@pass_app
def web_embed(app: App) -> None:
    """Print a minimal HTML sign-up form to paste into any web page.

    It posts to this site's /subscribe (publication.base_url); the reader then
    gets a confirmation email.

    \b
    Example:
      digest web embed > signup-form.html
    """
    from digest.web.signup import embed_form  # lazy: start-up

    click.echo(embed_form(app.config))
