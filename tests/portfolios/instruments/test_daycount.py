"""Day counts against the published examples of ISDA, and the conventions' properties."""

import datetime as dt
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portfolios.instruments import DayCount, InstrumentError, day_count, year_fraction

from .helpers import day

# ISDA, "30/360 Day Count Conventions" (isda.org, 22 December 2008), the worked examples
# for the 2006 Definitions' Section 4.16(f) and (g), as listed in QuantLib's test suite
# (test-suite/daycounters.cpp): start, end, days under 30/360 (bond basis), days under
# 30E/360 (Eurobond basis).
ISDA_30_360 = [
    # Example 1: end dates do not involve the last day of February
    ("2006-08-20", "2007-02-20", 180, 180),
    ("2007-02-20", "2007-08-20", 180, 180),
    ("2007-08-20", "2008-02-20", 180, 180),
    ("2008-02-20", "2008-08-20", 180, 180),
    ("2008-08-20", "2009-02-20", 180, 180),
    ("2009-02-20", "2009-08-20", 180, 180),
    # Example 2: end dates include some end-February dates
    ("2006-08-31", "2007-02-28", 178, 178),
    ("2007-02-28", "2007-08-31", 183, 182),
    ("2007-08-31", "2008-02-29", 179, 179),
    ("2008-02-29", "2008-08-31", 182, 181),
    ("2008-08-31", "2009-02-28", 178, 178),
    ("2009-02-28", "2009-08-31", 183, 182),
    # Example 3: miscellaneous calculations
    ("2006-01-31", "2006-02-28", 28, 28),
    ("2006-01-30", "2006-02-28", 28, 28),
    ("2006-02-28", "2006-03-03", 5, 5),
    ("2006-02-14", "2006-02-28", 14, 14),
    ("2006-09-30", "2006-10-31", 30, 30),
    ("2006-10-31", "2006-11-28", 28, 28),
    ("2007-08-31", "2008-02-28", 178, 178),
    ("2008-02-28", "2008-08-28", 180, 180),
    ("2008-02-28", "2008-08-30", 182, 182),
    ("2008-02-28", "2008-08-31", 183, 182),
    ("2007-02-26", "2008-02-28", 362, 362),
    ("2007-02-26", "2008-02-29", 363, 363),
    ("2008-02-29", "2009-02-28", 359, 359),
    ("2008-02-28", "2008-03-30", 32, 32),
    ("2008-02-28", "2008-03-31", 33, 32),
]


@pytest.mark.parametrize(("start", "end", "bond_basis", "eurobond"), ISDA_30_360)
def test_isda_30_360_examples(start, end, bond_basis, eurobond):
    assert day_count(DayCount.THIRTY_360_BOND_BASIS, day(start), day(end)) == bond_basis
    assert day_count(DayCount.THIRTY_E_360, day(start), day(end)) == eurobond
    assert year_fraction(DayCount.THIRTY_E_360, day(start), day(end)) == Fraction(eurobond, 360)


# The same ISDA publication, Section 4.16(h) 30E/360 (ISDA), each block with the
# termination date it assumes: (termination, [(start, end, days), ...]).
ISDA_30E_360_ISDA = [
    (
        "2009-08-20",
        [
            ("2006-08-20", "2007-02-20", 180),
            ("2008-02-20", "2008-08-20", 180),
            ("2009-02-20", "2009-08-20", 180),
        ],
    ),
    (
        "2012-02-29",
        [
            ("2006-02-28", "2006-08-31", 180),
            ("2006-08-31", "2007-02-28", 180),
            ("2007-08-31", "2008-02-29", 180),
            ("2008-02-29", "2008-08-31", 180),
            ("2010-08-31", "2011-02-28", 180),
            ("2011-08-31", "2012-02-29", 179),
        ],
    ),
    (
        "2008-02-29",
        [
            ("2006-01-31", "2006-02-28", 30),
            ("2006-01-30", "2006-02-28", 30),
            ("2006-02-28", "2006-03-03", 3),
            ("2006-02-14", "2006-02-28", 16),
            ("2006-09-30", "2006-10-31", 30),
            ("2006-10-31", "2006-11-28", 28),
            ("2007-08-31", "2008-02-28", 178),
            ("2008-02-28", "2008-08-28", 180),
            ("2008-02-28", "2008-08-30", 182),
            ("2008-02-28", "2008-08-31", 182),
            ("2007-02-28", "2008-02-28", 358),
            ("2007-02-28", "2008-02-29", 359),
            ("2008-02-29", "2009-02-28", 360),
            ("2008-02-29", "2008-03-30", 30),
            ("2008-02-29", "2008-03-31", 30),
        ],
    ),
]


@pytest.mark.parametrize(
    ("termination", "start", "end", "days"),
    [(t, s, e, n) for t, rows in ISDA_30E_360_ISDA for s, e, n in rows],
)
def test_isda_30e_360_isda_examples(termination, start, end, days):
    got = day_count(DayCount.THIRTY_E_360_ISDA, day(start), day(end), termination=day(termination))
    assert got == days


# 30/360 US (SIFMA Standard Securities Calculation Methods): no published table was found
# for the February rules, so these are worked by hand from the four rules in
# portfolios/instruments/daycount.py (D1/D2 after each rule in the comment).
@pytest.mark.parametrize(
    ("start", "end", "days", "why"),
    [
        # last day of Feb start: D1 28 -> 30; D2 31 and D1 >= 30 -> 30: 6 x 30 = 180
        ("2007-02-28", "2007-08-31", 180, "Feb end start, 31st end"),
        # both last day of Feb: D2 -> 30, D1 -> 30: 360 x 1 = 360
        ("2008-02-29", "2009-02-28", 360, "both Feb ends"),
        # D1 31 -> 30, D2 28 stays (start not in Feb): 30 + (28 - 30) = 28
        ("2007-01-31", "2007-02-28", 28, "31st start, Feb end"),
        # D1 Feb end -> 30; D2 31 -> 30: 30 (the example in the fasti crate's docs)
        ("2025-02-28", "2025-03-31", 30, "Feb end to March 31"),
        # Hull's corporate bond example: 1 March to 3 July is 4 x 30 + 2 = 122
        ("2019-03-01", "2019-07-03", 122, "Hull, Options, Futures ... ch. 6"),
    ],
)
def test_30_360_us_worked_by_hand(start, end, days, why):
    assert day_count(DayCount.THIRTY_360_US, day(start), day(end)) == days, why


def test_30_360_us_without_end_of_month_is_bond_basis():
    # FIX CouponDayCount 1: the February rules apply to end-of-month bonds only.
    start, end = day("2007-02-28"), day("2007-08-31")
    assert day_count(DayCount.THIRTY_360_US, start, end, end_of_month=False) == 183
    assert day_count(DayCount.THIRTY_360_BOND_BASIS, start, end) == 183


# ISDA, "EMU and Market Conventions: Recent Developments" (1998), Actual/Actual examples,
# as reproduced in QuantLib's test suite; ICMA with the reference period and frequency
# each example implies.
@pytest.mark.parametrize(
    ("start", "end", "isda", "icma", "reference", "frequency"),
    [
        # regular semiannual period
        ("2003-11-01", "2004-05-01", 0.497724380567, 0.5, ("2003-11-01", "2004-05-01"), 2),
        # short first period, annual coupons (reference 1 July 1998 - 1 July 1999)
        (
            "1999-02-01",
            "1999-07-01",
            0.410958904110,
            0.410958904110,
            ("1998-07-01", "1999-07-01"),
            1,
        ),
        ("1999-07-01", "2000-07-01", 1.001377348600, 1.0, ("1999-07-01", "2000-07-01"), 1),
        # second period after a long first period
        ("2003-07-15", "2004-01-15", 0.504004790778, 0.5, ("2003-07-15", "2004-01-15"), 2),
        # penultimate period before a short final period
        ("1999-07-30", "2000-01-30", 0.503892506924, 0.5, ("1999-07-30", "2000-01-30"), 2),
    ],
)
def test_isda_actual_actual_examples(start, end, isda, icma, reference, frequency):
    a, b = day(start), day(end)
    # The published figures have 12 decimals (the last one rounded): compare to 1e-10.
    assert float(year_fraction(DayCount.ACT_ACT_ISDA, a, b)) == pytest.approx(isda, abs=1e-10)
    ref = (day(reference[0]), day(reference[1]))
    got = year_fraction(DayCount.ACT_ACT_ICMA, a, b, reference=ref, frequency=frequency)
    assert float(got) == pytest.approx(icma, abs=1e-10)


def test_isda_actual_actual_long_and_short_periods():
    # The same ISDA paper: long first period 15 Aug 2002 - 15 Jul 2003 and the short
    # final period 30 Jan - 30 Jun 2000 under ACT/ACT ISDA (their ICMA counterparts need the
    # quasi-coupon periods: see test_bonds.py).
    long_first = year_fraction(DayCount.ACT_ACT_ISDA, day("2002-08-15"), day("2003-07-15"))
    assert long_first == Fraction(334, 365)
    assert float(long_first) == pytest.approx(0.915068493151, abs=1e-12)
    short_final = year_fraction(DayCount.ACT_ACT_ISDA, day("2000-01-30"), day("2000-06-30"))
    assert float(short_final) == pytest.approx(0.415300546448, abs=1e-12)


def test_actual_360_and_365_fixed():
    # A 91-day T-bill at 9% on $100 earns 100 x 0.09 x 91/360 = $2.275 (FRM Part 1 study
    # notes, "Day count conventions", Edupristine).
    accrual = year_fraction(DayCount.ACT_360, day("2024-01-02"), day("2024-04-02"))
    assert accrual == Fraction(91, 360)
    assert 100 * Fraction(9, 100) * accrual == Fraction(2275, 1000)
    # Hand-computed: 1 Jan to 1 Jul 2024 (a leap year) is 182 days; ACT/365F ignores the
    # leap day, ACT/ACT ISDA counts it.
    assert year_fraction(DayCount.ACT_365F, day("2024-01-01"), day("2024-07-01")) == Fraction(
        182, 365
    )
    assert year_fraction(DayCount.ACT_ACT_ISDA, day("2024-01-01"), day("2024-07-01")) == Fraction(
        182, 366
    )


def test_bad_day_count_input_is_refused():
    with pytest.raises(InstrumentError, match="runs forward"):
        year_fraction(DayCount.ACT_360, day("2024-02-01"), day("2024-01-01"))
    with pytest.raises(InstrumentError, match="reference coupon period"):
        year_fraction(DayCount.ACT_ACT_ICMA, day("2024-01-01"), day("2024-02-01"))
    with pytest.raises(InstrumentError, match="not inside"):
        year_fraction(
            DayCount.ACT_ACT_ICMA,
            day("2024-01-01"),
            day("2024-08-01"),
            reference=(day("2024-01-01"), day("2024-07-01")),
            frequency=2,
        )
    with pytest.raises(ValueError, match="30/365"):
        year_fraction("30/365", day("2024-01-01"), day("2024-02-01"))


dates = st.dates(min_value=day("1995-01-01"), max_value=day("2040-12-31"))


@given(dates, dates, dates)
def test_actual_conventions_add_up_over_adjacent_periods(a, b, c):
    a, b, c = sorted((a, b, c))
    for convention in (DayCount.ACT_360, DayCount.ACT_365F, DayCount.ACT_ACT_ISDA):
        whole = year_fraction(convention, a, c)
        assert whole == year_fraction(convention, a, b) + year_fraction(convention, b, c)


@given(dates, dates, dates)
def test_30e_360_adds_up_over_adjacent_periods(a, b, c):
    # Each date's day is adjusted the same way whichever end it is (31 -> 30), so the
    # count telescopes; 30/360 bond basis does not (its D2 rule looks at D1).
    a, b, c = sorted((a, b, c))
    whole = day_count(DayCount.THIRTY_E_360, a, c)
    assert whole == day_count(DayCount.THIRTY_E_360, a, b) + day_count(DayCount.THIRTY_E_360, b, c)


def test_30_360_bond_basis_is_not_additive():
    # By hand: 15 Jan -> 31 Jan is 16 (D1 = 15, so D2 = 31 stays), 31 Jan -> 1 Feb is 1
    # (D1 31 -> 30): 17 in two steps, while 15 Jan -> 1 Feb directly is 30 + 1 - 15 = 16.
    a, b, c = day("2007-01-15"), day("2007-01-31"), day("2007-02-01")
    parts = day_count(DayCount.THIRTY_360_BOND_BASIS, a, b) + day_count(
        DayCount.THIRTY_360_BOND_BASIS, b, c
    )
    assert parts == 17
    assert day_count(DayCount.THIRTY_360_BOND_BASIS, a, c) == 16


@given(st.integers(1995, 2040))
def test_actual_actual_isda_counts_a_calendar_year_as_one(year):
    assert year_fraction(DayCount.ACT_ACT_ISDA, day(f"{year}-01-01"), day(f"{year + 1}-01-01")) == 1


@given(dates)
def test_a_period_of_no_days_is_no_time(d):
    for convention in DayCount:
        if convention is DayCount.ACT_ACT_ICMA:
            ref = (d, d + dt.timedelta(days=182))
            got = year_fraction(convention, d, d, reference=ref, frequency=2)
        else:
            got = year_fraction(convention, d, d)
        assert got == 0
