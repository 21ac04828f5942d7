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
- England and Wales bank holidays (gov.uk/bank-holidays), on which CHAPS is closed:
  2002 (the Golden Jubilee: 3 and 4 June), 2020 (VE Day: Friday 8 May), 2022 (3 January
  for New Year's Day on a Saturday; 2 and 3 June, the Platinum Jubilee; 19 September, the
  state funeral; 26 and 27 December, Christmas on a Sunday), 2023 (8 May, the
  coronation), 2024.
- Japan's bank holidays (the Cabinet Office's national holidays, with 31 December to 3
  January): 2019 (the enthronement: 30 April to 2 May, 22 October; SBI Shinsei's
  published list), 2020 (the Olympic moves: 23 and 24 July, 10 August), 2024 (Sunday
  holidays kept on 12 February, 6 May, 12 August, 23 September, 4 November), 2026 (22
  September between two holidays).
- The Swiss bank holidays of SIC (the SNB's list): 2024, Ascension on 9 May, Whit Monday
  on 20 May; 1 May and 24 December open, though the SIX Swiss Exchange shuts.
- Payments Canada's closing days: 2023 (2 January, 3 July, 2 October and 13 November
  for holidays on a weekend) and 2024 (30 September, 11 November); Family Day (19
  February 2024), a provincial holiday on which the Toronto exchange shuts, is open.
- The RBA's RITS holidays: 2022 (3 January for New Year's Day on a Saturday; 22
  September, the National Day of Mourning; 26 and 27 December, Christmas on a Sunday),
  2023 (2 January), 2024; Anzac Day 2026 on a Saturday not moved; the NSW Bank Holiday
  (5 August 2024) open.
- The Riksbank's RIX closing days 2023 and 2024 (Midsummer Eve 23 June 2023, 21 June
  2024; Epiphany 2023 on a Friday).
- Norges Bank's closing days 2023 and 2024 (17 May, Maundy Thursday, 24 and 31 December).
- Danmarks Nationalbank's closing days 2023 (General Prayer Day 5 May, its last) and
  2024 (without it).
These four lists are written from the rules the operators published, not read from
their pages (none can be fetched here): to be confirmed against the operators'
calendars. Each agrees, day for day over 2002-2027, with the exchange's calendar that
exchange_calendars ships (XASX, XSTO, XOSL, XCSE), written by other hands.
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
    for currency in ("HKD", "SGD", "NZD"):
        assert payment_calendar(currency) is None
    hkd = terms.currency_calendar("HKD")
    assert not hkd.is_business_day(date(2024, 2, 12))  # the Lunar New Year, by XHKG
    sgd = terms.currency_calendar("SGD")
    assert not sgd.is_business_day(date(2024, 2, 12))  # the Chinese New Year, by XSES
    nzd = terms.currency_calendar("NZD")
    assert not nzd.is_business_day(date(2024, 2, 6))  # Waitangi Day, by XNZE
    assert terms.currency_calendar("ZAR").is_business_day(date(2024, 3, 21))  # weekdays


def _closed(currency: str, year: int) -> list[date]:
    days = payment_calendar(currency).holidays
    return sorted(d for d in days if d.year == year and d.weekday() < 5)


def _dates(year: int, *month_days: tuple[int, int]) -> list[date]:
    return [date(year, m, d) for m, d in month_days]


@pytest.mark.parametrize(
    ("year", "closed"),
    [
        (2002, [(1, 1), (3, 29), (4, 1), (5, 6), (6, 3), (6, 4), (8, 26), (12, 25), (12, 26)]),
        (2020, [(1, 1), (4, 10), (4, 13), (5, 8), (5, 25), (8, 31), (12, 25), (12, 28)]),
        (2022, [(1, 3), (4, 15), (4, 18), (5, 2), (6, 2), (6, 3), (8, 29), (9, 19), (12, 26),
                (12, 27)]),
        (2023, [(1, 2), (4, 7), (4, 10), (5, 1), (5, 8), (5, 29), (8, 28), (12, 25), (12, 26)]),
        (2024, [(1, 1), (3, 29), (4, 1), (5, 6), (5, 27), (8, 26), (12, 25), (12, 26)]),
    ],
)  # fmt: skip
def test_chaps_closes_on_the_bank_holidays_of_england_and_wales(year, closed):
    assert _closed("GBP", year) == _dates(year, *closed)


@pytest.mark.parametrize(
    ("year", "closed"),
    [
        (2019, [(1, 1), (1, 2), (1, 3), (1, 14), (2, 11), (3, 21), (4, 29), (4, 30), (5, 1),
                (5, 2), (5, 3), (5, 6), (7, 15), (8, 12), (9, 16), (9, 23), (10, 14), (10, 22),
                (11, 4), (12, 31)]),
        (2020, [(1, 1), (1, 2), (1, 3), (1, 13), (2, 11), (2, 24), (3, 20), (4, 29), (5, 4),
                (5, 5), (5, 6), (7, 23), (7, 24), (8, 10), (9, 21), (9, 22), (11, 3), (11, 23),
                (12, 31)]),
        (2024, [(1, 1), (1, 2), (1, 3), (1, 8), (2, 12), (2, 23), (3, 20), (4, 29), (5, 3),
                (5, 6), (7, 15), (8, 12), (9, 16), (9, 23), (10, 14), (11, 4), (12, 31)]),
        (2026, [(1, 1), (1, 2), (1, 12), (2, 11), (2, 23), (3, 20), (4, 29), (5, 4), (5, 5),
                (5, 6), (7, 20), (8, 11), (9, 21), (9, 22), (9, 23), (10, 12), (11, 3),
                (11, 23), (12, 31)]),
    ],
)  # fmt: skip
def test_boj_net_closes_on_japan_s_holidays_and_the_year_end(year, closed):
    assert _closed("JPY", year) == _dates(year, *closed)


def test_sic_closes_on_the_swiss_bank_holidays_not_the_exchange_s():
    assert _closed("CHF", 2024) == _dates(
        2024, (1, 1), (1, 2), (3, 29), (4, 1), (5, 9), (5, 20), (8, 1), (12, 25), (12, 26)
    )
    chf = payment_calendar("CHF")
    for open_day in (date(2024, 5, 1), date(2024, 12, 24), date(2024, 12, 31)):
        assert chf.is_business_day(open_day)  # the SIX Swiss Exchange shuts


def test_lynx_closes_on_payments_canada_s_days():
    assert _closed("CAD", 2023) == _dates(
        2023, (1, 2), (4, 7), (5, 22), (7, 3), (8, 7), (9, 4), (10, 2), (10, 9), (11, 13),
        (12, 25), (12, 26),
    )  # fmt: skip
    assert _closed("CAD", 2024) == _dates(
        2024, (1, 1), (3, 29), (5, 20), (7, 1), (8, 5), (9, 2), (9, 30), (10, 14), (11, 11),
        (12, 25), (12, 26),
    )  # fmt: skip
    assert payment_calendar("CAD").is_business_day(date(2024, 2, 19))  # Family Day
    assert payment_calendar("CAD").is_business_day(date(2020, 9, 30))  # from 2021 only


@pytest.mark.parametrize(
    ("year", "closed"),
    [
        (2022, [(1, 3), (1, 26), (4, 15), (4, 18), (4, 25), (6, 13), (9, 22), (12, 26),
                (12, 27)]),
        (2023, [(1, 2), (1, 26), (4, 7), (4, 10), (4, 25), (6, 12), (12, 25), (12, 26)]),
        (2024, [(1, 1), (1, 26), (3, 29), (4, 1), (4, 25), (6, 10), (12, 25), (12, 26)]),
    ],
)  # fmt: skip
def test_rits_closes_on_australia_s_national_holidays(year, closed):
    assert _closed("AUD", year) == _dates(year, *closed)


def test_rits_keeps_anzac_day_where_it_falls_and_the_state_days_open():
    aud = payment_calendar("AUD")
    assert aud.is_business_day(date(2026, 4, 27))  # Anzac Day 2026 a Saturday: not moved
    assert aud.is_business_day(date(2024, 8, 5))  # the NSW Bank Holiday
    assert aud.is_business_day(date(2024, 10, 7))  # NSW Labour Day
    # the rules reach past the year ahead the exchange's calendar knows (a long forward)
    assert not aud.is_business_day(date(2035, 1, 26))


@pytest.mark.parametrize(
    ("currency", "year", "closed"),
    [
        ("SEK", 2023, [(1, 6), (4, 7), (4, 10), (5, 1), (5, 18), (6, 6), (6, 23), (12, 25),
                       (12, 26)]),
        ("SEK", 2024, [(1, 1), (3, 29), (4, 1), (5, 1), (5, 9), (6, 6), (6, 21), (12, 24),
                       (12, 25), (12, 26), (12, 31)]),
        ("NOK", 2023, [(4, 6), (4, 7), (4, 10), (5, 1), (5, 17), (5, 18), (5, 29), (12, 25),
                       (12, 26)]),
        ("NOK", 2024, [(1, 1), (3, 28), (3, 29), (4, 1), (5, 1), (5, 9), (5, 17), (5, 20),
                       (12, 24), (12, 25), (12, 26), (12, 31)]),
        ("DKK", 2023, [(4, 6), (4, 7), (4, 10), (5, 5), (5, 18), (5, 19), (5, 29), (6, 5),
                       (12, 25), (12, 26)]),
        ("DKK", 2024, [(1, 1), (3, 28), (3, 29), (4, 1), (5, 9), (5, 10), (5, 20), (6, 5),
                       (12, 24), (12, 25), (12, 26), (12, 31)]),
    ],
)  # fmt: skip
def test_the_nordic_payment_systems_close_on_their_bank_holidays(currency, year, closed):
    assert _closed(currency, year) == _dates(year, *closed)


@pytest.mark.parametrize("currency", ["GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK"])
def test_a_date_outside_the_covered_years_is_refused_for_every_system(currency):
    with pytest.raises(InstrumentError, match="covers 2002-01-01 to 2099-12-31"):
        payment_calendar(currency).is_business_day(date(2001, 12, 31))
    assert terms.currency_calendar(currency) is payment_calendar(currency)


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


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("base", "dealt", "spot"),
    [
        # Midsummer Eve (Friday 21 June 2024): RIX shut, so spot is the Monday
        ("SEK", date(2024, 6, 19), date(2024, 6, 24)),
        # Constitution Day (Friday 17 May 2024): NBO shut; Whit Monday the 20th too
        ("NOK", date(2024, 5, 15), date(2024, 5, 21)),
        # Constitution Day (Wednesday 5 June 2024): Kronos2 shut
        ("DKK", date(2024, 6, 3), date(2024, 6, 6)),
    ],
)
def test_nordic_spot_dates_skip_their_payment_systems_holidays(ops, base, dealt, spot):
    from .test_fx_settlement import fx_spot

    pair = fx_spot(ops, ticker=f"{base}USD", base=base, quote="USD", rate="0.095")
    assert terms.settlement_date(pair, dealt) == spot
