"""Secrets handed to people (API keys, residents' case tokens): only their hashes are stored."""

from __future__ import annotations

import hashlib
import secrets


def hash_token(token: str) -> str:
    """What is stored and looked up for a secret: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = "", nbytes: int = 24) -> str:
    """A fresh URL-safe secret (``nbytes`` of randomness), e.g. ``gf_…`` for API keys."""
    return prefix + secrets.token_urlsafe(nbytes)
