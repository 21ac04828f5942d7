"""The payment systems' closing days (portfolios.payment_days) and the FX value dates
they give.

Published calendars checked against:

- The Federal Reserve Banks' holiday schedules (frbservices.org, "Holiday schedules"):
  2022 closes 17 Jan, 21 Feb, 30 May, 20 Jun (Juneteenth on a Sunday), 4 Jul, 5 Sep,
  10 Oct, 11 Nov, 24 Nov, 26 Dec (Christmas on a Sunday); New Year's Day 2022 fell on
  a Saturday and 31 December 2021 was open. 2023: 2 Jan, 16 Jan, 20 Feb, 29 May,
  19 Jun, 4 Jul, 4 Sep, 9 Oct, 23 Nov, 25 Dec (Veterans Day on a Saturday: open the
  Friday before). 2024: 1 Jan, 15 Jan, 19 Feb, 27 May, 19 Jun, 4 Jul, 2 Sep, 14 Oct,
  11 Nov, 28 Nov, 25 Dec.
- The ECB's TARGET closing days: New Year's Day, Good Friday, Easter Monday, 1 May,
  25 and 26 December; in 2024 Good Friday was 29 March and Easter Monday 1 April.
- Easter Sundays (the Gregorian computus): 21 April 2019, 31 March 2024, 20 April
  2025, 25 April 2038 (the latest possible date), 23 March 2008 (near the earliest).
"""

from __future__ import annotations

from datetime import date

import pytest

from portfolios import terms
from portfolios.instruments import InstrumentError
from portfolios.payment_days import easter_sunday, payment_calendar

FED_2022_2024 = [
    date(2022, 1, 17), date(2022, 2, 21), date(2022, 5, 30), date(2022, 6, 20),
    date(2022, 7, 4), date(2022, 9, 5), date(2022, 10, 10), date(2022, 11, 11),
    date(2022, 11, 24), date(2022, 12, 26),
    date(2023, 1, 2), date(2023, 1, 16), date(2023, 2, 20), date(2023, 5, 29),
    date(2023, 6, 19), date(2023, 7, 4), date(2023, 9, 4), date(2023, 10, 9),
    date(2023, 11, 23), date(2023, 12, 25),
    date(2024, 1, 1), date(2024, 1, 15), date(2024, 2, 19), date(2024, 5, 27),
    date(2024, 6, 19), date(2024, 7, 4), date(2024, 9, 2), date(2024, 10, 14),
    date(2024, 11, 11), date(2024, 11, 28), date(2024, 12, 25),
]  # fmt: skip


@pytest.mark.parametrize(
    ("year", "sunday"),
    [(2019, date(2019, 4, 21)), (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)),
     (2038, date(2038, 4, 25)), (2008, date(2008, 3, 23))],
)  # fmt: skip
def test_easter_sunday(year, sunday):
    assert easter_sunday(year) == sunday


def test_fedwire_closes_on_the_reserve_banks_published_days():
    usd = payment_calendar("USD")
    closed = sorted(
        d for d in usd.holidays if date(2022, 1, 1) <= d <= date(2024, 12, 31) and d.weekday() < 5
    )
    assert closed == FED_2022_2024
    assert usd.is_business_day(date(2021, 12, 31))  # New Year's Day 2022 a Saturday
    assert usd.is_business_day(date(2023, 11, 10))  # Veterans Day 2023 a Saturday
    assert usd.is_business_day(date(2021, 6, 18))  # Juneteenth kept from 2022 only
    assert usd.is_business_day(date(2024, 3, 29))  # Good Friday: the NYSE shuts, not Fedwire


def test_target_closes_on_its_six_days_and_no_other():
    eur = payment_calendar("EUR")
    closed = sorted(d for d in eur.holidays if d.year == 2024)
    assert closed == [
        date(2024, 1, 1), date(2024, 3, 29), date(2024, 4, 1), date(2024, 5, 1),
        date(2024, 12, 25), date(2024, 12, 26),
    ]  # fmt: skip
    assert eur.is_business_day(date(2024, 12, 24))  # Frankfurt's exchange shuts, TARGET not
    assert eur.is_business_day(date(2024, 12, 31))


def test_a_date_outside_the_rules_span_is_refused_not_guessed():
    with pytest.raises(InstrumentError, match="covers 2002-01-01 to 2099-12-31"):
        payment_calendar("USD").is_business_day(date(2100, 1, 4))


def test_other_currencies_keep_their_home_exchange_s_days():
    assert payment_calendar("GBP") is None
    gbp = terms.currency_calendar("GBP")
    assert not gbp.is_business_day(date(2024, 8, 26))  # the summer bank holiday


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("dealt", "spot"),
    [
        # Columbus Day: TARGET open, Fedwire shut, so spot moves to the Tuesday
        (date(2024, 10, 10), date(2024, 10, 15)),
        # Christmas Eve: TARGET and Fedwire open (Frankfurt's exchange is not)
        (date(2024, 12, 20), date(2024, 12, 24)),
        # Good Friday and Easter Monday: TARGET shut, so two euro days from Tuesday
        (date(2024, 3, 28), date(2024, 4, 3)),
    ],
)
def test_eur_usd_spot_dates_follow_the_payment_systems(ops, dealt, spot):
    from .test_fx_settlement import fx_spot

    assert terms.settlement_date(fx_spot(ops), dealt) == spot
