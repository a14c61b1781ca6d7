"""API fixtures: the HTTP app over a wired gridflow (real SQLite and real PostgreSQL, a manual clock)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gridflow.api.app import create_app
from tests.api.helpers import Api


@pytest.fixture
def api(app) -> Api:
    return Api(TestClient(create_app(app)), app)
