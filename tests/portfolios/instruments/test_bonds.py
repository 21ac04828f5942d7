"""Bonds: schedules, accrued interest, clean and dirty prices, bookings, from published
figures (Hull; ISDA; 31 CFR Part 356) and properties."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portfolios.instruments import (
    US_SECURITIES,
    Bond,
    Closing,
    DayCount,
    Fill,
    InstrumentError,
    IssuerType,
    price_from_32nds,
    us_treasury,
)
from portfolios.instruments.settlement import EU_SECURITIES

from .helpers import CALENDARS, D, day


def treasury_8pct():
    # Hull's example bond: 8% a year, coupons on 1 March and 1 September.
    return us_treasury(
        "T 8 09/01/29",
        coupon_rate="0.08",
        issue_date=day("2019-03-01"),
        maturity=day("2029-09-01"),
    )


def corporate_8pct():
    return Bond(
        symbol="CORP 8 09/01/29",
        currency="USD",
        issuer_type=IssuerType.CORPORATE,
        coupon_rate=D("0.08"),
        frequency=2,
        day_count=DayCount.THIRTY_360_US,
        issue_date=day("2019-03-01"),
        maturity=day("2029-09-01"),
        min_piece=D(1000),
        increment=D(1000),
        settlement=US_SECURITIES,
        settlement_calendar="US",
    )


def test_hull_treasury_actual_actual_accrued():
    # Hull, Options, Futures, and Other Derivatives, ch. 6 "Day count conventions": a
    # Treasury bond with $100 principal, coupons 1 March and 1 September at 8% a year;
    # interest earned from 1 March to 3 July: 124/184 x 4 = 2.6957.
    bond = treasury_8pct()
    assert bond.accrual_fraction(day("2020-07-03")) == Fraction(124, 184 * 2)
    assert round(bond.accrued_per_100(day("2020-07-03")), 4) == D("2.6957")


def test_hull_corporate_30_360_accrued():
    # Same chapter: with 30/360 there are 122 days of 180: 122/180 x 4 = 2.7111.
    bond = corporate_8pct()
    assert bond.accrual_fraction(day("2020-07-03")) == Fraction(122, 360)
    assert round(bond.accrued_per_100(day("2020-07-03")), 4) == D("2.7111")


def test_treasury_coupon_on_may_and_november_15():
    # Hull (end-of-chapter problem on day counts; worked answer as published by PZ Academy):
    # 8% coupons on 15 May and 15 November, settled 18 October: 184 days between coupons,
    # 156 accrued: 4 x 156/184 = 3.3913.
    bond = us_treasury(
        "T 8 11/15/30", coupon_rate="0.08", issue_date=day("2020-11-15"), maturity=day("2030-11-15")
    )
    assert round(bond.accrued_per_100(day("2021-10-18")), 4) == D("3.3913")


def test_treasury_half_year_coupon_and_table_1_days():
    # 31 CFR Part 356, Appendix B, I.A.1: a $1,000 note at 8% pays ($1,000 x .08)/2 = $40 a
    # half-year regardless of its days. Table 1: days in each half-year, for periods on the
    # 1st/15th and on month ends, regular and leap years.
    bond = us_treasury(
        "T 8 02/15/40", coupon_rate="0.08", issue_date=day("2020-02-15"), maturity=day("2040-02-15")
    )
    assert bond.coupon_per_100(bond.periods[0]) * 10 == D(40)
    table_1 = {
        # (start, end): days
        ("2023-02-15", "2023-08-15"): 181,  # February to August, 15th, regular year
        ("2024-02-15", "2024-08-15"): 182,  # ... leap year
        ("2023-08-15", "2024-02-15"): 184,  # August to February, 15th
        ("2023-02-28", "2023-08-31"): 184,  # February to August, month ends
        ("2023-08-31", "2024-02-29"): 182,  # August to February, month ends, leap year
        ("2022-08-31", "2023-02-28"): 181,  # ... regular year
        ("2023-03-31", "2023-09-30"): 183,  # March to September, month ends
        ("2023-09-30", "2024-03-31"): 183,  # September to March, month ends, leap year
        ("2022-09-30", "2023-03-31"): 182,  # ... regular year
    }
    eom_bond = us_treasury(
        "T 4 02/28/30", coupon_rate="0.04", issue_date=day("2020-02-29"), maturity=day("2030-02-28")
    )
    mar_sep_bond = us_treasury(
        "T 4 03/31/30", coupon_rate="0.04", issue_date=day("2020-03-31"), maturity=day("2030-03-31")
    )
    periods = {
        (p.start.isoformat(), p.end.isoformat()): (p.end - p.start).days
        for b in (bond, eom_bond, mar_sep_bond)
        for p in b.periods
    }
    for key, days in table_1.items():
        assert periods[key] == days, key
    # every full half-year pays exactly 4 per 100, whatever its days (ACT/ACT ICMA)
    assert {eom_bond.coupon_per_100(p) * 2 for p in eom_bond.periods} == {D(4)}


def eurobond(issue, first, maturity, eom=False):
    return Bond(
        symbol="XS ODD",
        currency="EUR",
        issuer_type="corporate",
        coupon_rate=D("0.05"),
        frequency=2,
        day_count=DayCount.ACT_ACT_ICMA,
        issue_date=day(issue),
        first_coupon_date=day(first) if first else None,
        maturity=day(maturity),
        end_of_month=eom,
        min_piece=D(1000),
        increment=D(1000),
        settlement=EU_SECURITIES,
        settlement_calendar="TARGET",
    )


def test_isda_long_first_period_under_icma():
    # ISDA, "EMU and Market Conventions: Recent Developments" (1998): long first period
    # 15 Aug 2002 - 15 Jul 2003 of a semiannual bond: ACT/ACT ICMA 0.915760869565
    # (= (153/184 + 181/181) / 2 over the quasi-coupon periods).
    bond = eurobond("2002-08-15", "2003-07-15", "2006-01-15")
    first = bond.periods[0]
    assert first.references == (
        (day("2002-07-15"), day("2003-01-15")),
        (day("2003-01-15"), day("2003-07-15")),
    )
    fraction = bond._fraction(first, first.end)
    assert fraction == Fraction(153, 184 * 2) + Fraction(1, 2)
    assert float(fraction) == pytest.approx(0.915760869565, abs=1e-12)
    # the next period is regular: 0.5 (same paper)
    assert bond._fraction(bond.periods[1], bond.periods[1].end) == Fraction(1, 2)


def test_isda_short_final_period_under_icma():
    # Same paper: short final period 30 Jan - 30 Jun 2000 of a semiannual bond: ACT/ACT
    # ICMA 0.417582417582 (= 152 / (2 x 182), the quasi-period ending 30 Jul 2000).
    bond = eurobond("1999-07-30", "2000-01-30", "2000-06-30")
    last = bond.periods[-1]
    assert (last.start, last.end) == (day("2000-01-30"), day("2000-06-30"))
    assert last.references == ((day("2000-01-30"), day("2000-07-30")),)
    assert float(bond._fraction(last, last.end)) == pytest.approx(0.417582417582, abs=1e-12)
    # the penultimate period is regular: 0.5
    assert bond._fraction(bond.periods[0], bond.periods[0].end) == Fraction(1, 2)


def test_short_first_coupon_accrues_from_the_issue_date():
    # Hand-computed: issued 1 Feb 2024, first coupon 15 Jul 2024 on the 15 Jan/15 Jul grid;
    # on 1 Mar 2024 29 days have accrued in the quasi-period 15 Jan - 15 Jul 2024 (182
    # days): 5% x 29 / (2 x 182) per year; on 100,000 face: 100,000 x 0.05 x 29/364 = 398.35.
    bond = eurobond("2024-02-01", None, "2029-07-15")
    assert bond.periods[0].start == day("2024-02-01")
    assert bond.periods[0].end == day("2024-07-15")
    assert bond.accrued_interest(D(100_000), day("2024-03-01")).quantize(D("0.01")) == D("398.35")


def test_treasury_buy_books_principal_and_accrued_on_t_plus_1():
    # Buy $1,000,000 face of Hull's 8% Treasury at 101.50 on Wednesday 1 July 2020; it
    # settles Thursday 2 July (T+1). By hand: principal 1,000,000 x 101.50/100 =
    # 1,015,000.00; 123 days accrued of the 184 from 1 March: 1,000,000 x 0.08 x 123/368
    # = 26,739.1304... -> 26,739.13; the buyer pays 1,041,739.13.
    bond = treasury_8pct()
    booking = bond.book_fill(
        Fill(side="buy", quantity=D(1_000_000), price=D("101.50"), trade_date=day("2020-07-01")),
        CALENDARS,
    )
    assert booking.settlement_date == day("2020-07-02")
    assert booking.position_change == D(1_000_000)
    assert booking.cost_change == D("1015000.00")
    assert [(m.reason, m.amount) for m in booking.cash] == [
        ("principal", D("-1015000.00")),
        ("accrued_interest", D("-26739.13")),
    ]
    assert booking.cash_by_currency() == {"USD": D("-1041739.13")}
    assert all(m.value_date == day("2020-07-02") for m in booking.cash)


def test_bond_sale_realises_against_the_lots_cost():
    # Sell 500,000 of lots that cost 495,000.00 at 101.50: proceeds 507,500.00, profit
    # 12,500.00; the accrued interest received (500,000 x 0.08 x 123/368 = 13,369.57) is
    # interest, not profit.
    bond = treasury_8pct()
    booking = bond.book_fill(
        Fill(side="sell", quantity=D(500_000), price=D("101.50"), trade_date=day("2020-07-01")),
        CALENDARS,
        closes=Closing(quantity=D(500_000), cost=D("495000.00")),
    )
    assert booking.realised == D("12500.00")
    assert booking.cash_by_currency() == {"USD": D("507500.00") + D("13369.57")}


def test_valuation_clean_dirty_and_notional():
    bond = treasury_8pct()
    value = bond.value(D(1_000_000), D("101.50"), on=day("2020-07-03"))
    assert value.clean_value == D("1015000.00")
    assert value.accrued_interest.quantize(D("0.01")) == D("26956.52")
    assert value.market_value == value.clean_value + value.accrued_interest
    assert value.notional == D(1_000_000)
    dirty = bond.dirty_price(D("101.50"), day("2020-07-03"))
    assert round(dirty, 4) == D("104.1957")
    assert bond.clean_price(dirty, day("2020-07-03")) == D("101.50")
    # a short position is valued negative, accrued included
    assert bond.value(D(-1_000_000), D("101.50"), on=day("2020-07-03")).market_value == (
        -value.market_value
    )


def test_accrued_is_zero_on_a_coupon_date():
    bond = treasury_8pct()
    assert bond.accrued_per_100(day("2020-09-01")) == 0
    assert bond.accrued_per_100(day("2020-08-31")) == D("8") / 2 * D(183) / D(184)


def test_quantity_rules_minimum_piece_and_increment():
    bond = Bond(
        symbol="XS 100K",
        currency="EUR",
        issuer_type="corporate",
        coupon_rate=D("0.03"),
        frequency=1,
        day_count=DayCount.THIRTY_E_360,
        issue_date=day("2024-03-15"),
        maturity=day("2031-03-15"),
        # "EUR 100,000 and integral multiples of EUR 1,000 in excess thereof"
        min_piece=D(100_000),
        increment=D(1_000),
        settlement=EU_SECURITIES,
        settlement_calendar="TARGET",
    )
    assert bond.check_quantity(D(100_000)) == D(100_000)
    assert bond.check_quantity(D(101_000)) == D(101_000)
    with pytest.raises(InstrumentError, match="below the minimum of 100,000 face"):
        bond.check_quantity(D(99_000))
    with pytest.raises(InstrumentError, match="100,000 plus multiples of 1,000 face"):
        bond.check_quantity(D(100_500))
    assert bond.round_quantity(D(250_999)) == D(250_000)
    assert bond.round_quantity(D(60_000)) == 0
    assert bond.round_quantity(D(60_000), rounding="ROUND_UP") == D(100_000)
    assert bond.round_quantity(D(-150_400)) == D(-150_000)
    # 30E/360 annual: 15 Mar -> 31 Aug 2024 counts 5 x 30 + 15 = 165 days
    assert (
        bond.accrued_interest(D(100_000), day("2024-08-31")) == D(100_000) * D("0.03") * 165 / 360
    )


def test_bad_bond_descriptions_and_dates_are_refused():
    with pytest.raises(InstrumentError, match=r"a fraction \(0.0425 for 4.25%\)"):
        us_treasury(
            "T", coupon_rate="4.25", issue_date=day("2024-01-15"), maturity=day("2034-01-15")
        )
    with pytest.raises(InstrumentError, match="issue date must be before"):
        us_treasury(
            "T", coupon_rate="0.04", issue_date=day("2034-01-15"), maturity=day("2024-01-15")
        )
    with pytest.raises(InstrumentError, match="unknown day count"):
        Bond(**{**_fields(corporate_8pct()), "day_count": "30/365"})
    with pytest.raises(InstrumentError, match="frequency"):
        Bond(**{**_fields(corporate_8pct()), "frequency": 3})
    bond = treasury_8pct()
    with pytest.raises(InstrumentError, match="matured on 2029-09-01"):
        bond.accrued_per_100(day("2029-09-01"))
    with pytest.raises(InstrumentError, match="accrues interest from 2019-03-01"):
        bond.accrued_per_100(day("2019-02-28"))
    with pytest.raises(InstrumentError, match="cannot trade"):
        bond.book_fill(
            Fill(side="buy", quantity=100, price=100, trade_date=day("2029-09-04")), CALENDARS
        )
    with pytest.raises(InstrumentError, match="needs the date interest accrues to"):
        bond.value(D(100), D(100))
    with pytest.raises(InstrumentError, match="not a tradeable quantity"):
        bond.book_fill(
            Fill(side="buy", quantity=150, price=100, trade_date=day("2020-07-02")), CALENDARS
        )
    with pytest.raises(InstrumentError, match="cannot be zero"):
        bond.book_fill(
            Fill(side="buy", quantity=100, price=0, trade_date=day("2020-07-02")), CALENDARS
        )


def _fields(bond):
    import dataclasses

    return {f.name: getattr(bond, f.name) for f in dataclasses.fields(bond) if f.init}


# --- properties -----------------------------------------------------------------------

CONVENTIONS = list(DayCount)


@st.composite
def bonds(draw):
    """Bonds with regular, short first and long first periods."""
    frequency = draw(st.sampled_from([1, 2, 4, 12]))
    grid_start = draw(st.dates(min_value=day("2000-01-01"), max_value=day("2030-12-31")))
    years = draw(st.integers(1, 30))
    if grid_start.month == 2 and grid_start.day == 29:
        grid_start = grid_start.replace(day=28)
    fields = {
        "symbol": "PROP",
        "currency": "USD",
        "issuer_type": draw(st.sampled_from(list(IssuerType))),
        "coupon_rate": Decimal(draw(st.integers(0, 1500))) / 10_000,
        "frequency": frequency,
        "day_count": draw(st.sampled_from(CONVENTIONS)),
        "issue_date": grid_start,
        "maturity": grid_start.replace(year=grid_start.year + years),
        "min_piece": D(1000),
        "increment": D(1000),
        "settlement": US_SECURITIES,
        "settlement_calendar": "US",
    }
    regular = Bond(**fields)
    first_end = regular.periods[0].end
    # Issue later than the grid date: a short first period ...
    shift = draw(st.integers(0, (first_end - grid_start).days - 1))
    fields["issue_date"] = grid_start + dt.timedelta(days=shift)
    # ... or, with the first coupon one grid date later, a long one.
    if len(regular.periods) >= 3 and draw(st.booleans()):
        fields["first_coupon_date"] = regular.periods[1].end
    return Bond(**fields)


@given(bonds(), st.data())
def test_accrued_interest_is_between_zero_and_the_period_coupon(bond, data):
    period = data.draw(st.sampled_from(bond.periods))
    offset = data.draw(st.integers(0, (period.end - period.start).days - 1))
    settle = period.start + dt.timedelta(days=offset)
    accrued = bond.accrued_per_100(settle)
    coupon = bond.coupon_per_100(period)
    assert 0 <= accrued <= coupon
    # a regular period under ACT/ACT ICMA pays exactly rate / frequency
    if period.regular and bond.day_count is DayCount.ACT_ACT_ICMA:
        assert coupon == 100 * bond.coupon_rate / bond.frequency


@given(
    bonds(), st.data(), st.integers(1, 5000).map(lambda n: D(n * 1000)), st.integers(5000, 15000)
)
def test_dirty_is_clean_plus_accrued(bond, data, face, price_cents):
    period = data.draw(st.sampled_from(bond.periods))
    settle = period.start + dt.timedelta(
        days=data.draw(st.integers(0, (period.end - period.start).days - 1))
    )
    price = D(price_cents) / 100
    value = bond.value(face, price, on=settle)
    assert value.market_value == value.clean_value + value.accrued_interest
    assert bond.dirty_price(price, settle) == price + bond.accrued_per_100(settle)


@given(bonds(), st.data(), st.integers(1, 500).map(lambda n: D(n * 1000)), st.integers(5000, 15000))
def test_buy_then_sell_at_the_same_price_and_date_leaves_cash_unchanged(bond, data, face, cents):
    period = data.draw(st.sampled_from(bond.periods))
    settle = period.start + dt.timedelta(
        days=data.draw(st.integers(0, (period.end - period.start).days - 1))
    )
    price = D(cents) / 100
    trades = [
        bond.book_fill(
            Fill(side=side, quantity=face, price=price, trade_date=settle, settlement_date=settle),
            CALENDARS,
        )
        for side in ("buy", "sell")
    ]
    assert sum(t.position_change for t in trades) == 0
    assert sum(sum(t.cash_by_currency().values()) for t in trades) == 0


def test_prices_in_32nds():
    # Hull, ch. 6: a quoted price of 95-16 is $95.50. CME 10-Year T-Note futures specs:
    # "126-16 represents 126 16/32 and 126-165 represents 126 16.5/32"; the quarter-32nd
    # notation of the 5- and 2-year contracts: -162 is 16.25/32, -167 is 16.75/32.
    assert price_from_32nds("95-16") == D("95.5")
    assert price_from_32nds("126-16") == D("126.5")
    assert price_from_32nds("126-165") == D("126.515625")
    assert price_from_32nds("126-16+") == D("126.515625")
    assert price_from_32nds("119-162") == D("119.5078125")
    assert price_from_32nds("119-167") == D("119.5234375")
    for bad in ("95.16", "95-32", "95-1", "95-163", "-16", 95.5):
        with pytest.raises(InstrumentError, match="looks like 99-16"):
            price_from_32nds(bad)
