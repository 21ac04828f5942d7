"""Instruments from plain data (a model row, a JSON body), with errors naming fields."""

import pytest

from portfolios.instruments import Bond, DayCount, FxForward, InstrumentError, Option, TickTable
from portfolios.instruments.build import build_instrument

from .helpers import D, day


def test_a_bond_from_strings():
    bond = build_instrument(
        {
            "kind": "bond",
            "symbol": "XS123",
            "currency": "EUR",
            "issuer_type": "corporate",
            "coupon_rate": "0.0425",
            "frequency": 1,
            "day_count": "ACT/ACT ICMA",
            "issue_date": "2024-03-15",
            "maturity": "2031-03-15",
            "min_piece": "100000",
            "increment": "1000",
            "settlement": "eu_securities",
            "settlement_calendar": "TARGET",
        }
    )
    assert isinstance(bond, Bond)
    assert bond.day_count is DayCount.ACT_ACT_ICMA
    assert bond.coupon_rate == D("0.0425")
    assert bond.maturity == day("2031-03-15")


def test_an_option_with_a_tick_table_and_a_forward_with_a_pair():
    option = build_instrument(
        {
            "kind": "option",
            "symbol": "ESM5 C5000",
            "currency": "USD",
            "underlying": "ESM5",
            "underlying_kind": "future",
            "right": "call",
            "strike": 5000,
            "expiry": "2025-06-20",
            "multiplier": 50,
            # CME E-mini S&P 500 options: 0.05 for premiums up to 5.00, 0.25 above
            "tick_size": {"bands": [["5.00", "0.05"]], "above": "0.25"},
            "settlement": "listed_derivatives_us",
            "settlement_calendar": "US",
        }
    )
    assert isinstance(option, Option)
    assert option.tick == TickTable(((D("5.00"), D("0.05")),), above=D("0.25"))
    assert option.check_price("4.95") == D("4.95")
    with pytest.raises(InstrumentError, match="tick 0.25"):
        option.check_price("5.10")
    forward = build_instrument(
        {"kind": "fx_forward", "symbol": "EUR/USD 3M", "pair": "EURUSD", "value_date": "2025-09-17"}
    )
    assert isinstance(forward, FxForward)
    assert forward.currency == "USD"


def test_errors_name_every_bad_field():
    with pytest.raises(InstrumentError, match="kind must be one of equity, etf"):
        build_instrument({"kind": "swap"})
    with pytest.raises(InstrumentError, match="unknown field\\(s\\) colour, lot"):
        build_instrument(
            {"kind": "cash", "symbol": "USD", "currency": "USD", "lot": 1, "colour": 2}
        )
    with pytest.raises(
        InstrumentError, match="missing field\\(s\\) settlement, settlement_calendar"
    ):
        build_instrument({"kind": "equity", "symbol": "X", "currency": "USD"})
    with pytest.raises(InstrumentError, match="must be a date"):
        build_instrument(
            {"kind": "fx_forward", "symbol": "X", "pair": "EUR/USD", "value_date": "17/09/2025"}
        )
    with pytest.raises(InstrumentError, match="must be one of us_securities"):
        build_instrument(
            {
                "kind": "equity",
                "symbol": "X",
                "currency": "USD",
                "settlement": "T+1",
                "settlement_calendar": "US",
            }
        )
    with pytest.raises(InstrumentError, match="must be true or false"):
        build_instrument(
            {
                "kind": "equity",
                "symbol": "X",
                "currency": "USD",
                "settlement": "us_securities",
                "settlement_calendar": "US",
                "fractional": "yes",
            }
        )
