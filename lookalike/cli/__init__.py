"""The ``lookalike`` command: a thin typer skin over the library."""

from lookalike.cli.app import app, main

__all__ = ["app", "main"]
