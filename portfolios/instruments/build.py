"""Build an instrument from plain data (a model row, a JSON body, a CSV line).

``build_instrument({"kind": "bond", "symbol": ..., ...})`` converts each field by its type:
dates from ISO strings, numbers to Decimal, a settlement cycle by its name in
:data:`SETTLEMENT_CYCLES`, a tick table from ``{"bands": [[up_to, tick], ...], "above":
tick}``, a currency pair from ``"EUR/USD"``. An unknown or missing field is an error that
names every one of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum

from . import settlement
from .base import Instrument, TickTable
from .bonds import Bond
from .derivatives import Future, Option
from .equities import Cash, Equity, Etf, MoneyMarketFund
from .errors import InstrumentError
from .fx import CurrencyPair, FxForward, FxSpot
from .money import as_decimal
from .settlement import SettlementCycle

__all__ = ["KINDS", "SETTLEMENT_CYCLES", "build_instrument"]

KINDS: dict[str, type[Instrument]] = {
    cls.kind: cls
    for cls in (Equity, Etf, MoneyMarketFund, Cash, Bond, FxSpot, FxForward, Future, Option)
}

SETTLEMENT_CYCLES: dict[str, SettlementCycle] = {
    name.lower(): getattr(settlement, name)
    for name in (
        "US_SECURITIES",
        "CANADA_SECURITIES",
        "US_TREASURIES",
        "LISTED_DERIVATIVES_US",
        "EU_SECURITIES",
        "UK_EQUITIES",
        "UK_GILTS",
        "JAPAN_EQUITIES",
        "MONEY_MARKET_SAME_DAY",
    )
}


def build_instrument(data: Mapping[str, object]) -> Instrument:
    """The instrument `data` describes; ``data["kind"]`` is one of :data:`KINDS`."""
    if not isinstance(data, Mapping):
        raise InstrumentError("an instrument is described by a mapping of fields")
    kind = data.get("kind")
    if kind not in KINDS:
        raise InstrumentError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    cls = KINDS[kind]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields) - {"kind"})
    if unknown:
        raise InstrumentError(f"{kind}: unknown field(s) {', '.join(unknown)}")
    missing = sorted(
        name
        for name, f in fields.items()
        if name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise InstrumentError(f"{kind}: missing field(s) {', '.join(missing)}")
    values = {
        name: _convert(raw, hints[name], f"{kind} field {name}")
        for name, raw in data.items()
        if name != "kind"
    }
    return cls(**values)


def _convert(raw: object, hint: object, what: str) -> object:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if raw is None:
        if type(None) in options:
            return None
        raise InstrumentError(f"{what} cannot be empty")
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _convert_one(raw, option, what)
        except InstrumentError as exc:
            errors.append(str(exc))
    raise InstrumentError(errors[0] if len(errors) == 1 else f"{what}: {raw!r} does not fit")


def _convert_one(raw: object, option: object, what: str) -> object:
    if option is dt.date:
        if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
            return raw
        try:
            return dt.date.fromisoformat(str(raw))
        except ValueError:
            raise InstrumentError(f"{what} must be a date (YYYY-MM-DD), not {raw!r}") from None
    if option is Decimal:
        return as_decimal(raw, what)
    if option is bool:
        if isinstance(raw, bool):
            return raw
        raise InstrumentError(f"{what} must be true or false, not {raw!r}")
    if option is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        raise InstrumentError(f"{what} must be a whole number, not {raw!r}")
    if option is str:
        if isinstance(raw, str):
            return raw
        raise InstrumentError(f"{what} must be text, not {raw!r}")
    if option is SettlementCycle:
        if isinstance(raw, SettlementCycle):
            return raw
        cycle = SETTLEMENT_CYCLES.get(str(raw).lower())
        if cycle is None:
            raise InstrumentError(
                f"{what} must be one of {', '.join(SETTLEMENT_CYCLES)}, not {raw!r}"
            )
        return cycle
    if option is TickTable:
        if isinstance(raw, TickTable):
            return raw
        if not isinstance(raw, Mapping) or set(raw) != {"bands", "above"}:
            raise InstrumentError(f"{what} must be a tick or {{'bands': ..., 'above': ...}}")
        bands = tuple(
            (as_decimal(limit, what), as_decimal(tick, what)) for limit, tick in raw["bands"]
        )
        return TickTable(bands, as_decimal(raw["above"], what))
    if option is CurrencyPair:
        if isinstance(raw, CurrencyPair):
            return raw
        return CurrencyPair.parse(raw)
    if isinstance(option, type) and issubclass(option, Enum):
        try:
            return option(raw)
        except ValueError:
            known = ", ".join(str(m.value) for m in option)
            raise InstrumentError(f"{what} must be one of {known}, not {raw!r}") from None
    raise InstrumentError(f"{what}: cannot read a {option!r}")  # pragma: no cover
