"""The one exception family digest raises for problems a user can fix."""


class DigestError(Exception):
    """A problem the user can act on; its message is shown as is, after ``Error:``.

    Messages name the file, row or field involved and say what to do.
    """


class ConfigError(DigestError):
    """The configuration file or an environment override is invalid."""


class NoWorkspace(ConfigError):
    """No digest.toml in the current folder or above it (and none was named)."""


class NotFound(DigestError):
    """A named thing (issue, feed, subscriber, article) does not exist."""
