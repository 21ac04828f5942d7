"""The realised gain of each sale, replayed first in, first out from the booked lots."""

import datetime as dt

import pytest

from compliance.rules.realised import Lot, Sale, realised_sales

D = dt.date(2026, 11, 1)


def _sale(day, key, quantity, price, commission=0.0, multiplier=1.0):
    at = dt.datetime.combine(D + dt.timedelta(days=day), dt.time(12), tzinfo=dt.UTC)
    return Sale("A", "X", at.date(), at, key, quantity, price, commission, multiplier)


def _lot(day, key, quantity, cost):
    return Lot("A", "X", D + dt.timedelta(days=day), key, quantity, cost)


def test_sales_take_the_oldest_lots_first():
    lots = [_lot(1, 2, 100, 20.0), _lot(0, 1, 100, 10.0)]
    out = realised_sales(lots, [_sale(5, 1, 150, 15.0), _sale(6, 2, 50, 15.0)])
    # 100 at 10 and 50 at 20 against 150 at 15: +250; then 50 at 20 against 15: -250
    assert [(covered, gain) for _, covered, gain in out] == [(150, 250.0), (50, -250.0)]


def test_commission_and_multiplier():
    [(_, covered, gain)] = realised_sales(
        [_lot(0, 1, 10, 100.0)], [_sale(1, 1, 10, 101.0, commission=30.0, multiplier=5.0)]
    )
    assert (covered, gain) == (10, pytest.approx(10 * 1 * 5 - 30))


def test_what_no_lot_covers_went_short_and_realises_nothing():
    out = realised_sales([_lot(0, 1, 10, 50.0)], [_sale(1, 1, 30, 40.0), _sale(2, 2, 5, 1.0)])
    # 10 of the 30 closed the lot (-100, a third of nothing in commission); the rest and
    # the next sale went short
    assert [(covered, gain) for _, covered, gain in out] == [(10, -100.0)]


def test_a_lot_acquired_after_the_sale_is_not_taken():
    out = realised_sales([_lot(3, 1, 10, 50.0)], [_sale(1, 1, 10, 40.0)])
    assert out == []


def test_pairs_are_kept_apart():
    lots = [_lot(0, 1, 10, 50.0), Lot("B", "X", D, 2, 10, 5.0)]
    sales = [_sale(1, 1, 10, 40.0), Sale("B", "X", D, D, 2, 10, 40.0)]
    gains = {s.account: g for s, _, g in realised_sales(lots, sales)}
    assert gains == {"A": -100.0, "B": 350.0}
