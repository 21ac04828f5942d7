"""Fixtures of the audit trail's tests."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.conftest import service_missing


@pytest.fixture
def postgresql(db):
    """The test needs PostgreSQL (its concurrency, triggers or JSON storage)."""
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: set DATABASE_URL to a PostgreSQL database")
