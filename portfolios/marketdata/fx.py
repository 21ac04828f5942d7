"""FX rates for every pair the book needs, crosses derived: from the pairs quoted
(``EUR/USD`` = 1.085 means one euro is 1.085 dollars), a rate between any two
currencies directly, inverted, or through other currencies: the path with the fewest
legs, preferring the vehicle currencies (USD, then EUR) where two paths are as short,
so that the rate is the one a dealer would quote."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

VEHICLES = ("USD", "EUR")

Leg = tuple[tuple[str, str], bool]  # a quoted pair, and whether it is inverted


def cross_legs(
    pairs: Iterable[tuple[str, str]], currency: str, quote: str, vehicles=VEHICLES
) -> list[Leg] | None:
    """The quoted pairs a rate from ``currency`` to ``quote`` is made of ([] for one
    currency), or None when no path is quoted."""
    if currency == quote:
        return []
    neighbours: dict[str, list[tuple[str, Leg]]] = {}
    for a, b in pairs:
        neighbours.setdefault(a, []).append((b, ((a, b), False)))
        neighbours.setdefault(b, []).append((a, ((a, b), True)))
    rank = {c: i for i, c in enumerate(vehicles)}
    for links in neighbours.values():
        links.sort(key=lambda link: (rank.get(link[0], len(rank)), link[0]))
    came: dict[str, tuple[str, Leg] | None] = {currency: None}
    todo = deque([currency])
    while todo:
        here = todo.popleft()
        if here == quote:
            break
        for there, leg in neighbours.get(here, ()):
            if there not in came:
                came[there] = (here, leg)
                todo.append(there)
    if quote not in came:
        return None
    legs: list[Leg] = []
    at = quote
    while (step := came[at]) is not None:
        at, leg = step
        legs.append(leg)
    return legs[::-1]


def cross_rate(
    rates: Mapping[tuple[str, str], float], currency: str, quote: str, vehicles=VEHICLES
) -> float | None:
    """Units of ``quote`` one unit of ``currency`` is worth; None if no path is quoted."""
    legs = cross_legs([p for p, r in rates.items() if r], currency, quote, vehicles)
    if legs is None:
        return None
    rate = 1.0
    for pair, inverted in legs:
        rate *= 1.0 / rates[pair] if inverted else rates[pair]
    return rate
