"""Allocation of a block's fill across account orders in each instrument's own units.

The split is :func:`trading.allocation.allocate_pro_rata` (pro rata, whole steps, the
largest remainders first) with the instrument's step as the lot: shares in round lots,
contracts whole, FX in minor units of the base currency, bonds in increments of face.
A bond adds its minimum piece: while some account's share falls between zero and the
minimum piece, the smallest such account (then the lowest key) gets nothing and the fill
is split again over the others; when what they asked for no longer covers the fill, the
allocation is refused.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import Decimal

from trading.allocation import allocate_pro_rata

from .base import Instrument
from .errors import InstrumentError
from .money import ZERO, as_decimal

__all__ = ["allocate_fill"]


def allocate_fill(
    instrument: Instrument, filled: object, requested: Mapping[Hashable, object]
) -> dict[Hashable, Decimal]:
    """Split `filled` (the block's filled quantity) across `requested` (order id ->
    quantity asked) in quantities `instrument` can hold."""
    total = as_decimal(filled, f"filled quantity of {instrument.symbol}")
    asked = {
        key: as_decimal(q, f"requested quantity of {instrument.symbol}")
        for key, q in requested.items()
    }
    rule = instrument.quantity_rule()
    if rule.anchor and rule.anchor % rule.step != 0:
        raise InstrumentError(
            f"{instrument.symbol}: allocation needs the minimum piece {rule.anchor:,} to be a "
            f"multiple of the increment {rule.step:,}"
        )
    eligible = dict(asked)
    while True:
        if sum(eligible.values(), ZERO) < total and len(eligible) < len(asked):
            raise InstrumentError(
                f"{instrument.symbol}: {total:,} cannot be allocated in pieces of at least "
                f"{rule.minimum:,} within what the orders asked"
            )
        try:
            shares = allocate_pro_rata(total, eligible, rule.step)
        except ValueError as exc:
            raise InstrumentError(f"{instrument.symbol}: {exc}") from None
        small = [k for k, q in shares.items() if ZERO < q < rule.minimum]
        if not small:
            return {key: shares.get(key, ZERO) for key in asked}
        # The smallest share (then the key, for determinism) leaves the split.
        del eligible[min(small, key=lambda k: (shares[k], str(k)))]
