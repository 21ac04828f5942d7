"""Query counts of the busy lists are pinned with enough rows to catch an N+1: a
query per row would add 30 or more."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from audit.services import audit_record, audited_transaction
from portfolios.models import (
    CashBalance,
    ModelPortfolio,
    ModelTarget,
    Portfolio,
    Position,
    Price,
    RebalanceRun,
    Security,
)
from trading.models import Allocation, Block, Execution, Order, Route

from .utils import API, results

pytestmark = pytest.mark.django_db

ROWS = 30


@pytest.fixture
def busy(book, pm, trader):
    """ROWS of everything, linked as the chain links them (made directly: fixtures)."""
    securities = list(book["securities"].values())
    today = timezone.now().date()
    for n in range(ROWS):
        security = Security.objects.create(
            ticker=f"S{n:03}", name=f"Security {n}", asset_class="equity", currency="USD"
        )
        Price.objects.create(security=security, as_of=today, price=Decimal(10 + n))
        securities.append(security)
    for n in range(ROWS):
        portfolio = Portfolio.objects.create(
            code=f"P{n:03}", name=f"Account {n}", manager=pm, model=book["model"]
        )
        CashBalance.objects.create(portfolio=portfolio, currency="USD", amount=Decimal(1000))
        for security in securities[:3]:
            Position.objects.create(portfolio=portfolio, security=security, quantity=10)
        run = RebalanceRun.objects.create(created_by=pm, status=RebalanceRun.Status.RELEASED)
        run.portfolios.set([portfolio])
        security = securities[5 + n]
        block = Block.objects.create(
            security=security,
            side="buy",
            quantity=10,
            routed_quantity=10,
            filled_quantity=10,
            average_price=Decimal(10),
            status=Block.Status.ALLOCATED,
        )
        order = Order.objects.create(
            portfolio=portfolio,
            security=security,
            side="buy",
            quantity=10,
            status=Order.Status.ALLOCATED,
            rebalance_run=run,
            block=block,
            created_by=pm,
            approved_by=pm,
            released_by=pm,
            filled_quantity=10,
            average_price=Decimal(10),
        )
        route = Route.objects.create(
            block=block,
            broker=book["broker"],
            cl_ord_id=f"C{n}",
            quantity=10,
            status=Route.Status.FILLED,
            filled_quantity=10,
            created_by=trader,
        )
        Execution.objects.create(
            route=route,
            broker=book["broker"],
            exec_id=f"E{n}",
            exec_type="trade",
            ord_status="filled",
            last_quantity=10,
            last_price=Decimal(10),
            cumulative_quantity=10,
            transact_time=timezone.now(),
        )
        Allocation.objects.create(
            block=block,
            order=order,
            quantity=10,
            price=Decimal(10),
            gross_amount=100,
            trade_date=timezone.localdate(),
        )
        model = ModelPortfolio.objects.create(name=f"Model {n}", owner=pm)
        for security in securities[:3]:
            ModelTarget.objects.create(model=model, security=security, weight=Decimal("0.3"))
        with audited_transaction():
            audit_record(actor=pm, kind="test.event", obj=order, after={"n": n})


# endpoint, user, at most this many queries: token and user, roles, count, page, one
# per prefetch; portfolios add the drift engine's fixed loads (book, FX, targets...).
PINS = [
    ("securities", "pm", 4),
    ("prices", "pm", 4),
    ("portfolios", "pm", 15),  # and the unsettled cash of the page (one grouped query)
    ("models", "pm", 6),  # targets and sleeves prefetched
    ("rebalance-runs", "pm", 7),  # and the chunks the recovery sweep reissued
    ("orders", "pm", 4),
    ("blocks", "trader", 7),
    ("routes", "trader", 4),
    ("executions", "trader", 4),
    ("allocations", "pm", 4),
    ("audit-events", "compliance", 4),
]


@pytest.mark.parametrize(("endpoint", "role", "pin"), PINS)
def test_busy_lists_take_a_fixed_number_of_queries(
    endpoint, role, pin, busy, personas, client_for, django_assert_max_num_queries
):
    client = client_for(personas[role])
    with django_assert_max_num_queries(pin):
        rows = results(client.get(f"{API}/{endpoint}/?page_size=100"))
    assert len(rows) >= ROWS
