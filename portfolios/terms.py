"""A security's instrument terms: the one bridge from a ``Security`` row to the pure
instrument engine (``portfolios.instruments``), and the one definition of what a unit
of quantity is worth at a price on a date.

- :func:`terms_errors` checks the terms an asset class needs (a bond without a maturity,
  an option without a strike), per field, for the model's ``clean`` (admin, API, demo).
- :func:`instrument_of` builds the engine's instrument from a row (a ``Security`` or a
  mapping of :data:`TERMS_FIELDS`, as ``.values(*TERMS_FIELDS)`` gives it).
- :func:`unit_value` is the value of one unit of quantity at a price on a date, in the
  security's currency: ``price x multiplier + accrued interest per unit``. A bond's
  multiplier is 0.01 (price in % of par, quantity in face) and its accrued interest runs
  to the date; every other kind accrues nothing. It is what ``value(1, price, on=date)``
  of the engine gives, except for a future, which the books hold fully paid (cash pays
  quantity x price x multiplier on a fill: decision 39), so its unit is its notional.
  Everything that values a position or an order (holdings, drift, the rebalancer,
  compliance, the order ticket) goes through it, or through :func:`accrued_per_unit`
  and the multiplier where it works on float columns.
- :func:`fill_cash` is the cash a fill moves: principal (the lot's cost) and, for a
  bond, the accrued interest to the settlement date, kept apart.

Nothing here writes; no query runs except the exchange calendar's first load.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from portfolios.instruments import Booking, Fill, HolidayCalendar, Instrument, InstrumentError
from portfolios.instruments.bonds import Bond
from portfolios.instruments.build import build_instrument
from portfolios.instruments.money import ZERO, round_cash

__all__ = [
    "BOND_MULTIPLIER",
    "CURRENCY_EXCHANGE",
    "ENGINE_KINDS",
    "FX_KINDS",
    "INSTRUMENT_FIELDS",
    "TERMS_FIELDS",
    "FillCash",
    "accrued_per_unit",
    "calendars_for",
    "currency_calendar",
    "fill_cash",
    "fx_booking",
    "instrument_of",
    "is_fx",
    "price_multiplier",
    "settlement_date",
    "terms_errors",
    "unit_value",
]

BOND_MULTIPLIER = Decimal("0.01")

# The asset classes with terms of their own; the others (equities, ETFs, funds) are
# shares: whole lots of round_lot, at least min_quantity, valued at quantity x price.
ENGINE_KINDS = {"bond", "future", "option", "fx_spot", "fx_forward"}
#: FX spot and forwards: two cash legs on the value date, no position (decision 41)
FX_KINDS = {"fx_spot", "fx_forward"}

#: The instrument terms a ``Security`` row stores beside its reference data (its fields,
#: in the order forms and the API give them; ``underlying`` is a foreign key).
INSTRUMENT_FIELDS = (
    "settlement_cycle",
    "coupon_rate",
    "coupon_frequency",
    "day_count",
    "issue_date",
    "first_coupon_date",
    "maturity",
    "expiry",
    "contract_unit",
    "underlying",
    "option_right",
    "strike",
    "base_currency",
    "value_date",
)

# The columns a row needs for the engine: the reference data it reads, then the
# instrument terms, the underlying joined in the same query (its ticker and kind).
TERMS_FIELDS = (
    "ticker",
    "asset_class",
    "currency",
    "country",
    "government",
    "round_lot",
    "min_quantity",
    "tick_size",
    "multiplier",
    "fractional",
    *(f for f in INSTRUMENT_FIELDS if f != "underlying"),
    "underlying__ticker",
    "underlying__asset_class",
)

# What each kind must have, by field, in the words of the form.
_REQUIRED = {
    "bond": {
        "coupon_rate": "A bond needs its coupon rate (0 for a zero-coupon bond).",
        "coupon_frequency": "A bond needs its coupon frequency.",
        "day_count": "A bond needs its day count.",
        "issue_date": "A bond needs the date interest accrues from.",
        "maturity": "A bond needs its maturity.",
    },
    "future": {"expiry": "A future needs its expiry (last trading day)."},
    "option": {
        "strike": "An option needs its strike.",
        "option_right": "An option is a put or a call.",
        "expiry": "An option needs its expiry (last trading day).",
        "underlying": "An option needs its underlying security.",
    },
    "fx_spot": {"base_currency": "An FX trade needs its pair's base currency."},
    "fx_forward": {
        "base_currency": "An FX trade needs its pair's base currency.",
        "value_date": "An FX forward needs its value date.",
    },
}
# Terms that belong to other kinds only: set on the wrong kind, they would mislead.
_ONLY_FOR = {
    "coupon_rate": {"bond"},
    "coupon_frequency": {"bond"},
    "day_count": {"bond"},
    "issue_date": {"bond"},
    "first_coupon_date": {"bond"},
    "maturity": {"bond"},
    "expiry": {"future", "option"},
    "contract_unit": {"future"},
    "option_right": {"option"},
    "strike": {"option"},
    "base_currency": {"fx_spot", "fx_forward"},
    "value_date": {"fx_forward"},
}
_DEFAULT_CYCLE = {
    "bond": "us_securities",
    "future": "listed_derivatives_us",
    "option": "listed_derivatives_us",
}
_UNDERLYING_KIND = {"future": "future", "fx_spot": "currency", "fx_forward": "currency"}


def _get(row, name: str):
    if isinstance(row, Mapping):
        return row.get(name)
    if name == "underlying__ticker":
        return _underlying(row, "ticker")
    if name == "underlying__asset_class":
        return _underlying(row, "asset_class")
    return getattr(row, name, None)


def _underlying(security, attribute: str):
    if security.underlying_id is None:
        return None
    # Read the underlying only when it was loaded with the row: valuation never queries.
    cached = security._state.fields_cache.get("underlying")
    if cached is None:
        return f"#{security.underlying_id}" if attribute == "ticker" else None
    return getattr(cached, attribute)


def terms_errors(security) -> dict[str, list[str]]:
    """The terms `security` lacks or gets wrong for its asset class, by field (empty:
    fine). Checked field by field first, then by building the engine's instrument."""
    kind = security.asset_class
    errors: dict[str, list[str]] = {}
    for name, message in _REQUIRED.get(kind, {}).items():
        attribute = "underlying_id" if name == "underlying" else name
        if getattr(security, attribute) in (None, ""):
            errors.setdefault(name, []).append(message)
    for name, kinds in _ONLY_FOR.items():
        if kind not in kinds and getattr(security, name) not in (None, ""):
            errors.setdefault(name, []).append(
                f"Only for {' and '.join(sorted(k.replace('_', ' ') for k in kinds))}s."
            )
    if kind == "bond" and security.multiplier not in (Decimal(1), BOND_MULTIPLIER):
        errors.setdefault("multiplier", []).append(
            "A bond is quoted in % of par on its face value: its multiplier is 0.01."
        )
    if kind in ("future", "option") and security.fractional:
        errors.setdefault("fractional", []).append("Contracts trade whole.")
    if kind in ("future", "option") and (security.round_lot != 1 or security.min_quantity > 1):
        errors.setdefault("round_lot", []).append("Contracts trade one at a time: lot 1.")
    if security.underlying_id is not None and security.underlying_id == security.pk:
        errors.setdefault("underlying", []).append("A security cannot be its own underlying.")
    if errors or kind not in ENGINE_KINDS:
        return errors
    if kind == "bond" and security.multiplier == 1:
        security.multiplier = BOND_MULTIPLIER
    try:
        instrument_of(security)
    except InstrumentError as exc:
        errors["__all__"] = [str(exc)]
    return errors


def instrument_of(row) -> Instrument:
    """The engine's instrument for a security (a ``Security`` or a mapping of
    :data:`TERMS_FIELDS`); :class:`InstrumentError` when its terms do not make one."""
    return _build(_frozen_terms(row))


def _frozen_terms(row) -> tuple:
    return tuple((name, _get(row, name)) for name in TERMS_FIELDS)


@functools.lru_cache(maxsize=4096)
def _build(terms: tuple) -> Instrument:
    t = dict(terms)
    kind = t["asset_class"]
    common = {"symbol": t["ticker"], "currency": t["currency"]}
    cycle = t["settlement_cycle"] or (
        "us_treasuries" if kind == "bond" and t["government"] else None
    )
    cycle = cycle or _DEFAULT_CYCLE.get(kind, "us_securities")
    calendar = settlement_calendar(t["country"])
    if kind == "bond":
        data = {
            "kind": "bond",
            **common,
            "issuer_type": "government" if t["government"] else "corporate",
            "coupon_rate": t["coupon_rate"],
            "frequency": t["coupon_frequency"],
            "day_count": t["day_count"],
            "issue_date": t["issue_date"],
            "first_coupon_date": t["first_coupon_date"],
            "maturity": t["maturity"],
            "min_piece": max(t["min_quantity"], t["round_lot"]),
            "increment": t["round_lot"],
            "settlement": cycle,
            "settlement_calendar": calendar,
        }
    elif kind in ("future", "option"):
        data = {
            "kind": kind,
            **common,
            "multiplier": t["multiplier"],
            "underlying": t["underlying__ticker"] or t["contract_unit"] or t["ticker"],
            "expiry": t["expiry"],
            "settlement": cycle,
            "settlement_calendar": calendar,
        }
        if kind == "future":
            data["contract_unit"] = t["contract_unit"] or ""
        else:
            data["strike"] = t["strike"]
            data["right"] = t["option_right"]
            data["underlying_kind"] = _UNDERLYING_KIND.get(
                t["underlying__asset_class"] or "", "equity"
            )
    elif kind in ("fx_spot", "fx_forward"):
        data = {
            "kind": kind,
            "symbol": t["ticker"],
            "pair": f"{t['base_currency']}/{t['currency']}",
        }
        if kind == "fx_forward":
            data["value_date"] = t["value_date"]
    else:
        data = {
            "kind": "equity",
            **common,
            "round_lot": t["round_lot"],
            "min_quantity": t["min_quantity"],
            "fractional": bool(t["fractional"]),
            "settlement": cycle,
            "settlement_calendar": calendar,
        }
    return build_instrument(data)


def accrued_per_unit(row, on: dt.date) -> Decimal:
    """Accrued interest per unit of quantity on `on` (a bond's per unit of face; zero
    for every other kind), unrounded."""
    if _get(row, "asset_class") != "bond":
        return Decimal(0)
    instrument = instrument_of(row)
    assert isinstance(instrument, Bond)
    return _bond_accrued(instrument, on)


@functools.lru_cache(maxsize=8192)
def _bond_accrued(bond: Bond, on: dt.date) -> Decimal:
    if on <= bond.issue_date or on >= bond.maturity:
        return Decimal(0)
    return bond.accrued_interest(1, on)


def price_multiplier(row) -> Decimal:
    """What one point of price is worth per unit of quantity: the contract multiplier
    (1 for a share), 0.01 for a bond (a price in % of par on a unit of face)."""
    if _get(row, "asset_class") == "bond":
        return BOND_MULTIPLIER
    return Decimal(_get(row, "multiplier"))


def unit_value(row, price, on: dt.date) -> Decimal:
    """What one unit of quantity is worth at `price` on `on`, in the security's currency:
    ``price x multiplier + accrued interest per unit`` (see the module docstring)."""
    return Decimal(price) * price_multiplier(row) + accrued_per_unit(row, on)


# --- settlement ---------------------------------------------------------------------


def settlement_calendar(country: str | None) -> str:
    """The exchange calendar (a MIC) a security of `country` settles on."""
    return settings.OMS_EXCHANGE_BY_COUNTRY.get(country or "", settings.OMS_DEFAULT_EXCHANGE)


@functools.lru_cache(maxsize=16)
def _holiday_calendar(mic: str) -> HolidayCalendar:
    """The weekdays `mic`'s exchange is shut, from exchange_calendars, over the span
    the library knows (asking about a date outside it raises rather than guess)."""
    import warnings

    import exchange_calendars
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calendar = exchange_calendars.get_calendar(mic)
        sessions = calendar.sessions
    first, last = sessions[0].date(), sessions[-1].date()
    weekdays = pd.bdate_range(first, last)
    holidays = frozenset(d.date() for d in weekdays.difference(sessions))
    return HolidayCalendar(mic, holidays, first_day=first, last_day=last)


#: The exchange whose days stand for a currency's settlement days (FX value dates) when
#: its payment system's rules are not kept (``portfolios.payment_days``: USD, EUR, GBP,
#: JPY, CHF, CAD, AUD, SEK, NOK and DKK are; HKD, SGD and NZD are not): the main exchange of the currency's home market, an approximation of the
#: payment system's calendar. A currency in neither settles on weekdays.
CURRENCY_EXCHANGE = {
    "USD": "XNYS",
    "EUR": "XFRA",
    "GBP": "XLON",
    "JPY": "XTKS",
    "CAD": "XTSE",
    "CHF": "XSWX",
    "AUD": "XASX",
    "HKD": "XHKG",
    "SGD": "XSES",
    "NZD": "XNZE",
    "SEK": "XSTO",
    "NOK": "XOSL",
    "DKK": "XCSE",
}


@functools.lru_cache(maxsize=64)
def currency_calendar(currency: str) -> HolidayCalendar:
    """The settlement days of `currency`, as a calendar named by its code (the FX engine
    looks them up so): its payment system's (Fedwire, TARGET: ``payment_days``), else
    its home exchange's days (:data:`CURRENCY_EXCHANGE`), else weekdays."""
    from portfolios.payment_days import payment_calendar

    system = payment_calendar(currency)
    if system is not None:
        return system
    mic = CURRENCY_EXCHANGE.get(currency)
    if mic is None:
        return HolidayCalendar.weekends_only(currency)
    days = _holiday_calendar(mic)
    return HolidayCalendar(
        currency, days.holidays, first_day=days.first_day, last_day=days.last_day
    )


def calendars_for(instrument: Instrument) -> dict[str, HolidayCalendar]:
    """The holiday calendars the instrument's settlement needs, by name: the security's
    exchange; for FX each currency of the pair and USD (spot dates count USD days)."""
    pair = getattr(instrument, "pair", None)
    if pair is not None:
        return {c: currency_calendar(c) for c in {pair.base, pair.quote, "USD"}}
    name = getattr(instrument, "settlement_calendar", None)
    return {name: _holiday_calendar(name)} if name else {}


def settlement_date(row, trade_date: dt.date) -> dt.date:
    """When a trade in the security on `trade_date` settles (its market's cycle)."""
    instrument = instrument_of(row)
    return instrument.settlement_date(trade_date, calendars_for(instrument))


# --- booking ------------------------------------------------------------------------


@dataclass(frozen=True)
class FillCash:
    """The cash one fill moves, unsigned, in the security's currency: ``principal`` (the
    lot's cost: quantity x price x multiplier; a bond's face x price / 100) and, for a
    bond, the ``accrued`` interest to ``settles`` (income bought or sold, never cost)."""

    principal: Decimal
    accrued: Decimal
    settles: dt.date | None

    @property
    def total(self) -> Decimal:
        return self.principal + self.accrued


def is_fx(row) -> bool:
    """True for an FX spot or forward: a trade in it books two cash legs, no position."""
    return _get(row, "asset_class") in FX_KINDS


def fx_booking(
    row, *, buying: bool, quantity, price, trade_date: dt.date, settles: dt.date | None = None
) -> Booking:
    """The engine's booking of an FX fill (two legs on the value date, the broker's
    `settles` when it gave one: a buy receives `quantity` of the base currency and pays
    quantity x rate of the quote currency, rounded to its minor unit).
    :class:`InstrumentError` for a bad rate, a forward traded after its value date or a
    value date before the trade."""
    instrument = instrument_of(row)
    fill = Fill(
        side="buy" if buying else "sell",
        quantity=quantity,
        price=price,
        trade_date=trade_date,
        settlement_date=settles,
    )
    return instrument.book_fill(fill, calendars_for(instrument))


def fill_cash(
    row, quantity: Decimal, price: Decimal, trade_date: dt.date, settles: dt.date | None = None
) -> FillCash:
    """What a fill of `quantity` at `price` traded on `trade_date` pays or receives. The
    principal is rounded to the money places of the books as before; a bond's accrued
    interest is rounded to the cent of its currency once (the engine's rule), and runs
    to `settles` when the broker gave the settlement date, else to the market's cycle."""
    from oms.numbers import money

    kind = _get(row, "asset_class")
    principal = money(quantity * price * price_multiplier(row))
    if kind in FX_KINDS:
        # the quote leg, to the quote currency's minor unit as the engine books it
        return FillCash(money(round_cash(quantity * price, _get(row, "currency"))), ZERO, None)
    if kind != "bond":
        return FillCash(principal, Decimal(0), None)
    settles = settles or settlement_date(row, trade_date)
    accrued = round_cash(quantity * accrued_per_unit(row, settles), _get(row, "currency"))
    return FillCash(principal, money(accrued), settles)
