"""Sells allocated before closings were stored get them by `manage.py
backfill_lot_closings`: replayed first in, first out (how the books closed lots then)
over the account's lots, stored only where the replay reproduces the lots held, dated
as the sale was booked (so that the wash-sale window counts from the sale, not from the
upgrade), one audit event per account and security, and never twice."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from compliance import selectors as compliance_selectors
from portfolios.models import LotClosing
from portfolios.selectors import FxTable
from tests.trading.test_set_based import _chain, _sell_block
from trading.models import Allocation, Broker, Order
from trading.services.allocations import allocations_backfill_closings

pytestmark = pytest.mark.django_db

FIELDS = (
    "allocation_id",
    "lot_id",
    "quantity",
    "unit_cost",
    "proceeds_per_unit",
    "commission",
    "realised_gain",
    "term",
    "closed_on",
)


@pytest.fixture
def quiet_broker(book):
    return Broker.objects.create(code="QB", name="Quiet", adapter=Broker.Adapter.FIX)


def _fifo_sells(pm, book, **kwargs):
    """Sells as the books took them before lot methods: first in, first out, no lot named."""
    block = _sell_block(pm, book, **kwargs)
    Order.objects.filter(block=block).update(lot_method="fifo", lots=[])
    return block


def _as_stored(**filters) -> list[tuple]:
    return sorted(LotClosing.objects.filter(**filters).values_list(*FIELDS))


def test_old_sales_get_the_closings_they_would_have_booked_once(pm, trader, book, quiet_broker):
    block = _chain(
        pm, trader, book, quiet_broker, orders=4, accounts=3, make=_fifo_sells, prefix="B"
    )["block"]
    sales = list(Allocation.objects.filter(block=block))
    booked = _as_stored(allocation_id__in=[a.pk for a in sales])
    assert len(booked) >= len(sales)  # some sales took two lots
    # as if booked before this version: no closings; the allocations a day old
    LotClosing.objects.all().delete()
    day_ago = timezone.now() - dt.timedelta(days=1)
    Allocation.objects.filter(block=block).update(created_at=day_ago)

    results = allocations_backfill_closings()

    assert [r["reason"] for r in results] == ["", "", ""]
    assert sum(r["closings"] for r in results) == len(booked)
    assert _as_stored() == booked
    assert set(LotClosing.objects.values_list("created_at", flat=True)) == {day_ago}
    events = AuditEvent.objects.filter(kind="lots.closings_backfilled")
    assert events.count() == 3
    assert sum(e.after["closings"] for e in events) == len(booked)
    # the wash-sale feed dates them at the sale, not at the backfill
    sold = compliance_selectors.realised_sales(
        {(a.order.portfolio_id, block.security_id) for a in sales},
        since=day_ago - dt.timedelta(hours=1),
        base_of={a.order.portfolio_id: "USD" for a in sales},
        fx=FxTable.latest(),
    )
    assert set(sold["date"]) == {day_ago}
    # again: nothing left to do, nothing written
    assert allocations_backfill_closings() == []
    assert LotClosing.objects.count() == len(booked)


def test_a_replay_that_does_not_reproduce_the_lots_stores_nothing_for_them(
    pm, trader, book, quiet_broker
):
    # the first account's lots were changed after its sales (a hand edit, or a bust
    # booked the old way): the replay cannot reproduce them, so that account is left
    # alone and said why, and the other gets its closings
    block = _chain(
        pm, trader, book, quiet_broker, orders=2, accounts=2, make=_fifo_sells, prefix="M"
    )["block"]
    first = Order.objects.filter(block=block).order_by("pk").first()
    LotClosing.objects.all().delete()
    lot = first.portfolio.tax_lots.order_by("acquired_on").first()
    lot.quantity += 1  # the books moved since (a hand edit, a bust booked the old way)
    lot.save()

    out = StringIO()
    call_command("backfill_lot_closings", "--dry-run", stdout=out)
    assert "1 of 2 account-securities would store" in out.getvalue()
    assert LotClosing.objects.count() == 0  # a dry run stores nothing

    results = {r["account"]: r for r in allocations_backfill_closings()}
    left = results[first.portfolio.code]
    assert left["closings"] == 0 and "would hold" in left["reason"]
    assert not LotClosing.objects.filter(portfolio=first.portfolio).exists()
    others = [r for code, r in results.items() if code != first.portfolio.code]
    assert [r["reason"] for r in others] == [""] and others[0]["closings"] > 0
