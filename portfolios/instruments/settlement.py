"""Settlement cycles per market, and FX value dates.

A :class:`SettlementCycle` is a lag in business days of one calendar, which may change on
a given trade date (US equities went from T+2 to T+1 for trades from 28 May 2024). A trade
date before the first rule of a cycle is an error: the engine does not guess how a market
settled before the dates it knows.

FX spot follows the London FX / ObjectLab Kit rule (http://www.londonfx.co.uk/valdates.html,
https://objectlabkit.sourceforge.net/currency.html):

1. each currency of the pair counts its own business days from the trade date, two for
   most currencies (T+2), one where the pair is USD against a T+1 currency (USD/CAD);
   for a cross, each currency uses its lag against USD, so GBP/CAD is T+2;
2. a USD holiday on an intermediate day (T+1 of a T+2 pair) does not count, except for
   ARS, CLP and MXN, whose intermediate days must be USD business days too;
3. the spot date is the later of the currencies' dates, moved forward until it is a
   business day for both currencies and for USD (a cross never settles on a USD holiday).

Forward tenors run from the spot date; months keep the day of month, a spot date on the
last business day of its month goes to the last business day of the target month (the
end-end rule), and a closed day rolls modified following on the pair's joint calendar.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .calendars import Calendars, Roll, add_months, calendar_for, joint_calendar, month_end
from .errors import InstrumentError

__all__ = [
    "CANADA_SECURITIES",
    "EU_SECURITIES",
    "FX_T1_AGAINST_USD",
    "FX_USD_INTERMEDIATE_DAY",
    "JAPAN_EQUITIES",
    "LISTED_DERIVATIVES_US",
    "MONEY_MARKET_SAME_DAY",
    "UK_EQUITIES",
    "UK_GILTS",
    "US_SECURITIES",
    "US_TREASURIES",
    "SettlementCycle",
    "fx_forward_value_date",
    "fx_spot_date",
    "fx_spot_lag",
]

_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class SettlementCycle:
    """The settlement lag of a market: ``lags`` is ((first trade date, business days), ...)
    in date order; the last rule whose date is on or before the trade date applies.
    ``source`` says where the rule comes from."""

    name: str
    lags: tuple[tuple[dt.date, int], ...]
    source: str

    def __post_init__(self) -> None:
        if not self.lags:
            raise InstrumentError(f"settlement cycle {self.name} has no rule")
        dates = [d for d, _ in self.lags]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise InstrumentError(f"settlement cycle {self.name}: rules must be in date order")
        if any(lag < 0 for _, lag in self.lags):
            raise InstrumentError(f"settlement cycle {self.name}: a lag cannot be negative")

    def lag_on(self, trade_date: dt.date) -> int:
        """Business days from trade to settlement for a trade on `trade_date`."""
        lag = None
        for first, days in self.lags:
            if first <= trade_date:
                lag = days
        if lag is None:
            raise InstrumentError(
                f"the {self.name} settlement cycle is known from "
                f"{self.lags[0][0].isoformat()}; a trade on {trade_date.isoformat()} is "
                "before it: give the settlement date explicitly"
            )
        return lag

    def settlement_date(
        self, trade_date: dt.date, calendars: Calendars, calendar_name: str, *, what: str
    ) -> dt.date:
        """Trade date plus the lag, in business days of calendar `calendar_name`."""
        calendar = calendar_for(calendars, calendar_name, f"settlement date of {what}")
        return calendar.add_business_days(trade_date, self.lag_on(trade_date))


_ALWAYS = dt.date(1900, 1, 1)

# SEC Rule 15c6-1: T+2 from 5 September 2017 (82 FR 15564), T+1 from 28 May 2024 (Release
# 34-96930); it covers equities, ETFs and corporate bonds; municipal bonds moved the same
# day (SIFMA, "Shortening the Settlement Cycle").
US_SECURITIES = SettlementCycle(
    "US securities (equities, ETFs, corporate and municipal bonds)",
    ((dt.date(2017, 9, 5), 2), (dt.date(2024, 5, 28), 1)),
    "SEC Rule 15c6-1; T+1 compliance date 28 May 2024 (Release 34-96930); SIFMA",
)
# Canada moved to T+1 on Monday 27 May 2024 (SIFMA, "Shortening the Settlement Cycle").
CANADA_SECURITIES = SettlementCycle(
    "Canadian securities",
    ((dt.date(2017, 9, 5), 2), (dt.date(2024, 5, 27), 1)),
    "T+1 from 27 May 2024 (SIFMA transition dates)",
)
# Regular-way US Treasuries settle the next business day.
US_TREASURIES = SettlementCycle(
    "US Treasuries", ((_ALWAYS, 1),), "regular-way Treasury settlement, T+1"
)
# Listed options (OCC: premium settles the next trading day) and futures (variation
# settles daily) already were T+1 when securities moved (Options Industry Council,
# "The Impact of T+1 on Options", July 2024).
LISTED_DERIVATIVES_US = SettlementCycle(
    "US listed options and futures",
    ((_ALWAYS, 1),),
    "OCC premium settlement T+1 (Options Industry Council, July 2024)",
)
# CSDR (Regulation (EU) No 909/2014) Art. 5(2): no later than the second business day
# after trading for securities on EU trading venues; T+1 is to apply from 11 October 2027
# (the Commission's CSDR amendment). Change the table if that date moves.
EU_SECURITIES = SettlementCycle(
    "EU securities on trading venues",
    ((dt.date(2015, 1, 1), 2), (dt.date(2027, 10, 11), 1)),
    "CSDR Art. 5(2) T+2; T+1 planned from 11 October 2027",
)
# UK equities T+2 (Clearstream UK market profile); the government accepted the
# Accelerated Settlement Technical Group's date and will legislate T+1 from Monday
# 11 October 2027 (HM Treasury, "Accelerated Settlement (T+1)", 19 February 2025).
UK_EQUITIES = SettlementCycle(
    "UK equities",
    ((dt.date(2015, 1, 1), 2), (dt.date(2027, 10, 11), 1)),
    "UK CSDR Art. 5(2) T+2; T+1 from 11 October 2027 (HM Treasury, February 2025)",
)
# Gilts settle T+1 in CREST (Clearstream, "Settlement process - UK").
UK_GILTS = SettlementCycle("UK gilts", ((_ALWAYS, 1),), "CREST gilt settlement T+1")
# Japan moved stocks from T+3 to T+2 for trades from 16 July 2019 (JPX, JSDA).
JAPAN_EQUITIES = SettlementCycle(
    "Japanese equities", ((dt.date(2019, 7, 16), 2),), "JPX: T+2 from 16 July 2019"
)
# Money market funds settle as the fund's prospectus says; same day is common for
# government funds. Give each fund its own cycle when it differs.
MONEY_MARKET_SAME_DAY = SettlementCycle(
    "money market fund, same day", ((_ALWAYS, 0),), "fund prospectus (T+0 assumed)"
)

# Currencies whose spot against USD is T+1 (fmbasics `is_t1`: CAD, TRY, PHP, RUB, KZT,
# PKR; London FX names USD/CAD as the notable case).
FX_T1_AGAINST_USD = frozenset({"CAD", "TRY", "PHP", "RUB", "KZT", "PKR"})
# Currencies for which a USD holiday on an intermediate day counts (ObjectLab Kit after
# London FX: ARS, CLP, MXN).
FX_USD_INTERMEDIATE_DAY = frozenset({"ARS", "CLP", "MXN"})


def fx_spot_lag(base: str, quote: str, currency: str) -> int:
    """The business days `currency` (one of the pair) counts to spot: against USD, both
    currencies count 1 when the other is a T+1 currency (USD/CAD) and 2 otherwise; in a
    cross, each currency counts its own lag against USD (GBP/CAD: GBP 2, CAD 1)."""
    if "USD" in (base, quote):
        other = quote if base == "USD" else base
        return 1 if other in FX_T1_AGAINST_USD else 2
    return 1 if currency in FX_T1_AGAINST_USD else 2


def fx_spot_date(
    base: str,
    quote: str,
    trade_date: dt.date,
    calendars: Calendars,
    *,
    spot_lag: int | None = None,
) -> dt.date:
    """The spot value date of `base`/`quote` traded on `trade_date`.

    `calendars` holds one calendar per currency code, USD included even for a cross.
    `spot_lag` overrides the lag of both currencies (for a pair whose market convention
    the table does not know)."""
    pair = f"{base}/{quote}"
    if base == quote:
        raise InstrumentError(f"{pair} is not a currency pair")
    usd = calendar_for(calendars, "USD", f"spot date of {pair}: USD holidays count")
    per_currency = {
        ccy: calendar_for(calendars, ccy, f"spot date of {pair}") for ccy in (base, quote)
    }
    candidates = []
    for ccy, cal in per_currency.items():
        lag = spot_lag if spot_lag is not None else fx_spot_lag(base, quote, ccy)
        if lag < 0:
            raise InstrumentError(f"{pair}: a spot lag cannot be negative")
        day = trade_date
        for step in range(1, lag + 1):
            intermediate = step < lag
            day += _ONE_DAY
            while not _good_fx_day(ccy, cal, usd, day, intermediate):
                day += _ONE_DAY
        candidates.append(day)
    spot = max(candidates)
    final = joint_calendar(*per_currency.values(), usd)
    return final.roll(spot, Roll.FOLLOWING)


def _good_fx_day(ccy, cal, usd, day: dt.date, intermediate: bool) -> bool:
    if cal.is_weekend(day):
        return False
    if ccy == "USD" and intermediate:
        # A USD holiday does not stop the day before spot from counting.
        cal.check_covers(day)
        return True
    if not cal.is_business_day(day):
        return False
    return not (intermediate and ccy in FX_USD_INTERMEDIATE_DAY and not usd.is_business_day(day))


_TENOR = re.compile(r"^\s*(\d+)\s*([DWMY])\s*$", re.IGNORECASE)


def fx_forward_value_date(
    base: str,
    quote: str,
    trade_date: dt.date,
    tenor: str,
    calendars: Calendars,
    *,
    spot_lag: int | None = None,
) -> dt.date:
    """The value date of a forward of `tenor` ("1W", "3M", "1Y", "10D") traded on
    `trade_date`: the tenor runs from the spot date (see the module docstring)."""
    match = _TENOR.match(tenor or "")
    if not match:
        raise InstrumentError(f"tenor must look like 1W, 3M or 1Y, not {tenor!r}")
    count, unit = int(match.group(1)), match.group(2).upper()
    if count == 0:
        raise InstrumentError("a forward tenor must be longer than zero")
    spot = fx_spot_date(base, quote, trade_date, calendars, spot_lag=spot_lag)
    joint = joint_calendar(
        calendar_for(calendars, base, "forward value date"),
        calendar_for(calendars, quote, "forward value date"),
        calendar_for(calendars, "USD", "forward value date"),
    )
    if unit in "DW":
        days = count * (7 if unit == "W" else 1)
        return joint.roll(spot + dt.timedelta(days=days), Roll.FOLLOWING)
    months = count * (12 if unit == "Y" else 1)
    last_business_day = joint.roll(month_end(spot.year, spot.month), Roll.PRECEDING)
    if spot == last_business_day:
        target = add_months(spot.replace(day=1), months)
        return joint.roll(month_end(target.year, target.month), Roll.PRECEDING)
    return joint.roll(add_months(spot, months), Roll.MODIFIED_FOLLOWING)
