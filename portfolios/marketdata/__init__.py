"""Market data: where prices come from, and the rules they pass before they are used.
A pure library (the standard library only, no Django); the writes are
``portfolios.services.quotes``, the reads ``portfolios.quotes`` (docs/marketdata.md).

- The adapter interface (:class:`MarketDataAdapter`, yielding :class:`Batch` es of
  :class:`Quote` s) and three sources: :class:`SimulatedFeed` (a random walk on
  several venues), :class:`CsvPrices` (a file of prices and FX rates),
  :class:`PostedQuotes` (what an integrator posts to the API). A vendor's feed is one
  more subclass (see ``base.py``).
- :func:`quote_problem` (why a quote must be quarantined), :func:`consolidate` (best
  bid and offer across venues), :class:`BarAggregator` (ticks into bars),
  :func:`cross_rate` (FX crosses), :func:`freshness` (fresh, stale or missing).
"""

from .bars import Bar, BarAggregator, bar_start
from .base import Batch, MarketDataAdapter, Quote, RowError, fx_pair, is_fx
from .checks import NOT_FINITE, SIZE_NOT_FINITE, Limits, quote_problem
from .consolidate import Consolidated, consolidate, consolidate_rows
from .csvfile import CsvFileError, CsvPrices
from .freshness import Freshness, freshness
from .fx import cross_legs, cross_rate
from .records import RecordError, quote_from_record
from .rest import MAX_QUOTES_PER_POST, PostedQuotes
from .simulated import SimulatedFeed

__all__ = [
    "MAX_QUOTES_PER_POST",
    "NOT_FINITE",
    "SIZE_NOT_FINITE",
    "Bar",
    "BarAggregator",
    "Batch",
    "Consolidated",
    "CsvFileError",
    "CsvPrices",
    "Freshness",
    "Limits",
    "MarketDataAdapter",
    "PostedQuotes",
    "Quote",
    "RecordError",
    "RowError",
    "SimulatedFeed",
    "bar_start",
    "consolidate",
    "consolidate_rows",
    "cross_legs",
    "cross_rate",
    "freshness",
    "fx_pair",
    "is_fx",
    "quote_from_record",
    "quote_problem",
]
