"""Fixtures for production mode: a deployment (database, Redis prefix, processes) per test."""

from __future__ import annotations

import uuid

import pytest

from .support import Deployment, truncate


@pytest.fixture
def deployment(pg_database_url, redis_url, redis_prefix, tmp_path):
    """An empty database and a fresh Redis prefix; every process started is stopped at the end."""
    truncate(pg_database_url)
    dep = Deployment(pg_database_url, redis_url, f"{redis_prefix}-{uuid.uuid4().hex[:8]}", tmp_path)
    yield dep
    dep.close()
