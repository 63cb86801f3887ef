"""`digest subscribers` commands (being written)."""

import click


@click.group(name="subscribers")
def subscribers() -> None:
    """Manage the subscriber list.

    \b
    Example:
      digest subscribers add alice@example.org --name Alice
    """
