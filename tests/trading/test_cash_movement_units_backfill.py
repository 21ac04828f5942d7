"""Trading migration 0016: the settlement-ledger rows booked before the ledger kept
their units get them from their allocations, where nothing is guessed."""

from __future__ import annotations

import importlib
from datetime import date
from decimal import Decimal

import pytest
from django.apps import apps

from portfolios.models import CashMovement
from portfolios.services.holdings import holdings_book_fill, holdings_reverse_fill
from tests.desk import broker_report, released_block
from trading.models import Allocation
from trading.services import allocations as allocation_services
from trading.services import executions as execution_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db

backfill = importlib.import_module("trading.migrations.0016_cash_movement_units_backfill").backfill


def _allocated(pm, trader, book) -> list[Allocation]:
    """The book's two accounts buying 60 and 40 of AAA, filled and allocated."""
    block = released_block(pm, book, "60", "40")
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    execution_services.execution_apply(broker_report(route, "N", "new", "new"))
    execution_services.execution_apply(broker_report(route, "F", "trade", "filled", 100, 100))
    allocation_services.block_allocate(block_id=block.pk)
    return list(Allocation.objects.filter(block=block).order_by("quantity"))


def _units(**where) -> list:
    return list(
        CashMovement.objects.filter(reason="trade", **where)
        .order_by("pk")
        .values_list("quantity", flat=True)
    )


def test_each_standing_trade_row_gets_its_allocation_s_units(pm, trader, book):
    small, large = _allocated(pm, trader, book)
    assert (small.quantity, large.quantity) == (Decimal(40), Decimal(60))
    booked = {a.pk: _units(allocation_id=a.pk) for a in (small, large)}
    assert booked == {small.pk: [Decimal(40)], large.pk: [Decimal(60)]}
    CashMovement.objects.filter(reason="trade").update(quantity=None)  # as before 0012

    backfill(apps, None)

    assert {a.pk: _units(allocation_id=a.pk) for a in (small, large)} == booked


def test_a_reversed_row_a_row_of_no_allocation_and_cash_against_the_side_keep_none(
    pm, trader, book
):
    small, large = _allocated(pm, trader, book)
    account, aaa = small.order.portfolio, small.block.security
    fill = {"portfolio": account, "security": aaa, "buying": True, "price": Decimal(100)}
    # a correction before the ledger kept units: the booking reversed, booked again
    on = {"quantity": small.quantity, "on_date": date.today(), "allocation_id": small.pk}
    holdings_reverse_fill(**on, **fill)
    holdings_book_fill(**on, **fill)
    holdings_book_fill(quantity=Decimal(5), on_date=date.today(), **fill)  # no allocation
    CashMovement.objects.filter(reason="trade").update(quantity=None)
    # the large allocation's row made to receive cash on a buy: not its booking as made
    CashMovement.objects.filter(allocation_id=large.pk).update(amount=Decimal(6000))

    backfill(apps, None)

    # small: the reversed pair keeps none (what it held then is not on record); the
    # booking that stands gets the allocation's units
    assert _units(allocation_id=small.pk) == [None, None, Decimal(40)]
    assert _units(allocation_id=large.pk) == [None]
    assert _units(allocation_id__isnull=True) == [None]
    backfill(apps, None)  # again: nothing more, nothing changed
    assert _units(allocation_id=small.pk) == [None, None, Decimal(40)]
