"""Exchange contract specifications the desk trades, as data, with their sources.

Each :class:`ContractSpec` holds what the exchange's specification page states: the
contract unit, the multiplier that turns a price into money, the minimum tick and its
value. :func:`future_from_spec` and :func:`option_from_spec` build the tradeable
instrument for one expiry. Add a contract by adding a spec with its source.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from .base import TickTable
from .derivatives import Future, Option, OptionRight, UnderlyingKind
from .settlement import LISTED_DERIVATIVES_US, SettlementCycle

__all__ = ["FUTURES", "OPTIONS", "ContractSpec", "future_from_spec", "option_from_spec"]

D = Decimal


@dataclass(frozen=True)
class ContractSpec:
    """One exchange contract: ``multiplier`` is currency per price point per contract;
    ``tick_value`` the money value of one ``tick`` (tick x multiplier, as the exchange
    prints it)."""

    code: str
    exchange: str
    name: str
    currency: str
    unit: str
    multiplier: Decimal
    tick: Decimal | TickTable | None
    tick_value: Decimal | None
    source: str
    allows_negative_price: bool = False


FUTURES: dict[str, ContractSpec] = {
    spec.code: spec
    for spec in (
        ContractSpec(
            "CL",
            "NYMEX",
            "Light Sweet Crude Oil",
            "USD",
            "1,000 barrels",
            D(1000),
            D("0.01"),
            D("10.00"),
            "CME Group contract specs: 0.01 per barrel = $10.00",
            # CME let WTI trade below zero in April 2020 (the May contract settled at -37.63)
            allows_negative_price=True,
        ),
        ContractSpec(
            "HG",
            "COMEX",
            "Copper",
            "USD",
            "25,000 pounds",
            D(25000),
            D("0.0005"),
            D("12.50"),
            "CME Group contract specs: $0.0005 per pound = $12.50",
        ),
        ContractSpec(
            "ES",
            "CME",
            "E-mini S&P 500",
            "USD",
            "$50 x S&P 500 Index",
            D(50),
            D("0.25"),
            D("12.50"),
            "CME Group contract specs: 0.25 index points = $12.50",
        ),
        ContractSpec(
            "ZN",
            "CBOT",
            "10-Year T-Note",
            "USD",
            "face value at maturity of $100,000",
            D(1000),
            D("0.015625"),
            D("15.625"),
            "CME Group contract specs: one-half of one thirty-second of a point = $15.625",
        ),
        ContractSpec(
            "SR3",
            "CME",
            "Three-Month SOFR",
            "USD",
            "$2,500 x contract-grade IMM Index",
            D(2500),
            D("0.005"),
            D("12.50"),
            "CME Group contract specs: 0.005 IMM Index points = $12.50 (0.0025 = $6.25 within "
            "four months of the last trading day)",
        ),
        ContractSpec(
            "6E",
            "CME",
            "Euro FX",
            "USD",
            "125,000 euros",
            D(125000),
            D("0.00005"),
            D("6.25"),
            "CME Group contract specs: 0.00005 per euro = $6.25",
        ),
    )
}

OPTIONS: dict[str, ContractSpec] = {
    spec.code: spec
    for spec in (
        ContractSpec(
            "US-EQUITY",
            "OCC",
            "US equity option",
            "USD",
            "100 shares",
            D(100),
            D("0.01"),
            D("1.00"),
            "OCC standard contract: 100 shares, premium quoted per share",
        ),
        ContractSpec(
            "OZN",
            "CBOT",
            "Options on 10-Year T-Note futures",
            "USD",
            "one ZN futures contract",
            D(1000),
            D("0.015625"),
            D("15.625"),
            "CME Group contract specs: 1/64 of one point = $15.625",
        ),
        ContractSpec(
            "EUU",
            "CME",
            "Euro FX options",
            "USD",
            "one futures contract for 125,000 euros",
            D(125000),
            TickTable(((D("0.0004999"), D("0.00005")),), above=D("0.0001")),
            D("12.50"),
            "CME Group contract specs: 0.0001 per euro = $12.50; 0.00005 = $6.25 below 0.0005",
        ),
        ContractSpec(
            "ES-OPT",
            "CME",
            "E-mini S&P 500 options",
            "USD",
            "one E-mini S&P 500 futures contract",
            D(50),
            TickTable(((D("5.00"), D("0.05")),), above=D("0.25")),
            D("12.50"),
            "CME Group contract specs: 0.25 = $12.50 above a premium of 5.00, 0.05 = $2.50 at "
            "or below",
        ),
    )
}


def future_from_spec(
    spec: ContractSpec,
    *,
    symbol: str,
    expiry: dt.date,
    underlying: str | None = None,
    settlement: SettlementCycle = LISTED_DERIVATIVES_US,
    settlement_calendar: str = "US",
) -> Future:
    """The future of `spec` expiring (last trading day) on `expiry`."""
    return Future(
        symbol=symbol,
        currency=spec.currency,
        underlying=underlying or spec.name,
        contract_unit=spec.unit,
        multiplier=spec.multiplier,
        tick_size=spec.tick,
        expiry=expiry,
        allows_negative_price=spec.allows_negative_price,
        settlement=settlement,
        settlement_calendar=settlement_calendar,
    )


def option_from_spec(
    spec: ContractSpec,
    *,
    symbol: str,
    underlying: str,
    underlying_kind: UnderlyingKind | str,
    right: OptionRight | str,
    strike: Decimal,
    expiry: dt.date,
    settlement: SettlementCycle = LISTED_DERIVATIVES_US,
    settlement_calendar: str = "US",
) -> Option:
    """An option series of `spec`."""
    return Option(
        symbol=symbol,
        currency=spec.currency,
        underlying=underlying,
        underlying_kind=underlying_kind,
        right=right,
        strike=strike,
        expiry=expiry,
        multiplier=spec.multiplier,
        tick_size=spec.tick,
        settlement=settlement,
        settlement_calendar=settlement_calendar,
    )
