"""Compliance rule engine: pre- and post-trade checks of many accounts at once.

A pure library (pandas and numpy, no Django). The public API:

- :class:`Book` -- the input frames (securities, accounts, holdings, cash, fx, orders,
  live_orders, sales) and ``as_of``; see its docstring for every column.
- :class:`Rule` -- one rule: ``id``, ``kind`` (see :data:`KINDS`), ``params``,
  ``severity``, ``scope`` (None or account ids), ``version``; :class:`RestrictedList`.
- :func:`check` -> :class:`CheckResult` (``orders``, ``order_results``,
  ``account_results``, ``accounts``, ``skipped`` frames).
- :func:`prepare` -- encode a book once (for several checks of the same book).
- :func:`exposures` -- each account's group weights before and after.
- :func:`rebalance_restrictions` -- the ``restricted`` rules as the rebalancer's
  do-not-buy / do-not-sell / do-not-trade lists.
- :class:`CheckError` (a malformed book) and :class:`RuleError` (a bad rule, naming the
  rule and the parameter).

Run ``python -m compliance.rules CHECK.json`` to check orders kept in a JSON file.
"""

from .book import Book, CheckError
from .engine import ORDER_STATUSES, CheckResult, check, exposures
from .prepared import prepare
from .restrictions import rebalance_restrictions
from .rule import GROUP_BY, KINDS, SEVERITIES, SIDES, Kind, RestrictedList, Rule, RuleError

__all__ = [
    "GROUP_BY",
    "KINDS",
    "ORDER_STATUSES",
    "SEVERITIES",
    "SIDES",
    "Book",
    "CheckError",
    "CheckResult",
    "Kind",
    "RestrictedList",
    "Rule",
    "RuleError",
    "check",
    "exposures",
    "prepare",
    "rebalance_restrictions",
]
