"""The realised gain of each sale, from the lots and sales that were booked (pure).

The holdings service books a sell by closing the account's open tax lots of the
security first in, first out (``portfolios.services.holdings``); it keeps no record of
what each sale realised. That is put back together here by replaying the same rule:
the lots of an (account, security) in FIFO order (acquisition date, then key), each at
its original quantity and unit cost, and the sales in the order they were booked; each
sale takes what is left of the lots acquired on or before its day. The part of a sale
that no lot covers went short and realises nothing yet (it is left out); a sale no lot
covers at all gives no row.

Limits, as the booking leaves them: a lot's acquisition is a date, so a lot bought
later on the day of a sale is taken as available to it (it only matters for a sale
that went short); a busted buy shrinks its lot without changing its original
quantity, so a sale after a bust in that account and security is measured against the
original lot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Lot", "Sale", "realised_sales"]


@dataclass(frozen=True)
class Lot:
    """A booked tax lot: ``acquired`` (a date or anything ordered like one) and ``key``
    (the booking order within a day), at its original ``quantity`` and ``unit_cost``."""

    account: Hashable
    security: Hashable
    acquired: Any
    key: Any
    quantity: float
    unit_cost: float


@dataclass(frozen=True)
class Sale:
    """A booked sale: ``day`` (comparable with a lot's ``acquired``), ``at`` and ``key``
    (the booking order), ``quantity`` at ``price`` with a ``commission`` paid out of the
    proceeds; ``multiplier`` of the contract."""

    account: Hashable
    security: Hashable
    day: Any
    at: Any
    key: Any
    quantity: float
    price: float
    commission: float = 0.0
    multiplier: float = 1.0


def realised_sales(lots: Iterable[Lot], sales: Iterable[Sale]) -> list[tuple[Sale, float, float]]:
    """For each sale a lot covers (in full or in part): ``(sale, quantity covered,
    realised gain)``, the gain in the security's currency (< 0 for a loss), net of the
    covered share of the commission. In the order of the sales per (account, security)."""
    by_pair: dict[tuple, list[Lot]] = defaultdict(list)
    for lot in lots:
        if lot.quantity > 0:
            by_pair[(lot.account, lot.security)].append(lot)
    sold: dict[tuple, list[Sale]] = defaultdict(list)
    for sale in sales:
        if sale.quantity > 0:
            sold[(sale.account, sale.security)].append(sale)
    out: list[tuple[Sale, float, float]] = []
    for pair, pair_sales in sold.items():
        queue = sorted(by_pair.get(pair, ()), key=lambda lot: (lot.acquired, lot.key))
        left = [lot.quantity for lot in queue]
        first = 0  # the first lot with something left
        for sale in sorted(pair_sales, key=lambda s: (s.at, s.key)):
            want = sale.quantity
            cost = 0.0
            i = first
            while want > 0 and i < len(queue) and queue[i].acquired <= sale.day:
                take = min(left[i], want)
                if take > 0:
                    left[i] -= take
                    want -= take
                    cost += take * queue[i].unit_cost
                i += 1
            while first < len(queue) and left[first] <= 0:
                first += 1
            covered = sale.quantity - want
            if covered <= 0:
                continue
            commission = sale.commission * covered / sale.quantity
            gain = (covered * sale.price - cost) * sale.multiplier - commission
            out.append((sale, covered, gain))
    return out
