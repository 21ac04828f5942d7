"""GET /api/v1/ lists the resources as it did when one router served every
resource (before each app registered its own)."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

# What GET /api/v1/ listed, in this order, when one router held every resource (and
# the quotes of market data, after prices; the life-cycle events of instruments, after
# drift).
RESOURCES = [
    "securities",
    "prices",
    "quotes",
    "portfolios",
    "models",
    "drift",
    "lifecycle-events",
    "rebalance-runs",
    "cash-flows",
    "orders",
    "blocks",
    "routes",
    "executions",
    "allocations",
    "brokers",
    "audit-events",
    "rules",
    "restricted-lists",
    "pretrade-results",
    "overrides",
    "alerts",
]


def test_the_api_root_lists_every_resource(client_for, pm):
    assert reverse("api:api-root") == "/api/v1/"
    response = client_for(pm).get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == RESOURCES
    assert body["orders"] == "http://testserver/api/v1/orders/"
    assert body["audit-events"] == "http://testserver/api/v1/audit-events/"


def test_the_api_root_wants_a_signed_in_user(client_for):
    assert client_for().get("/api/v1/").status_code == 401
