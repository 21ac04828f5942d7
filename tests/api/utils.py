"""Small helpers of the API tests."""

from __future__ import annotations

from decimal import Decimal

from portfolios.models import RebalanceRun
from trading.services import orders as order_services

API = "/api/v1"


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def proposed_run(pm, book, *, quantity="10") -> RebalanceRun:
    """A run as the engine leaves it: proposed, with draft orders made by the service."""
    run = RebalanceRun.objects.create(
        created_by=pm, status=RebalanceRun.Status.PROPOSED, summary={}, parameters={}
    )
    run.portfolios.set(book["accounts"][:1])
    order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["BBB"],
        side="buy",
        quantity=Decimal(quantity),
        rebalance_run=run,
    )
    return run
