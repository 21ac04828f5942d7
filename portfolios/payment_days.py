"""The days the payment systems settle a currency: Fedwire for the US dollar, TARGET for
the euro, CHAPS for sterling, BOJ-NET for the yen, SIC for the Swiss franc, Lynx for
the Canadian dollar, RITS for the Australian dollar, RIX for the Swedish krona, Norges
Bank's settlement system for the Norwegian krone and Kronos2 for the Danish krone. FX value dates are the days both currencies' payment systems are
open, not their stock exchanges' (the NYSE shuts on Good Friday and Fedwire does not;
Fedwire shuts on Columbus Day and Veterans Day and the NYSE does not; Frankfurt's
exchange shuts on Christmas Eve and New Year's Eve and TARGET does not; the SIX Swiss
Exchange shuts on 1 May, Christmas Eve and New Year's Eve and SIC does not; the Toronto
exchange shuts on Family Day and Lynx does not, and Lynx shuts on Remembrance Day and the
National Day for Truth and Reconciliation, which the exchange trades).

The rules, from the operators' published calendars:

- Fedwire (the Federal Reserve Banks' holiday schedule, frbservices.org): New Year's
  Day, Martin Luther King Jr. Day (third Monday of January), Washington's Birthday
  (third Monday of February), Memorial Day (last Monday of May), Juneteenth (19 June,
  from 2022: the Reserve Banks stayed open on 18 June 2021, the law being a day old),
  Independence Day, Labor Day (first Monday of September), Columbus Day (second Monday
  of October), Veterans Day (11 November), Thanksgiving (fourth Thursday of November),
  Christmas Day. A holiday on a Sunday is kept the Monday after; on a Saturday the
  Reserve Banks are open the Friday before (nothing is moved).
- TARGET (the ECB's TARGET2 and, from March 2023, T2 closing days, fixed in 2000 for
  2002 on): New Year's Day, Good Friday, Easter Monday, 1 May, Christmas Day and 26
  December. Nothing is moved off a weekend.
- CHAPS (the Bank of England's RTGS and CHAPS are closed on the bank holidays of England
  and Wales: the Banking and Financial Dealings Act 1971, schedule 1, and the royal
  proclamations that move or add a day; gov.uk/bank-holidays): New Year's Day, Good
  Friday, Easter Monday, the early May bank holiday (first Monday of May; Friday 8 May
  in 2020, for VE Day), the spring bank holiday (last Monday of May; Tuesday 4 June 2002
  with Monday 3 June for the Golden Jubilee, Monday 4 June 2012 with Tuesday 5 June for
  the Diamond Jubilee, Thursday 2 June 2022 with Friday 3 June for the Platinum
  Jubilee), the summer bank holiday (last Monday of August), Christmas Day and Boxing
  Day; and the one-off days of 29 April 2011 (a royal wedding), 19 September 2022 (the
  Queen's state funeral) and 8 May 2023 (the coronation). New Year's Day on a weekend is
  kept the Monday after; Christmas or Boxing Day on a weekend the next weekday that is
  not one of them (Christmas on a Saturday: Monday 27 and Tuesday 28 December).
- BOJ-NET (the Bank of Japan is closed, and BOJ-NET with it, on the national holidays of
  the Act on National Holidays, Act No. 178 of 1948 as amended, and from 31 December to 3
  January): New Year's Day, Coming of Age Day (second Monday of January), National
  Foundation Day (11 February), the Emperor's Birthday (23 December to 2018, none in
  2019, 23 February from 2020), the vernal and autumnal equinox days, Showa Day (29
  April; Greenery Day until 2006), Constitution Memorial Day (3 May), Greenery Day (4
  May, from 2007), Children's Day (5 May), Marine Day (20 July to 2002, third Monday of
  July from 2003), Mountain Day (11 August, from 2016), Respect for the Aged Day (15
  September to 2002, third Monday of September from 2003), Sports Day (second Monday of
  October), Culture Day (3 November), Labour Thanksgiving Day (23 November); in 2020
  and 2021 the Olympic moves of Marine Day, Sports Day and Mountain Day (Act No. 68 of
  2019, Act No. 68 of 2020), in 2019 the enthronement days (1 May, 22 October: Act No.
  99 of 2018). A holiday on a Sunday gives the next day that is no holiday (the Monday
  after, to 2006); a day between two holidays is a holiday too (4 May to 2006, 30 April
  and 2 May 2019, 22 September 2026). The equinox days are the National Astronomical
  Observatory's, announced each February for the next year: here by the formula that
  gives them for 1980-2099 (Japan Cabinet Office; Nihon Kokugo Daijiten's almanac).
- SIC (SIX Interbank Clearing on behalf of the Swiss National Bank; the SNB's "Bank
  holidays in Switzerland"): New Year's Day, Berchtold's Day (2 January), Good Friday,
  Easter Monday, Ascension Day, Whit Monday, the Swiss National Day (1 August),
  Christmas Day and St Stephen's Day (26 December). Nothing is moved off a weekend.
- Lynx (Payments Canada's holiday schedule: its systems are closed on the federal
  holidays of a federally regulated workplace): New Year's Day, Good Friday, Victoria
  Day (the Monday before 25 May), Canada Day, the Civic Holiday (first Monday of
  August), Labour Day (first Monday of September), the National Day for Truth and
  Reconciliation (30 September, from 2021: Bill C-5), Thanksgiving (second Monday of
  October), Remembrance Day (11 November), Christmas Day and Boxing Day. A holiday on
  a weekend is kept the next weekday that is not one (as CHAPS's Christmas).
- RITS (the Reserve Bank of Australia's RITS is closed on the national public holidays,
  as New South Wales keeps them: the RBA's "RITS holidays"): New Year's Day, Australia
  Day (26 January), Good Friday, Easter Monday, Anzac Day (25 April), the King's (to
  2022 the Queen's) Birthday (second Monday of June), Christmas Day and Boxing Day; and
  22 September 2022, the National Day of Mourning for Queen Elizabeth II (the ASX shut
  too). New Year's Day and Australia Day on a weekend are kept the Monday after,
  Christmas and Boxing Day as CHAPS's; Anzac Day on a weekend is not moved (as New South
  Wales), except 26 April 2010 (off a Sunday) and 26 April 2011 (off Easter Monday),
  which New South Wales and the ASX kept. The NSW Bank Holiday (first Monday of August) and Labour Day are state days:
  RITS is open.
- RIX (Sveriges Riksbank: RIX is closed on Swedish public holidays, the Public Holidays
  Act (1989:253), and on Midsummer Eve, Christmas Eve and New Year's Eve, which the
  banks keep as holidays): New Year's Day, Epiphany (6 January), Good Friday, Easter
  Monday, 1 May, Ascension Day, the National Day (6 June, from 2005; Whit Monday to
  2004), Midsummer Eve (the Friday from 19 to 25 June), 24, 25, 26 and 31 December.
  Nothing is moved off a weekend.
- Norges Bank's settlement system (NBO: closed on the Norwegian public holidays of the
  Public Holidays Act (lov om helligdager og helligdagsfred, 1995) and the Labour
  Day and Constitution Day of 1947's act, and on Christmas Eve and New Year's Eve,
  which Norges Bank keeps as bank holidays): New Year's Day, Maundy Thursday, Good
  Friday, Easter Monday, 1 May, 17 May, Ascension Day, Whit Monday, 24, 25, 26 and 31
  December. Nothing is moved off a weekend.
- Kronos2 (Danmarks Nationalbank's closing days, the Danish banks' "banklukkedage"):
  New Year's Day, Maundy Thursday, Good Friday, Easter Monday, General Prayer Day (the
  fourth Friday after Easter, to 2023: abolished from 2024 by Act No. 212 of 2023), Ascension
  Day and the Friday after it (from 2009, as the banks and Nasdaq Copenhagen), Whit
  Monday, Constitution Day (5 June), 24, 25, 26 and 31 December. Nothing is moved off
  a weekend.

Written from the operators' rules as published up to 2024 without access to their pages
here: the tests' whole years (RITS 2022-2024, RIX, NBO and Kronos2 2023-2024) should be
confirmed against the operators' calendars, and the next years' too when they publish
them (a one-off day, as 22 September 2022 was, is known only then).

Rules give the days for as long as the law stands; the calendars cover 2002 to 2099
and a new holiday (as Juneteenth was in 2021) is a change here, as a date outside them
is refused rather than guessed. Every other currency settles on its home exchange's
days (``portfolios.terms.CURRENCY_EXCHANGE``): the Hong Kong dollar (CHATS keeps Hong
Kong's general holidays, as HKEX does; their lunar days are a table per year, not a
rule), the Singapore dollar (MEPS+ keeps Singapore's gazetted public holidays, as SGX
does) and the New Zealand dollar (ESAS's days beside the exchange's, the Auckland and
Wellington anniversary days, are to be confirmed with the Reserve Bank of New
Zealand before they are ruled here)."""

from __future__ import annotations

import datetime as dt
import functools

from portfolios.instruments import HolidayCalendar

__all__ = ["FIRST_DAY", "LAST_DAY", "PAYMENT_SYSTEMS", "easter_sunday", "payment_calendar"]

FIRST_DAY = dt.date(2002, 1, 1)
LAST_DAY = dt.date(2099, 12, 31)
_DAY = dt.timedelta(days=1)


def easter_sunday(year: int) -> dt.date:
    """Western Easter Sunday of a Gregorian year, by the anonymous Gregorian computus
    (Nature, 1876; Meeus, *Astronomical Algorithms*, ch. 8): the paschal full moon from
    the 19-year Metonic cycle with the century's solar and lunar corrections, then the
    Sunday after it."""
    golden = year % 19
    century, within = divmod(year, 100)
    leap_c, rest_c = divmod(century, 4)
    moon_fix = (century - (century + 8) // 25 + 1) // 3
    epact = (19 * golden + century - leap_c - moon_fix + 15) % 30
    leap_y, rest_y = divmod(within, 4)
    weekday = (32 + 2 * rest_c + 2 * leap_y - epact - rest_y) % 7
    skip = (golden + 11 * epact + 22 * weekday) // 451
    month, day = divmod(epact + weekday - 7 * skip + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th `weekday` (Monday 0) of a month; n = -1 for the last."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + month // 12, month % 12 + 1, 1) - _DAY
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _fedwire_year(year: int) -> set[dt.date]:
    fixed = [dt.date(year, 1, 1), dt.date(year, 7, 4), dt.date(year, 11, 11)]
    fixed.append(dt.date(year, 12, 25))
    if year >= 2022:
        fixed.append(dt.date(year, 6, 19))
    days = {d + _DAY if d.weekday() == 6 else d for d in fixed if d.weekday() != 5}
    days |= {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving Day
    }
    return days


def _target_year(year: int) -> set[dt.date]:
    easter = easter_sunday(year)
    return {
        dt.date(year, 1, 1),
        easter - 2 * _DAY,  # Good Friday
        easter + _DAY,  # Easter Monday
        dt.date(year, 5, 1),
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),
    }


def _next_weekdays(days: list[dt.date]) -> set[dt.date]:
    """Fixed-date holidays moved off the weekend, each to the next weekday that is not
    one of them (Christmas Day on a Saturday: Monday; Boxing Day on the Sunday after:
    Tuesday), in the order given."""
    kept: set[dt.date] = set()
    for day in days:
        while day.weekday() >= 5 or day in kept:
            day += _DAY
        kept.add(day)
    return kept


#: England and Wales: the spring bank holiday moved, and days added, by proclamation
_UK_SPRING_MOVED = {
    2002: [dt.date(2002, 6, 3), dt.date(2002, 6, 4)],
    2012: [dt.date(2012, 6, 4), dt.date(2012, 6, 5)],
    2022: [dt.date(2022, 6, 2), dt.date(2022, 6, 3)],
}
_UK_EARLY_MAY_MOVED = {2020: dt.date(2020, 5, 8)}
_UK_ONE_OFF = {
    2011: [dt.date(2011, 4, 29)],
    2022: [dt.date(2022, 9, 19)],
    2023: [dt.date(2023, 5, 8)],
}


def _chaps_year(year: int) -> set[dt.date]:
    easter = easter_sunday(year)
    days = _next_weekdays([dt.date(year, 1, 1)])
    days |= _next_weekdays([dt.date(year, 12, 25), dt.date(year, 12, 26)])
    days |= {easter - 2 * _DAY, easter + _DAY}
    days.add(_UK_EARLY_MAY_MOVED.get(year) or _nth_weekday(year, 5, 0, 1))
    days |= set(_UK_SPRING_MOVED.get(year) or [_nth_weekday(year, 5, 0, -1)])
    days.add(_nth_weekday(year, 8, 0, -1))
    days |= set(_UK_ONE_OFF.get(year, ()))
    return days


def _equinox_days(year: int) -> tuple[dt.date, dt.date]:
    """The vernal and autumnal equinox days in Japan for 1980-2099, by the formula of
    the mean tropical year from the 1980 equinoxes (the Observatory's announced days
    for every year it has announced)."""
    n = year - 1980
    vernal = int(20.8431 + 0.242194 * n - n // 4)
    autumnal = int(23.2488 + 0.242194 * n - n // 4)
    return dt.date(year, 3, vernal), dt.date(year, 9, autumnal)


#: Japan: the Olympic years' moves (Act No. 68 of 2019 for 2020, No. 68 of 2020 for 2021)
_JP_OLYMPIC = {
    2020: (dt.date(2020, 7, 23), dt.date(2020, 7, 24), dt.date(2020, 8, 10)),
    2021: (dt.date(2021, 7, 22), dt.date(2021, 7, 23), dt.date(2021, 8, 8)),
}


def _japan_national_holidays(year: int) -> set[dt.date]:
    vernal, autumnal = _equinox_days(year)
    days = {
        dt.date(year, 1, 1),
        _nth_weekday(year, 1, 0, 2),  # Coming of Age Day
        dt.date(year, 2, 11),
        vernal,
        dt.date(year, 4, 29),  # Showa Day (Greenery Day to 2006)
        dt.date(year, 5, 3),
        dt.date(year, 5, 5),
        autumnal,
        dt.date(year, 11, 3),
        dt.date(year, 11, 23),
    }
    if year <= 2018:
        days.add(dt.date(year, 12, 23))  # the Emperor's Birthday (Akihito)
    elif year >= 2020:
        days.add(dt.date(year, 2, 23))  # the Emperor's Birthday (Naruhito)
    if year == 2019:
        days |= {dt.date(2019, 5, 1), dt.date(2019, 10, 22)}  # the enthronement
    if year >= 2007:
        days.add(dt.date(year, 5, 4))  # Greenery Day
    if year in _JP_OLYMPIC:
        days |= set(_JP_OLYMPIC[year])  # Marine Day, Sports Day, Mountain Day
    else:
        days.add(_nth_weekday(year, 7, 0, 3) if year >= 2003 else dt.date(year, 7, 20))
        days.add(_nth_weekday(year, 10, 0, 2))  # Sports Day
        if year >= 2016:
            days.add(dt.date(year, 8, 11))  # Mountain Day
    days.add(_nth_weekday(year, 9, 0, 3) if year >= 2003 else dt.date(year, 9, 15))
    return days


def _boj_year(year: int) -> set[dt.date]:
    national = _japan_national_holidays(year)
    days = set(national)
    for holiday in sorted(national):  # a Sunday's holiday is kept on the next free day
        if holiday.weekday() == 6:
            day = holiday + _DAY
            while year >= 2007 and day in national:
                day += _DAY
            days.add(day)
    for holiday in national:  # a day between two national holidays
        between = holiday + _DAY
        if between not in national and between + _DAY in national:
            days.add(between)
    # the banks' year-end closing (Banking Act Enforcement Order, art. 5)
    days |= {dt.date(year, 1, 2), dt.date(year, 1, 3), dt.date(year, 12, 31)}
    return days


def _sic_year(year: int) -> set[dt.date]:
    easter = easter_sunday(year)
    return {
        dt.date(year, 1, 1),
        dt.date(year, 1, 2),  # Berchtold's Day
        easter - 2 * _DAY,  # Good Friday
        easter + _DAY,  # Easter Monday
        easter + 39 * _DAY,  # Ascension Day
        easter + 50 * _DAY,  # Whit Monday
        dt.date(year, 8, 1),  # the Swiss National Day
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),  # St Stephen's Day
    }


def _lynx_year(year: int) -> set[dt.date]:
    easter = easter_sunday(year)
    fixed = [dt.date(year, 1, 1), dt.date(year, 7, 1), dt.date(year, 11, 11)]
    if year >= 2021:
        fixed.append(dt.date(year, 9, 30))  # National Day for Truth and Reconciliation
    days = set().union(*(_next_weekdays([day]) for day in fixed))
    days |= _next_weekdays([dt.date(year, 12, 25), dt.date(year, 12, 26)])
    days |= {
        easter - 2 * _DAY,  # Good Friday
        dt.date(year, 5, 24) - dt.timedelta(days=dt.date(year, 5, 24).weekday()),  # Victoria
        _nth_weekday(year, 8, 0, 1),  # the Civic Holiday
        _nth_weekday(year, 9, 0, 1),  # Labour Day
        _nth_weekday(year, 10, 0, 2),  # Thanksgiving
    }
    return days


#: Australia: the days kept beside the rules (Anzac Day moved in 2010, off a Sunday, and
#: in 2011, off Easter Monday; the National Day of Mourning of 2022)
_RITS_ONE_OFF = {
    2010: {dt.date(2010, 4, 26)},
    2011: {dt.date(2011, 4, 26)},
    2022: {dt.date(2022, 9, 22)},
}


def _rits_year(year: int) -> set[dt.date]:
    easter = easter_sunday(year)
    days = _next_weekdays([dt.date(year, 1, 1)]) | _next_weekdays([dt.date(year, 1, 26)])
    days |= _next_weekdays([dt.date(year, 12, 25), dt.date(year, 12, 26)])
    days |= {
        easter - 2 * _DAY,  # Good Friday
        easter + _DAY,  # Easter Monday
        dt.date(year, 4, 25),  # Anzac Day (not moved off a weekend)
        _nth_weekday(year, 6, 0, 2),  # the King's Birthday
    }
    days |= _RITS_ONE_OFF.get(year, set())
    return days


def _rix_year(year: int) -> set[dt.date]:
    easter = easter_sunday(year)
    june_19 = dt.date(year, 6, 19)
    return {
        dt.date(year, 1, 1),
        dt.date(year, 1, 6),  # Epiphany
        easter - 2 * _DAY,  # Good Friday
        easter + _DAY,  # Easter Monday
        dt.date(year, 5, 1),
        easter + 39 * _DAY,  # Ascension Day
        # the National Day from 2005, which took Whit Monday's place
        dt.date(year, 6, 6) if year >= 2005 else easter + 50 * _DAY,
        june_19 + dt.timedelta(days=(4 - june_19.weekday()) % 7),  # Midsummer Eve
        *_year_end(year),
    }


def _year_end(year: int) -> tuple[dt.date, ...]:
    """Christmas Eve, Christmas Day, Boxing Day and New Year's Eve."""
    return tuple(dt.date(year, 12, day) for day in (24, 25, 26, 31))


def _nbo_year(year: int) -> set[dt.date]:
    easter = easter_sunday(year)
    return {
        dt.date(year, 1, 1),
        easter - 3 * _DAY,  # Maundy Thursday
        easter - 2 * _DAY,  # Good Friday
        easter + _DAY,  # Easter Monday
        dt.date(year, 5, 1),
        dt.date(year, 5, 17),  # Constitution Day
        easter + 39 * _DAY,  # Ascension Day
        easter + 50 * _DAY,  # Whit Monday
        *_year_end(year),
    }


def _kronos_year(year: int) -> set[dt.date]:
    easter = easter_sunday(year)
    days = {
        dt.date(year, 1, 1),
        easter - 3 * _DAY,  # Maundy Thursday
        easter - 2 * _DAY,  # Good Friday
        easter + _DAY,  # Easter Monday
        easter + 39 * _DAY,  # Ascension Day
        easter + 50 * _DAY,  # Whit Monday
        dt.date(year, 6, 5),  # Constitution Day
        *_year_end(year),
    }
    if year >= 2009:
        days.add(easter + 40 * _DAY)  # the Friday after Ascension Day
    if year <= 2023:
        days.add(easter + 26 * _DAY)  # General Prayer Day
    return days


#: The currencies settled by a payment system whose closing days are ruled here.
PAYMENT_SYSTEMS = {
    "USD": ("Fedwire", _fedwire_year),
    "EUR": ("TARGET", _target_year),
    "GBP": ("CHAPS", _chaps_year),
    "JPY": ("BOJ-NET", _boj_year),
    "CHF": ("SIC", _sic_year),
    "CAD": ("Lynx", _lynx_year),
    "AUD": ("RITS", _rits_year),
    "SEK": ("RIX", _rix_year),
    "NOK": ("NBO", _nbo_year),
    "DKK": ("Kronos2", _kronos_year),
}


@functools.lru_cache(maxsize=64)  # room for every system (each 98 years of days)
def payment_calendar(currency: str) -> HolidayCalendar | None:
    """The settlement days of `currency` by its payment system's rules, as a calendar
    named by the currency's code, or None when no system's rules are kept here."""
    system = PAYMENT_SYSTEMS.get(currency)
    if system is None:
        return None
    _, closed = system
    holidays: set[dt.date] = set()
    for year in range(FIRST_DAY.year, LAST_DAY.year + 1):
        holidays |= closed(year)
    return HolidayCalendar(currency, frozenset(holidays), first_day=FIRST_DAY, last_day=LAST_DAY)
