"""Allocation of a block's fill across account orders in each instrument's own units.

The split is :func:`trading.allocation.allocate_pro_rata` (pro rata, whole steps, the
largest remainders first) with the instrument's step as the lot: shares in round lots,
contracts whole, FX in minor units of the base currency, bonds in increments of face.
A bond adds its minimum piece: an account whose share would fall between zero and the
minimum piece gets nothing, and its share goes pro rata to the accounts that hold at least
the minimum piece, up to what each asked for (smallest shares are dropped first).
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
    try:
        shares = allocate_pro_rata(total, asked, rule.step)
    except ValueError as exc:
        raise InstrumentError(f"{instrument.symbol}: {exc}") from None
    dropped: set[Hashable] = set()
    while True:
        small = [k for k, q in shares.items() if ZERO < q < rule.minimum]
        if not small:
            return shares
        victim = min(small, key=lambda k: (shares[k], str(k)))
        freed, shares[victim] = shares[victim], ZERO
        dropped.add(victim)
        room = {
            k: asked[k] - q
            for k, q in shares.items()
            if k not in dropped and q >= rule.minimum and asked[k] > q
        }
        if sum(room.values(), ZERO) < freed:
            raise InstrumentError(
                f"{instrument.symbol}: {total:,} cannot be allocated in pieces of at least "
                f"{rule.minimum:,}; {freed:,} is left that no account can take"
            )
        for key, extra in allocate_pro_rata(freed, room, rule.step).items():
            shares[key] += extra
