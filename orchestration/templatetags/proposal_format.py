"""How the proposal shows an estimated value: with as many decimals as the price it
was estimated at (two at least), so that 3 × 101.505 reads 304.515, not 304.52."""

from __future__ import annotations

from decimal import Decimal

from django import template

from oms.templatetags.oms_format import DASH, _number, price

register = template.Library()


@register.filter
def value_at(value, unit_price) -> str:
    """``value`` with the decimals ``unit_price`` shows with (see ``price``)."""
    number = _number(value)
    if number is None:
        return DASH
    shown = price(unit_price)
    places = len(shown.partition(".")[2]) if shown != DASH else 2
    return f"{number.quantize(Decimal(1).scaleb(-max(places, 2))):,}"
