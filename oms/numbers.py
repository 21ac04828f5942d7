"""Money and quantity helpers: Decimal in the database, one explicit rounding, and
the largest figures the trade accepts.

Every figure column is numeric(24, places) (weights numeric(12, 8)). What comes in
from a person or a program is held to less than the column can store, so that
what follows from it fits too: an order's quantity times its price is a money
figure, and money columns hold 20 digits before the point.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

FIGURE_DIGITS = 24
QTY_PLACES = 6
PRICE_PLACES = 8
MONEY_PLACES = 4
WEIGHT_DIGITS = 12
WEIGHT_PLACES = 8

#: Quantities and prices taken from input are below these: a hundred billion units
#: at a billion each is still a notional that a money column holds (below 10^20).
MAX_QUANTITY = Decimal(10) ** 11
MAX_PRICE = Decimal(10) ** 9

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


def input_limits(kind: str, *, positive: bool = False) -> dict:
    """The arguments of a form's or serializer's DecimalField (Django's and DRF's take
    the same ones) for a quantity or a price: the column's digits and places, and the
    trade's limit with a message in words, not "1E+11". With `positive`, the field
    refuses zero and below too (where no service says so in its own words)."""
    places, limit = {"quantity": (QTY_PLACES, MAX_QUANTITY), "price": (PRICE_PLACES, MAX_PRICE)}[
        kind
    ]
    step = Decimal(1).scaleb(-places)
    limits = {
        "max_digits": FIGURE_DIGITS,
        "decimal_places": places,
        "max_value": limit - step,
        "error_messages": {"max_value": f"Must be less than {limit:,.0f}."},
    }
    if positive:
        limits["min_value"] = step
        limits["error_messages"]["min_value"] = "Must be positive."
    return limits
