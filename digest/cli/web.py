"""`digest web` commands: serve the confirm, unsubscribe, preferences and archive pages."""

from __future__ import annotations

import signal
from types import FrameType

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
@pass_app
def web_serve(app: App, host: str, port: int) -> None:
    """Serve confirm, unsubscribe (one-click), preferences, view-in-browser and the archive.

    A threaded werkzeug server for small deployments: put it behind a reverse
    proxy that terminates HTTPS at the config's publication.base_url. Tokens are
    cut out of its access log. Stop it with Ctrl-C.

    \b
    Example:
      digest web serve --host 127.0.0.1 --port 8080
    """
    from digest.web import make_web_server

    server = make_web_server(app.config, host, port)
    click.echo(
        f"Serving {app.config.publication.name} on http://{host}:{server.port} "
        f"(public address: {app.config.publication.base_url}); Ctrl-C to stop"
    )
    # A service manager stops with SIGTERM: treat it like Ctrl-C so the socket closes cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    click.echo("Stopped.")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
