"""Rebalance engine: drift and lot-rounded trades for many accounts at once.

A pure library (pandas and numpy, no Django). The public API:

- :class:`Book` -- the input frames (securities, accounts, holdings, models, model_cash,
  fx, lots, restrictions, sales) and ``as_of``; see its docstring for every column.
- :class:`Options` -- run parameters (trade to target or band edge, bands, lot selection,
  gains cap, wash-sale window, ...).
- :func:`compute_drift` -> :class:`DriftResult` (``positions``, ``accounts`` frames).
- :func:`rebalance` -> :class:`RebalanceResult` (``trades``, ``accounts``, ``skipped``,
  ``lots`` frames).
- :class:`BookError` -- raised on a malformed book.
- :func:`raise_cash` -> :class:`RebalanceResult`: sells that free each account's cash
  need, what drifts most first (see ``cashraise``).
- :func:`what_if` -> :class:`WhatIf`: the figures and broken rules of given trades
  (a proposal a person edited).
- :func:`check_trades` -- an independent re-check of a result against every rule
  (a frame of breaches, empty when none).

Run ``python -m portfolios.rebalance BOOK.json`` to rebalance a book kept in a JSON file.
"""

from .book import LOT_SELECTION, TRADE_TO, Book, BookError, Options
from .cashraise import raise_cash
from .checks import check_trades
from .drift import DriftResult, compute_drift
from .engine import RebalanceResult, rebalance
from .whatif import WhatIf, what_if

__all__ = [
    "LOT_SELECTION",
    "TRADE_TO",
    "WhatIf",
    "Book",
    "BookError",
    "DriftResult",
    "Options",
    "RebalanceResult",
    "check_trades",
    "compute_drift",
    "raise_cash",
    "rebalance",
    "what_if",
]
