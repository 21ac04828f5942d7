"""After an allocation, the accounts whose holdings moved: a seam that compliance fills
(its post-trade check), as `trading.pretrade` is for the pre-trade one.

`allocated(portfolio_ids)` runs inside the allocation's transaction; a listener must only
schedule work for after the commit (a task by name), never check in that transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

_listeners: list[Callable[[list[int]], None]] = []


def register(listener: Callable[[list[int]], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def allocated(portfolio_ids: Iterable[int]) -> None:
    ids = sorted(set(portfolio_ids))
    if ids:
        for listener in _listeners:
            listener(ids)
