"""digest: collect articles, compose numbered digest issues, deliver them by email."""

__version__ = "0.1.0"
