"""Money and quantity helpers: Decimal in the database, one explicit rounding."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

QTY_PLACES = 6
PRICE_PLACES = 8
MONEY_PLACES = 4
WEIGHT_PLACES = 8

_QTY = Decimal(1).scaleb(-QTY_PLACES)
_PRICE = Decimal(1).scaleb(-PRICE_PLACES)
_MONEY = Decimal(1).scaleb(-MONEY_PLACES)
_WEIGHT = Decimal(1).scaleb(-WEIGHT_PLACES)
ZERO = Decimal(0)


def to_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # repr() gives the shortest string that round-trips: no binary noise.
        return Decimal(repr(value))
    return Decimal(str(value))


def qty(value: object) -> Decimal:
    return to_decimal(value).quantize(_QTY, rounding=ROUND_HALF_EVEN)


def price(value: object) -> Decimal:
    return to_decimal(value).quantize(_PRICE, rounding=ROUND_HALF_EVEN)


def money(value: object) -> Decimal:
    return to_decimal(value).quantize(_MONEY, rounding=ROUND_HALF_EVEN)


def weight(value: object) -> Decimal:
    return to_decimal(value).quantize(_WEIGHT, rounding=ROUND_HALF_EVEN)
