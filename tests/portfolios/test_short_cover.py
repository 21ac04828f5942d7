"""A buy that covers a short and goes beyond it: the part beyond zero is a long
holding, and a long holding has its tax lot (its cost, its purchase date), whether the
fill is booked on its own, with others, or delivered by an exercise. Covering a short
sold at $100 with 150 shares bought at $90: 100 close the short (shorts hold no lots),
50 open a lot at $90."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portfolios.models import TaxLot
from portfolios.services.holdings import (
    Fill,
    holdings_book_fill,
    holdings_book_fills,
    holdings_deliver,
)

from .test_lifecycle import _account, _hold, _position, xyz  # noqa: F401

pytestmark = pytest.mark.django_db

D = Decimal
DAY = date(2024, 6, 3)


@pytest.fixture(autouse=True)
def _manager(pm):
    from . import test_lifecycle

    test_lifecycle.MANAGER = pm


def _lots(account, security):
    return [
        (lot.quantity, lot.original_quantity, lot.unit_cost, lot.acquired_on)
        for lot in TaxLot.objects.filter(portfolio=account, security=security)
    ]


def test_a_fill_booked_alone_opens_a_lot_for_what_goes_beyond_the_short(xyz):  # noqa: F811
    acc = _account("ACC1")
    _hold(acc, xyz, -100, "100")
    holdings_book_fill(
        portfolio=acc, security=xyz, buying=True, quantity=D(150), price=D(90), on_date=DAY
    )
    assert _position(acc, xyz) == D(50)
    assert _lots(acc, xyz) == [(D(50), D(50), D(90), DAY)]


def test_fills_booked_together_open_the_same_lot(xyz):  # noqa: F811
    acc = _account("ACC1")
    _hold(acc, xyz, -100, "100")
    holdings_book_fills(
        security=xyz,
        fills=[
            Fill(acc.pk, True, D(60), D(90)),  # covers 60 of the short
            Fill(acc.pk, True, D(90), D(91)),  # covers the last 40, 50 beyond
        ],
        on_date=DAY,
    )
    assert _position(acc, xyz) == D(50)
    assert _lots(acc, xyz) == [(D(50), D(50), D(91), DAY)]


def test_a_delivery_beyond_a_short_opens_a_lot_for_the_rest(xyz):  # noqa: F811
    acc = _account("ACC1")
    _hold(acc, xyz, -100, "100")
    holdings_deliver(
        portfolio=acc,
        security=xyz,
        buying=True,
        quantity=D(150),
        price=D(90),
        on_date=DAY,
        value_date=DAY,
        reason="exercise",
        lot_costs=[(D(150), D(95))],
    )
    assert _position(acc, xyz) == D(50)
    assert _lots(acc, xyz) == [(D(50), D(50), D(95), DAY)]
