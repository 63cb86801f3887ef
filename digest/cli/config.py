"""``digest config``: what the configuration file can hold."""

from __future__ import annotations

import click

from digest.cli.common import echo_json
from digest.config_reference import config_keys, reference_markdown, reference_text


@click.group(name="config")
def config() -> None:
    """The configuration file, digest.toml.

    \b
    Example:
      digest config reference
    """


@config.command(name="reference")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="Plain text, a Markdown page, or JSON for scripts.",
)
def config_reference(fmt: str) -> None:
    """Every key of digest.toml: its type, default, environment variable and meaning.

    Made from the config's own definition, so it lists exactly what digest accepts.
    Needs no workspace.

    \b
    Example:
      digest config reference
      digest config reference --format markdown > configuration.md
    """
    keys = config_keys()
    if fmt == "json":
        echo_json(
            [
                {
                    "section": k.section,
                    "key": k.name,
                    "type": k.type,
                    "default": k.default,
                    "env": k.env or None,
                    "meaning": k.meaning,
                }
                for k in keys
            ]
        )
    elif fmt == "markdown":
        click.echo(reference_markdown(keys), nl=False)
    else:
        click.echo(reference_text(keys), nl=False)
