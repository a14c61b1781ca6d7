"""The HTTP API: ``create_app()`` builds it (nothing is wired at import time)."""

from .app import create_app

__all__ = ["create_app"]
