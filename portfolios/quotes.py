"""Reads of market data that pages, the API and other apps share: the price of a
security with whether it may be used (``price_for``), FX with crosses
(``fx_rate``), average daily volume from the bars, and what changed since a moment
(the "quotes" push topic's replay).

A price comes from the newest of: the quote store (the live consolidated quote,
portfolios.quotecache), the latest bar, the latest daily price dated no later than
today (a price dated in the future is never the latest). It is **fresh** when younger
than OMS_QUOTE_MAX_AGE for its asset class, **stale** otherwise, or **missing**: a
caller that sizes, checks or values gets all three and decides; none gets a stale
price without being told."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .marketdata import Freshness, cross_legs, freshness, fx_pair
from .models import FxRate, Price, PriceBar, Security
from .quotecache import consolidated, fx_pairs
from .terms import accrued_per_unit, price_multiplier, unit_value

PLACES = Decimal("0.00000001")


def max_age(asset_class: str) -> timedelta:
    ages = settings.OMS_QUOTE_MAX_AGE
    return timedelta(seconds=ages.get(asset_class, ages.get("default", 86400)))


@dataclass(frozen=True)
class PriceReading:
    """A security's price and whether it may be used."""

    security_id: int
    symbol: str
    price: Decimal | None
    at: datetime | None
    freshness: Freshness
    source: str  # "live" (the quote store), "bar", "close" (the daily price) or ""
    bid: Decimal | None = None
    ask: Decimal | None = None

    @property
    def usable(self) -> bool:
        return self.freshness == Freshness.FRESH

    @property
    def stale(self) -> bool:
        return self.freshness == Freshness.STALE

    def as_dict(self) -> dict:
        return {
            "security": self.symbol,
            "price": self.price,
            "bid": self.bid,
            "ask": self.ask,
            "at": self.at,
            "freshness": str(self.freshness),
            "source": self.source,
        }


def _dec(x) -> Decimal | None:
    if x is None:
        return None
    return (Decimal(repr(x)) if isinstance(x, float) else Decimal(x)).quantize(PLACES)


def _day_start(day: date, now: datetime) -> datetime:
    """When a daily price (a row with a date and no time) is taken to be from: the
    start of its day, so that a price of today loaded this morning grows stale like
    any other instead of looking fresh all day."""
    return min(datetime.combine(day, time.min, tzinfo=UTC), now)


def prices_for(
    securities: Iterable[Security], *, now: datetime | None = None
) -> dict[int, PriceReading]:
    """security id -> PriceReading, for securities with ticker and asset class loaded;
    one read of the quote store and at most one query."""
    now = now or timezone.now()
    securities = list(securities)
    live = consolidated(s.ticker for s in securities)
    candidates: dict[int, list[tuple[datetime, str, object, object, object]]] = defaultdict(list)
    for s in securities:
        c = live.get(s.ticker)
        if c is not None and c.price is not None:
            candidates[s.pk].append((c.at, "live", c.price, c.bid, c.ask))
    # The database, for those the store does not have fresh (another process's store,
    # the embedded default; or a close newer than the store's last quote).
    fallback = [
        s.pk
        for s in securities
        if not candidates[s.pk] or now - candidates[s.pk][0][0] > max_age(s.asset_class)
    ]
    if fallback:
        today = now.astimezone(UTC).date()
        bar = PriceBar.objects.filter(symbol=OuterRef("ticker")).order_by("-last_at")
        close = Price.objects.filter(security=OuterRef("pk"), as_of__lte=today).order_by("-as_of")
        for pk, bar_close, bar_at, day_close, day in (
            Security.objects.filter(pk__in=fallback)
            .annotate(
                bar_close=Subquery(bar.values("close")[:1]),
                bar_at=Subquery(bar.values("last_at")[:1]),
                day_close=Subquery(close.values("price")[:1]),
                day=Subquery(close.values("as_of")[:1]),
            )
            .values_list("pk", "bar_close", "bar_at", "day_close", "day")
        ):
            if bar_close is not None and bar_at <= now:
                candidates[pk].append((bar_at, "bar", bar_close, None, None))
            # the day's price the bars wrote is no newer than its last bar
            if day_close is not None and (bar_at is None or bar_at.astimezone(UTC).date() < day):
                candidates[pk].append((_day_start(day, now), "close", day_close, None, None))
    readings = {}
    for s in securities:
        found = candidates.get(s.pk)
        if not found:
            readings[s.pk] = PriceReading(s.pk, s.ticker, None, None, Freshness.MISSING, "")
            continue
        at, source, price, bid, ask = max(found, key=lambda c: (c[0], c[1] == "live"))
        readings[s.pk] = PriceReading(
            s.pk,
            s.ticker,
            _dec(price),
            at,
            freshness(at, now=now, max_age=max_age(s.asset_class)),
            source,
            _dec(bid),
            _dec(ask),
        )
    return readings


def price_for(security: Security, *, now: datetime | None = None) -> PriceReading:
    """The price of one security, fresh, stale or missing (see the module)."""
    return prices_for([security], now=now)[security.pk]


def previous_closes(
    security_ids: Iterable[int], *, now: datetime | None = None
) -> dict[int, Decimal]:
    """Each security's latest daily price before today: what day P&L is measured from."""
    today = (now or timezone.now()).astimezone(UTC).date()
    prior = Price.objects.filter(security=OuterRef("pk"), as_of__lt=today).order_by("-as_of")
    return {
        pk: price
        for pk, price in Security.objects.filter(pk__in=list(security_ids))
        .annotate(prior=Subquery(prior.values("price")[:1]))
        .values_list("pk", "prior")
        if price is not None
    }


# --- FX ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FxReading:
    currency: str
    quote: str
    rate: float | None
    at: datetime | None  # the oldest leg's moment
    freshness: Freshness
    legs: tuple[str, ...]  # the quoted pairs it was made of


class FxBoard:
    """Every quoted pair's newest rate (daily rates, bars and the live store), and any
    pair between two currencies from them, crosses derived."""

    def __init__(self, rates: dict[tuple[str, str], tuple[float, datetime]], now: datetime):
        self.rates = rates
        self.now = now

    @classmethod
    def load(cls, *, now: datetime | None = None) -> FxBoard:
        now = now or timezone.now()
        today = now.astimezone(UTC).date()
        rates: dict[tuple[str, str], tuple[float, datetime]] = {}

        def offer(pair, rate, at):
            if rate and at <= now and (pair not in rates or at > rates[pair][1]):
                rates[pair] = (float(rate), at)

        for currency, quote, day, rate in (
            FxRate.objects.filter(as_of__lte=today)
            .order_by("currency", "quote", "-as_of")
            .values_list("currency", "quote", "as_of", "rate")
        ):
            if (currency, quote) not in rates:
                offer((currency, quote), rate, _day_start(day, now))
        for symbol, close, at in (
            PriceBar.objects.filter(symbol__contains="/", security__isnull=True)
            .order_by("symbol", "-last_at")
            .values_list("symbol", "close", "last_at")[:2000]
        ):
            offer(fx_pair(symbol), close, at)
        pairs = {f"{a}/{b}" for a, b in rates} | fx_pairs()
        for symbol, c in consolidated(pairs).items():
            offer(fx_pair(symbol), c.price, c.at)
        return cls(rates, now)

    def rate(self, currency: str, quote: str) -> FxReading:
        legs = cross_legs(self.rates, currency, quote)
        if legs is None:
            return FxReading(currency, quote, None, None, Freshness.MISSING, ())
        rate, at = 1.0, self.now
        for pair, inverted in legs:
            leg_rate, leg_at = self.rates[pair]
            rate *= 1.0 / leg_rate if inverted else leg_rate
            at = min(at, leg_at)
        return FxReading(
            currency,
            quote,
            rate,
            at,
            freshness(at, now=self.now, max_age=max_age("fx")),
            tuple(f"{a}/{b}" for (a, b), _ in legs),
        )


def fx_rate(currency: str, quote: str, *, now: datetime | None = None) -> FxReading:
    """Units of ``quote`` one ``currency`` is worth, fresh, stale or missing."""
    return FxBoard.load(now=now).rate(currency, quote)


# --- History ---------------------------------------------------------------------------


def average_daily_volume(
    security_ids: Iterable[int], *, days: int = 20, now: datetime | None = None
) -> dict[int, float]:
    """security id -> mean volume a day over the days with bars among the last ``days``
    (from the bars; a security with no bars in the window is left out)."""
    now = now or timezone.now()
    totals: dict[int, list[float]] = defaultdict(list)
    for security_id, _day, volume in (
        PriceBar.objects.filter(
            security_id__in=list(security_ids), start__gte=now - timedelta(days=days)
        )
        .annotate(day=TruncDate("start"))
        .values("security_id", "day")
        .annotate(volume=Sum("volume"))
        .values_list("security_id", "day", "volume")
    ):
        totals[security_id].append(float(volume))
    return {pk: sum(v) / len(v) for pk, v in totals.items()}


def quote_changes(since: datetime) -> list[dict]:
    """The "quotes" topic's replay: the newest bar close of each instrument whose bars
    moved since ``since`` (what a polling page, or a page back from a disconnect, gets)."""
    seen: dict[str, list] = {}
    for symbol, close, at in (
        PriceBar.objects.filter(last_at__gte=since)
        .order_by("symbol", "-last_at")
        .values_list("symbol", "close", "last_at")[:20000]
    ):
        if symbol not in seen:
            seen[symbol] = [float(close), None, None, round(at.timestamp(), 3)]
    return [{"q": seen}] if seen else []


# --- Live positions ---------------------------------------------------------------------


@dataclass
class ValuedPosition:
    """A position at its current price, with its P&L, in the security's currency and
    the account's base currency. Figures are None when the price or FX rate is missing."""

    security: Security
    quantity: Decimal
    reading: PriceReading
    fx: float | None  # units of base currency per unit of the security's currency
    cost: Decimal  # open tax lots, in the security's currency
    previous_close: Decimal | None
    value: Decimal | None = None
    value_base: Decimal | None = None
    unrealised: Decimal | None = None  # in base
    day_pnl: Decimal | None = None  # in base
    multiplier: Decimal = Decimal(1)  # what a point of price is worth per unit
    accrued_per_unit: Decimal = Decimal(0)  # a bond's, per unit of face, today

    @property
    def cost_value(self) -> Decimal:
        """The open lots' cost in money (a bond's lots hold their price in % of par)."""
        return self.cost * self.multiplier

    @property
    def max_age_seconds(self) -> int:
        return int(max_age(self.security.asset_class).total_seconds())


def _money(x) -> Decimal | None:
    return None if x is None else Decimal(x).quantize(Decimal("0.01"))


def positions_valued(portfolio, *, now: datetime | None = None) -> dict:
    """An account's positions at the latest prices: market value (security currency
    and base), unrealised P&L against the open tax lots' cost, day P&L against the
    previous close, and the totals of those that can be valued. A stale price values
    its position and is flagged (``stale``); a missing one leaves it out of the totals
    (``unvalued``). A fixed number of queries."""
    from .models import Position, TaxLot

    now = now or timezone.now()
    positions = list(
        Position.objects.filter(portfolio=portfolio).exclude(quantity=0).select_related("security")
    )
    securities = [p.security for p in positions]
    readings = prices_for(securities, now=now)
    closes = previous_closes([s.pk for s in securities], now=now)
    costs: dict[int, Decimal] = defaultdict(Decimal)
    for security_id, quantity, unit_cost in TaxLot.objects.filter(
        portfolio=portfolio, quantity__gt=0
    ).values_list("security_id", "quantity", "unit_cost"):
        costs[security_id] += quantity * unit_cost
    board = FxBoard.load(now=now)
    base = portfolio.base_currency
    rows = []
    totals = {"value_base": Decimal(0), "unrealised": Decimal(0), "day_pnl": Decimal(0)}
    stale, unvalued = [], []
    today = timezone.localdate(now)
    for p in sorted(positions, key=lambda p: p.security.ticker):
        s = p.security
        fx = board.rate(s.currency, base)
        row = ValuedPosition(s, p.quantity, readings[s.pk], fx.rate, costs[s.pk], closes.get(s.pk))
        row.multiplier = price_multiplier(s)
        row.accrued_per_unit = accrued_per_unit(s, today)
        price = row.reading.price
        if price is not None and fx.rate is not None:
            rate = Decimal(repr(fx.rate))
            # One unit's worth (portfolios.terms): a bond's face at % of par plus its
            # accrued interest; the P&L is on the clean value (accrued is income).
            row.value = _money(p.quantity * unit_value(s, price, today))
            row.value_base = _money(row.value * rate)
            row.unrealised = _money((p.quantity * price - row.cost) * row.multiplier * rate)
            if row.previous_close is not None:
                row.day_pnl = _money(
                    p.quantity * row.multiplier * (price - row.previous_close) * rate
                )
            totals["value_base"] += row.value_base
            totals["unrealised"] += row.unrealised
            totals["day_pnl"] += row.day_pnl or 0
            if row.reading.stale or fx.freshness == Freshness.STALE:
                stale.append(s.ticker)
        else:
            unvalued.append(s.ticker)
        rows.append(row)
    return {"rows": rows, "totals": totals, "stale": stale, "unvalued": unvalued, "base": base}
