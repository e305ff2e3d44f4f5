"""The HTTP service: ``lookalike serve``. The library answers; this package only speaks HTTP."""

from lookalike.server.app import create_app

__all__ = ["create_app"]
