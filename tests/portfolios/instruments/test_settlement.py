"""Settlement dates: market cycles and their changes, FX spot and forward value dates."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portfolios.instruments import (
    CANADA_SECURITIES,
    EU_SECURITIES,
    JAPAN_EQUITIES,
    US_SECURITIES,
    US_TREASURIES,
    Equity,
    HolidayCalendar,
    InstrumentError,
    Roll,
    fx_forward_value_date,
    fx_spot_date,
)

from .helpers import CALENDARS, US, calendar, day


def test_us_securities_moved_from_t2_to_t1_on_28_may_2024():
    # SEC Rule 15c6-1: T+1 for trades from Tuesday 28 May 2024 (after Memorial Day,
    # Monday 27 May). A Friday 24 May trade was still T+2 and, skipping the holiday,
    # settled on Wednesday 29 May, the same day as Tuesday's T+1 trades.
    assert US_SECURITIES.lag_on(day("2024-05-24")) == 2
    assert US_SECURITIES.lag_on(day("2024-05-28")) == 1
    cal = {"US": US}
    friday = US_SECURITIES.settlement_date(day("2024-05-24"), cal, "US", what="AAPL")
    tuesday = US_SECURITIES.settlement_date(day("2024-05-28"), cal, "US", what="AAPL")
    assert friday == tuesday == day("2024-05-29")
    # T+1 over a holiday: Tuesday 18 June 2024 settles Thursday 20 June (Juneteenth).
    assert US_SECURITIES.settlement_date(day("2024-06-18"), cal, "US", what="AAPL") == day(
        "2024-06-20"
    )


def test_a_trade_before_the_known_rules_is_refused():
    with pytest.raises(InstrumentError, match="known from 2017-09-05.*give the settlement date"):
        US_SECURITIES.lag_on(day("2016-03-01"))


def test_canada_moved_a_day_earlier():
    # Canada's T+1 began Monday 27 May 2024 (SIFMA transition dates).
    cal = {"CA": calendar("CA")}
    assert CANADA_SECURITIES.settlement_date(day("2024-05-24"), cal, "CA", what="RY") == day(
        "2024-05-28"
    )
    assert CANADA_SECURITIES.settlement_date(day("2024-05-27"), cal, "CA", what="RY") == day(
        "2024-05-28"
    )


def test_treasuries_japan_and_the_eu_change_of_october_2027():
    cal = {"US": US, "XTKS": calendar("XTKS"), "TARGET": calendar("TARGET")}
    # Treasuries T+1: Wednesday 3 July 2024 settles Friday 5 July (4 July closed).
    assert US_TREASURIES.settlement_date(day("2024-07-03"), cal, "US", what="T") == day(
        "2024-07-05"
    )
    # Japan T+2 from 16 July 2019: Tuesday 16 July settles Thursday 18 July.
    assert JAPAN_EQUITIES.settlement_date(day("2019-07-16"), cal, "XTKS", what="7203") == day(
        "2019-07-18"
    )
    # EU T+2 until the planned T+1 of Monday 11 October 2027.
    assert EU_SECURITIES.settlement_date(day("2027-10-08"), cal, "TARGET", what="SAP") == day(
        "2027-10-12"
    )
    assert EU_SECURITIES.settlement_date(day("2027-10-11"), cal, "TARGET", what="SAP") == day(
        "2027-10-12"
    )


def test_a_missing_or_short_calendar_is_named():
    stock = Equity(
        symbol="AAPL", currency="USD", settlement=US_SECURITIES, settlement_calendar="XNYS"
    )
    with pytest.raises(InstrumentError, match="no holiday calendar 'XNYS'.*AAPL.*given: US"):
        stock.settlement_date(day("2025-01-06"), {"US": US})
    short = calendar("XNYS", first="2025-01-01", last="2025-12-31")
    with pytest.raises(InstrumentError, match="covers 2025-01-01 to 2025-12-31; 2026-01-01"):
        stock.settlement_date(day("2025-12-31"), {"XNYS": short})


def test_business_day_rolls():
    # Hand-checked on a calendar closed on Monday 1 September 2025 (Labor Day).
    assert US.roll(day("2025-08-30"), Roll.FOLLOWING) == day("2025-09-02")
    assert US.roll(day("2025-08-30"), Roll.MODIFIED_FOLLOWING) == day("2025-08-29")
    assert US.roll(day("2025-08-30"), Roll.PRECEDING) == day("2025-08-29")
    assert US.roll(day("2025-08-29")) == day("2025-08-29")
    assert US.add_business_days(day("2025-08-29"), 1) == day("2025-09-02")
    assert US.add_business_days(day("2025-08-30"), 0) == day("2025-09-02")
    assert US.business_days_between(day("2025-08-29"), day("2025-09-03")) == 2
    with pytest.raises(InstrumentError, match="every day of the week"):
        HolidayCalendar(name="never", weekend=frozenset(range(7)))


# ObjectLab Kit, "Currency Date Calculation" (after London FX, londonfx.co.uk/valdates),
# the examples table: USD is the cross currency, 4 July 2006 a USD holiday, no broken
# dates. Calendars with no other holidays, as the example assumes.
@pytest.mark.parametrize(
    ("pair", "trade", "spot", "why"),
    [
        ("EUR/USD", "2006-06-30", "2006-07-05", "July 4 USD holiday"),
        ("EUR/USD", "2006-07-03", "2006-07-05", "July 4 has no impact on T+1"),
        ("EUR/GBP", "2006-06-30", "2006-07-05", "no broken date: move forward from July 4"),
        ("EUR/MXN", "2006-07-03", "2006-07-06", "July 4 USD holiday must be skipped for MXN"),
        # The same page's walk-through: GBP/EUR on 2 July 2013 is 4 July for both
        # currencies, a USD holiday, so the spot date is 5 July.
        ("GBP/EUR", "2013-07-02", "2013-07-05", "cross spot never on a USD holiday"),
    ],
)
def test_objectlab_spot_dates(pair, trade, spot, why):
    base, quote = pair.split("/")
    assert fx_spot_date(base, quote, day(trade), CALENDARS) == day(spot), why


def test_arabic_working_weeks():
    # Same table: USD/EGP (EGP weekend Friday-Saturday) traded on a Thursday spots on
    # Monday; USD/SAR with the page's Friday-Sunday weekend spots on Tuesday.
    thursday = day("2006-07-06")
    cals = {
        "USD": calendar("USD"),
        "EGP": calendar("EGP", weekend=(4, 5)),
        "SAR": calendar("SAR", weekend=(4, 5, 6)),
    }
    assert fx_spot_date("USD", "EGP", thursday, cals) == day("2006-07-10")
    assert fx_spot_date("USD", "SAR", thursday, cals) == day("2006-07-11")


def test_juneteenth_on_t_plus_1_does_not_move_eur_usd_spot():
    # quant.stackexchange.com/q/79295: an EURUSD trade on Friday 16 June 2023 was
    # observed to spot on Tuesday 20 June, Juneteenth (Monday 19 June) being T+1.
    assert fx_spot_date("EUR", "USD", day("2023-06-16"), CALENDARS) == day("2023-06-20")


def test_usd_cad_is_t_plus_1_and_its_crosses_t_plus_2():
    # London FX: USD/CAD spot is T+1; GBP/CAD takes the later of USD/CAD and GBP/USD: T+2.
    friday = day("2025-06-13")
    assert fx_spot_date("USD", "CAD", friday, CALENDARS) == day("2025-06-16")
    assert fx_spot_date("GBP", "CAD", friday, CALENDARS) == day("2025-06-17")
    # T+1 must be a good day for both: USD/CAD on Thursday 3 July 2025 skips 4 July.
    assert fx_spot_date("USD", "CAD", day("2025-07-03"), CALENDARS) == day("2025-07-07")
    # On Wednesday 2 July it is Thursday 3 July; forced to T+2, the USD leg cannot take
    # 4 July as its final day, so Monday 7 July.
    assert fx_spot_date("USD", "CAD", day("2025-07-02"), CALENDARS) == day("2025-07-03")
    assert fx_spot_date("USD", "CAD", day("2025-07-02"), CALENDARS, spot_lag=2) == day("2025-07-07")


def test_fx_calendars_must_be_given():
    with pytest.raises(InstrumentError, match="'USD'.*USD holidays count"):
        fx_spot_date("EUR", "GBP", day("2025-06-13"), {"EUR": CALENDARS["EUR"]})
    with pytest.raises(InstrumentError, match="'CHF'"):
        fx_spot_date("EUR", "CHF", day("2025-06-13"), CALENDARS)


@pytest.mark.parametrize(
    ("trade", "tenor", "value", "why"),
    [
        # spot Mon 14 Apr 2025; one month later, a business day
        ("2025-04-10", "1M", "2025-05-14", "same day of month"),
        # spot Wed 30 Apr 2025 is April's last business day: end-end to Fri 30 May 2025
        ("2025-04-28", "1M", "2025-05-30", "end-end rule"),
        # spot Wed 30 Jul 2025; 30 Aug is a Saturday, following would leave August
        ("2025-07-28", "1M", "2025-08-29", "modified following"),
        # spot Thu 3 Jul 2025 (4 July closed); 1W = Thu 10 Jul
        ("2025-07-01", "1W", "2025-07-10", "weeks run from spot"),
        ("2025-04-10", "1Y", "2026-04-14", "a year"),
    ],
)
def test_forward_value_dates_worked_by_hand(trade, tenor, value, why):
    assert fx_forward_value_date("EUR", "USD", day(trade), tenor, CALENDARS) == day(value), why


def test_bad_tenors_are_refused():
    for tenor in ("", "3X", "M3", "0M"):
        with pytest.raises(InstrumentError, match="tenor"):
            fx_forward_value_date("EUR", "USD", day("2025-04-10"), tenor, CALENDARS)


weekdays = st.dates(min_value=day("2000-01-03"), max_value=day("2034-12-29")).filter(
    lambda d: d.weekday() < 5
)


@given(weekdays, st.sampled_from(["EUR/USD", "USD/CAD", "EUR/GBP", "EUR/MXN", "USD/JPY"]))
def test_spot_is_a_good_day_for_both_currencies_and_usd(trade, pair):
    base, quote = pair.split("/")
    spot = fx_spot_date(base, quote, trade, CALENDARS)
    for ccy in (base, quote, "USD"):
        assert CALENDARS[ccy].is_business_day(spot)
    assert 1 <= (spot - trade).days <= 6


since_t2 = st.dates(min_value=day("2017-09-05"), max_value=day("2034-12-29"))


@given(since_t2, since_t2)
def test_settlement_dates_keep_the_order_of_trade_dates(a, b):
    a, b = sorted((a, b))
    sa = US_SECURITIES.settlement_date(a, CALENDARS, "US", what="X")
    sb = US_SECURITIES.settlement_date(b, CALENDARS, "US", what="X")
    # non-decreasing even across the change to T+1 (trades of 24 and 28 May 2024 both
    # settled on 29 May)
    assert sa <= sb
    assert US.is_business_day(sa) and sa > a
    # the lag counts business days after the trade date, whatever day that is
    assert US.business_days_between(a, sa) == US_SECURITIES.lag_on(a)


def test_holiday_calendar_refuses_datetimes():
    with pytest.raises(InstrumentError, match="must be dates"):
        HolidayCalendar(name="X", holidays=frozenset({dt.datetime(2025, 1, 1)}))
