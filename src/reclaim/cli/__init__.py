"""The ``reclaim`` command line."""

from reclaim.cli.app import app, main

__all__ = ["app", "main"]
