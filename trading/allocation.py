"""Allocation of a block's fills to its account orders. Pure: no Django.

Every account gets the block's one average price. Quantities are shared pro
rata to what each order asked for, rounded down to whole lots, and the lots
left over go one at a time to the orders with the largest rounding remainder
(ties: the smaller request first, then the lower order id), never past what an
order asked for. The same inputs always give the same split.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import ROUND_FLOOR, Decimal

from portfolios.instruments.base import Instrument
from portfolios.instruments.errors import InstrumentError
from portfolios.instruments.money import ZERO, as_decimal


def allocate_pro_rata(
    filled: Decimal, requested: Mapping[Hashable, Decimal], lot: Decimal = Decimal(1)
) -> dict[Hashable, Decimal]:
    """Split `filled` across `requested` (order id → quantity) in multiples of `lot`."""
    if filled < 0:
        raise ValueError("filled quantity cannot be negative")
    if lot <= 0:
        raise ValueError("lot size must be positive")
    total_requested = sum(requested.values(), Decimal(0))
    if filled > total_requested:
        raise ValueError(f"filled {filled} exceeds the {total_requested} the orders asked for")
    if filled == total_requested:
        return dict(requested)
    if not requested or filled == 0:
        return dict.fromkeys(requested, Decimal(0))

    lots_filled = (filled / lot).to_integral_value(rounding=ROUND_FLOOR)
    shares: dict[Hashable, Decimal] = {}
    remainders: list[tuple[Decimal, Decimal, str, Hashable]] = []
    for key, asked in requested.items():
        exact_lots = lots_filled * asked / total_requested
        whole = exact_lots.to_integral_value(rounding=ROUND_FLOOR)
        shares[key] = whole
        remainders.append((exact_lots - whole, asked, str(key), key))

    left = lots_filled - sum(shares.values(), Decimal(0))
    # Largest remainder first; then smaller request; then the key, for determinism.
    remainders.sort(key=lambda item: (-item[0], item[1], _sort_key(item[3])))
    for _, asked, _, key in remainders:
        if left <= 0:
            break
        if (shares[key] + 1) * lot <= asked:
            shares[key] += 1
            left -= 1

    result = {key: lots * lot for key, lots in shares.items()}
    # An odd lot left over from a fill that was not a whole number of lots goes
    # to the orders with the most room, so that the whole fill is booked.
    odd = filled - sum(result.values(), Decimal(0))
    for key in sorted(requested, key=lambda k: (-(requested[k] - result[k]), _sort_key(k))):
        if odd <= 0:
            break
        take = min(odd, requested[key] - result[key])
        result[key] += take
        odd -= take
    return result


def _sort_key(key: Hashable) -> tuple[int, object]:
    return (0, key) if isinstance(key, int) else (1, str(key))


# --- In an instrument's own units ----------------------------------------------------
#
# The same split with the instrument's step as the lot: shares in round lots,
# contracts whole, FX in minor units of the base currency, bonds in increments of
# face. A bond adds its minimum piece: while some account's share falls between zero
# and the minimum piece, the smallest such account (then the lowest key) gets nothing
# and the fill is split again over the others; when what they asked for no longer
# covers the fill, the allocation is refused.


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
