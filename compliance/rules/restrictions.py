"""Restricted lists as the rebalancer's restrictions, so that a run never proposes what
compliance would reject."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from .book import CheckError
from .rule import RestrictedList, Rule, RuleError

__all__ = ["rebalance_restrictions"]


def rebalance_restrictions(
    rules: Iterable[Rule],
    restricted_lists: Mapping[str, RestrictedList] | Iterable[RestrictedList],
    securities,
) -> pd.DataFrame:
    """The ``restrictions`` frame of ``portfolios.rebalance.Book`` for the ``restricted``
    rules: ``account`` (None for a rule that binds every account), ``security``,
    ``restriction``: ``do_not_buy`` for a rule on buys, ``do_not_sell`` on sales,
    ``do_not_trade`` on both (short sales and covers do not concern the rebalancer).

    ``securities`` -- a DataFrame or mapping with ``security`` and ``issuer`` columns: a
    listed issuer restricts every one of its securities there."""
    if isinstance(restricted_lists, Mapping):
        lists = dict(restricted_lists)
    else:
        lists = {r.name: r for r in restricted_lists}
    if "security" not in securities:
        raise CheckError("securities has no column 'security'")
    ids = list(securities["security"])
    issuers = list(securities["issuer"]) if "issuer" in securities else [None] * len(ids)
    rows = []
    for rule in rules:
        if rule.kind != "restricted":
            continue
        sides = set(rule.params["sides"])
        buy, sell = "buy" in sides, "sell" in sides
        if not (buy or sell):
            continue
        restriction = "do_not_trade" if buy and sell else "do_not_buy" if buy else "do_not_sell"
        on_list: set = set()
        named: set = set()
        for name in rule.params["list"]:
            if name not in lists:
                raise RuleError(
                    f"rule {rule.id}: unknown restricted list {name!r}", rule=rule.id, field="list"
                )
            on_list |= lists[name].securities
            named |= lists[name].issuers
        chosen = [s for s, i in zip(ids, issuers, strict=True) if s in on_list or i in named]
        accounts = [None] if rule.scope is None else sorted(rule.scope, key=str)
        rows += [(a, s, restriction) for a in accounts for s in chosen]
    frame = pd.DataFrame(rows, columns=["account", "security", "restriction"], dtype=object)
    return frame.drop_duplicates(ignore_index=True)
