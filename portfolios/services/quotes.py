"""Every write of market data: quotes in (from any adapter), the checks they pass,
the quarantine, the bars, the file import. Reads are portfolios.quotes.

``quotes_apply`` takes a batch of quotes from any source and, in order:

1. checks each (portfolios.marketdata.checks: negative, zero where the security
   cannot be zero, bid above ask, dated in the future, a jump beyond
   OMS_QUOTE_JUMP_LIMIT from the last accepted price); a quote that fails is
   **quarantined** (a QuarantinedQuote row and an audit event), never applied;
2. keeps, per instrument and venue, the newest quote and the consolidated best bid
   and offer in the quote store (portfolios.quotecache: Redis, or Django's cache),
   in one round trip to read and one to write per batch;
3. adds each accepted quote to this process's bars (portfolios.marketdata.bars), which
   ``bars_flush`` writes to PriceBar (merged with what another process wrote), and
   the day's Price and FxRate rows (the latest price of the day, which the drift,
   rebalancer and compliance read);
4. announces the new consolidated prices on the push topic "quotes".

Feed ticks are not audited one by one (thousands a second): each flush of bars and
prices is (one ``prices.flushed`` event), and so are a file import, an API post, each
quarantined quote and each release or discard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from math import isfinite

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audit.services import audit_record, audited_transaction
from oms import push
from oms.roles import Action, require
from oms.state import move
from portfolios.marketdata import (
    NOT_FINITE,
    SIZE_NOT_FINITE,
    Bar,
    BarAggregator,
    Consolidated,
    CsvFileError,
    CsvPrices,
    Limits,
    Quote,
    RowError,
    consolidate_rows,
    fx_pair,
    is_fx,
    quote_problem,
)
from portfolios.models import FxRate, Price, PriceBar, QuarantinedQuote, Security
from portfolios.quotecache import (
    BEST,
    FX_PAIRS,
    encode_best,
    encode_quote,
    store,
)
from portfolios.services.drift import drift_mark_stale

TOPIC = "quotes"
#: Asset classes whose price may be zero (none of today's; options when they come).
ZERO_ALLOWED = frozenset({"option"})
#: A push message names at most this many instruments (a big batch goes in several).
PUSH_CHUNK = 1000


def limits() -> Limits:
    return Limits(
        jump_limit=settings.OMS_QUOTE_JUMP_LIMIT,
        future_skew=timedelta(seconds=settings.OMS_QUOTE_FUTURE_SKEW_SECONDS),
    )


# --- Reference: which symbols are securities -------------------------------------------

_ref_lock = threading.Lock()
_ref: dict[str, tuple[int, str]] = {}
_ref_loaded = 0.0
REFERENCE_TTL = 60.0


def _load_reference() -> None:
    global _ref, _ref_loaded
    _ref = {
        t: (pk, ac) for t, pk, ac in Security.objects.values_list("ticker", "pk", "asset_class")
    }
    _ref_loaded = time.monotonic()


def reference(symbols: Iterable[str]) -> dict[str, tuple[int, str]]:
    """ticker -> (security id, asset class), read again when stale or missing one."""
    with _ref_lock:
        wanted = [s for s in symbols if not is_fx(s)]
        if time.monotonic() - _ref_loaded > REFERENCE_TTL or any(s not in _ref for s in wanted):
            _load_reference()
        return _ref


def reference_forget() -> None:
    global _ref_loaded
    with _ref_lock:
        _ref_loaded = 0.0


def unknown_symbols(quotes: Iterable[Quote]) -> set[str]:
    symbols = {q.symbol for q in quotes}
    known = reference(symbols)
    return {s for s in symbols if not is_fx(s) and s not in known}


# --- Applying quotes ---------------------------------------------------------------------

_bars_lock = threading.Lock()
_bars: BarAggregator | None = None


def _aggregator() -> BarAggregator:
    global _bars
    if _bars is None or _bars.seconds != settings.OMS_QUOTE_BAR_SECONDS:
        _bars = BarAggregator(settings.OMS_QUOTE_BAR_SECONDS)
    return _bars


@dataclass
class Applied:
    accepted: int = 0
    ignored: int = 0  # older than what the venue had already said (kept in the bars)
    quarantined: list[QuarantinedQuote] = field(default_factory=list)
    consolidated: dict[str, Consolidated] = field(default_factory=dict)


class QuotesRefused(ValidationError):
    """An all-or-nothing load with quotes that fail the checks: nothing was applied."""

    def __init__(self, problems: list[tuple[int, Quote, str]]):
        self.problems = problems
        super().__init__(
            [f"Row {n} ({q.symbol}): {reason}" for n, q, reason in problems], code="refused"
        )


def quotes_apply(
    quotes: Sequence[Quote],
    *,
    source: str,
    now: datetime | None = None,
    refuse_problems: bool = False,
    row_numbers: Sequence[int] | None = None,
    force: bool = False,
    publish: bool = True,
) -> Applied:
    """Check, store and announce a batch of quotes (see the module's docstring).

    Symbols that are neither a security nor an FX pair must have been refused by the
    caller (``unknown_symbols``); any left are skipped. ``refuse_problems``: raise
    QuotesRefused naming each failing quote (by ``row_numbers``) and apply nothing,
    instead of quarantining them. ``force``: apply without the checks (a release)."""
    now = now or timezone.now()
    result = Applied()
    if not quotes:
        return result
    symbols = {q.symbol for q in quotes}
    known = reference(symbols)
    rules = limits()
    entries = store().read(symbols)
    # Per instrument, what each venue says as plain rows (venue, bid, ask, last, epoch
    # seconds) and the text the store holds: a venue no tick of the batch moved is
    # written back as it was read, never decoded into objects and encoded again.
    venues: dict[str, dict[str, tuple]] = {}
    texts: dict[str, dict[str, str]] = {}
    previous: dict[str, float | None] = {}
    # An instrument the store does not know yet is measured from its latest price in
    # the database (a first quote of $1 for a $100 stock is a jump too).
    stored = _stored_prices({s for s in symbols if BEST not in entries.get(s, {})}, known, now)
    future = now + rules.future_skew
    jump = rules.jump_limit
    stamps: dict[datetime, float] = {}  # a batch's ticks mostly share a moment
    touched: dict[str, None] = {}
    quote_of: dict[tuple[str, str], Quote] = {}  # (symbol, venue) -> the batch's newest
    accepted: list[tuple[Quote, float]] = []
    held: list[tuple[int, Quote, str]] = []
    ignored = 0
    for number, q in enumerate(quotes):
        symbol = q.symbol
        info = known.get(symbol)
        if info is None and not is_fx(symbol):
            continue
        state = venues.get(symbol)
        if state is None:
            entry = entries.get(symbol, {})
            texts[symbol] = {v: text for v, text in entry.items() if v != BEST}
            state = venues[symbol] = {v: _venue_row(v, text) for v, text in texts[symbol].items()}
            previous[symbol] = _best_price(entry[BEST]) if BEST in entry else stored.get(symbol)
        at = q.at
        stamp = stamps.get(at)
        if stamp is None:
            stamp = stamps[at] = at.timestamp()
        bid, ask, last = q.bid, q.ask, q.last
        if not force:
            # The common tick (three positive finite prices, not crossed, not ahead of
            # the clock, within the jump limit) passes here; anything else is judged by
            # quote_problem, the one statement of the rules, which gives the reason.
            prior = previous[symbol]
            if not (
                bid is not None
                and ask is not None
                and last is not None
                and 0.0 < bid <= ask < _INF
                and 0.0 < last < _INF
                and -_INF < q.size < _INF
                and at <= future
                and (not prior or prior < 0 or abs(last / prior - 1) <= jump)
            ):
                problem = quote_problem(
                    q,
                    previous=prior,
                    zero_allowed=info is not None and info[1] in ZERO_ALLOWED,
                    now=now,
                    limits=rules,
                )
                if problem:
                    held.append((row_numbers[number] if row_numbers else number, q, problem))
                    continue
        accepted.append((q, stamp))
        old = state.get(q.venue)
        if old is not None and stamp < old[4]:
            ignored += 1
            continue
        state[q.venue] = (q.venue, bid, ask, last, stamp)
        texts[symbol][q.venue] = None  # encoded below, once per batch
        touched[symbol] = None
        reference_price = q.reference
        if reference_price is not None:
            previous[symbol] = reference_price
        quote_of[symbol, q.venue] = q
    if held and refuse_problems:
        raise QuotesRefused(held)
    moments = {stamp: at for at, stamp in stamps.items()}  # a batch's moments as they came

    def moment(stamp: float) -> datetime:
        return moments.get(stamp) or datetime.fromtimestamp(stamp, UTC)

    writes: dict[str, dict[str, str]] = {}
    for symbol in touched:
        state = venues[symbol]
        best = consolidate_rows(symbol, state.values(), moment)
        if best is None:
            continue
        result.consolidated[symbol] = best
        fields = texts[symbol]
        for venue, text in fields.items():
            if text is None:
                fields[venue] = encode_quote(quote_of[symbol, venue], state[venue][4])
        fields[BEST] = encode_best(best)
        writes[symbol] = fields
    pairs = [s for s in writes if is_fx(s)]
    if pairs:
        writes[FX_PAIRS] = dict.fromkeys(pairs, "1")
    if writes:
        store().write(writes)
    with _bars_lock:
        bars = _aggregator()
        for q, stamp in accepted:
            bars.add(q, stamp)
    result.ignored = ignored
    result.accepted = len(accepted) - ignored
    if held:
        result.quarantined = _quarantine(held, known, source)
    if publish and result.consolidated:
        publish_quotes(result.consolidated)
    return result


_INF = float("inf")


def _venue_row(venue: str, text: str) -> tuple:
    """A venue's stored quote (portfolios.quotecache.encode_quote) as a plain row."""
    bid, ask, last, _size, at = text.split("|")
    return (venue, _number(bid), _number(ask), _number(last), float(at))


def _number(text: str) -> float | None:
    return float(text) if text else None


def _best_price(text: str) -> float | None:
    """The price of a stored consolidated quote (Consolidated.price) without building it."""
    bid, _, ask, _, last, _, _ = text.split("|")
    if last:
        return float(last)
    if bid and ask:
        return (float(bid) + float(ask)) / 2
    return _number(bid or ask)


def _stored_prices(symbols: set[str], known, now: datetime) -> dict[str, float]:
    """The latest price in the database (bar or daily price, not after today) of each
    of these instruments that has one: one query for the securities, two per FX pair."""
    if not symbols:
        return {}
    today = now.astimezone(UTC).date()
    found: dict[str, tuple[datetime, float]] = {}

    def offer(symbol, at, price):
        if price and (symbol not in found or at > found[symbol][0]):
            found[symbol] = (at, float(price))

    ids = {known[s][0]: s for s in symbols if s in known}
    latest = Price.objects.filter(security=OuterRef("pk"), as_of__lte=today).order_by("-as_of")
    bar = PriceBar.objects.filter(symbol=OuterRef("ticker"), last_at__lte=now).order_by("-last_at")
    for pk, price, day, close, at in (
        Security.objects.filter(pk__in=ids)
        .annotate(
            p=Subquery(latest.values("price")[:1]),
            d=Subquery(latest.values("as_of")[:1]),
            c=Subquery(bar.values("close")[:1]),
            a=Subquery(bar.values("last_at")[:1]),
        )
        .values_list("pk", "p", "d", "c", "a")
    ):
        if close is not None:
            offer(ids[pk], at, close)
        if price is not None:
            offer(ids[pk], datetime.combine(day, datetime.min.time(), tzinfo=UTC), price)
    pairs = [s for s in symbols if is_fx(s)]
    for pair in pairs:
        last_bar = (
            PriceBar.objects.filter(symbol=pair, last_at__lte=now)
            .order_by("-last_at")
            .values_list("close", "last_at")
            .first()
        )
        if last_bar:
            offer(pair, last_bar[1], last_bar[0])
    if pairs:
        for currency, quote_currency, day, rate in FxRate.objects.filter(
            as_of__lte=today, currency__in={fx_pair(p)[0] for p in pairs}
        ).values_list("currency", "quote", "as_of", "rate"):
            symbol = f"{currency}/{quote_currency}"
            if symbol in symbols:
                offer(symbol, datetime.combine(day, datetime.min.time(), tzinfo=UTC), rate)
    return {s: price for s, (_, price) in found.items()}


def quote_payload(best: Consolidated) -> list:
    return [best.price, best.bid, best.ask, round(best.at.timestamp(), 3)]


def publish_quotes(consolidated: dict[str, Consolidated]) -> None:
    """{"q": {symbol: [price, bid, ask, epoch seconds]}} on the "quotes" topic."""
    items = list(consolidated.items())
    for start in range(0, len(items), PUSH_CHUNK):
        push.publish(
            TOPIC, {"q": {s: quote_payload(c) for s, c in items[start : start + PUSH_CHUNK]}}
        )


def _quarantine(held, known, source: str) -> list[QuarantinedQuote]:
    rows = [
        QuarantinedQuote(
            symbol=q.symbol,
            security_id=known[q.symbol][0] if q.symbol in known else None,
            venue=q.venue,
            source=source[:50],
            quoted_at=q.at,
            # a figure that is not a number is not kept (the reason says so)
            bid=_price(q.bid) if _finite(q.bid) else None,
            ask=_price(q.ask) if _finite(q.ask) else None,
            last=_price(q.last) if _finite(q.last) else None,
            size=q.size if _finite(q.size) else 0,
            reason=reason,
        )
        for _, q, reason in held
    ]
    with audited_transaction():
        rows = QuarantinedQuote.objects.bulk_create(rows)
        for row in rows:
            audit_record(
                actor=None,
                actor_name=f"market data ({source})"[:150],
                kind="quote.quarantined",
                obj=row,
                after=_quarantine_snapshot(row),
                reason=row.reason,
            )
    return rows


def _finite(x: float | None) -> bool:
    return x is not None and isfinite(x)


def _price(x: float | None):
    return None if x is None else round(x, 8)


def _quarantine_snapshot(row: QuarantinedQuote) -> dict:
    return {
        "symbol": row.symbol,
        "venue": row.venue,
        "quoted_at": row.quoted_at,
        "bid": row.bid,
        "ask": row.ask,
        "last": row.last,
        "status": row.status,
    }


# --- Bars and the day's prices ----------------------------------------------------------


_BAR_COLUMNS = (
    ("symbol", "text"), ("security_id", "bigint"), ("start", "timestamptz"),
    ("seconds", "integer"), ("open", "numeric"), ("high", "numeric"), ("low", "numeric"),
    ("close", "numeric"), ("volume", "numeric"), ("ticks", "integer"),
    ("first_at", "timestamptz"), ("last_at", "timestamptz"),
)  # fmt: skip
_PRICE_COLUMNS = (
    ("security_id", "bigint"),
    ("as_of", "date"),
    ("price", "numeric"),
    ("source", "text"),
)
_FX_COLUMNS = (("currency", "text"), ("quote", "text"), ("as_of", "date"), ("rate", "numeric"))


def _bars_conflict() -> str:
    hi, lo = ("GREATEST", "LEAST") if connection.vendor == "postgresql" else ("MAX", "MIN")
    return (
        "ON CONFLICT (symbol, seconds, start) DO UPDATE SET "
        "open = CASE WHEN excluded.first_at < b.first_at THEN excluded.open ELSE b.open END, "
        "close = CASE WHEN excluded.last_at >= b.last_at THEN excluded.close ELSE b.close END, "
        f"high = {hi}(b.high, excluded.high), low = {lo}(b.low, excluded.low), "
        "volume = b.volume + excluded.volume, ticks = b.ticks + excluded.ticks, "
        f"first_at = {lo}(b.first_at, excluded.first_at), "
        f"last_at = {hi}(b.last_at, excluded.last_at)"
    )


_PRICE_CONFLICT = (
    "ON CONFLICT (security_id, as_of) DO UPDATE SET price = excluded.price, "
    "source = excluded.source"
)
_FX_CONFLICT = "ON CONFLICT (currency, quote, as_of) DO UPDATE SET rate = excluded.rate"


def _upsert(cursor, table: str, alias: str, columns, conflict: str, rows: list[tuple]) -> None:
    """Insert or merge rows. On PostgreSQL the rows are COPYed (as text, one write)
    into a temporary table and merged from it in one statement: a feed flushes
    thousands of bars a second, and a statement per row, a placeholder per value, or
    even one array per column (psycopg dumping every value) is most of that time.
    Elsewhere (the embedded SQLite) one statement per row."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    head = f"INSERT INTO {table} AS {alias} ({names}) "
    if connection.vendor == "postgresql":
        staging = f"oms_upsert_{table}"
        kinds = ", ".join(f"{name} {kind}" for name, kind in columns)
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ({kinds})")
        with cursor.cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
            copy.write("".join(_copy_line(row) for row in rows))
        # Emptied by the statement that merges it: between two flushes it holds nothing
        # (a rolled-back flush takes its COPY back with it).
        cursor.execute(
            f"WITH moved AS (DELETE FROM {staging} RETURNING {names}) "
            f"{head}SELECT {names} FROM moved {conflict}"
        )
    else:
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(f"{head}VALUES ({marks}) {conflict}", rows)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


def _copy_line(row: tuple) -> str:
    """One row in COPY's text format."""
    return "\t".join([_copy_value(v) for v in row]) + "\n"


_daily_pending: dict[str, Bar] = {}  # the latest bar of each instrument not yet in Price


def bars_flush(*, source: str = "feed", daily: bool = True) -> int:
    """Write the bars this process gathered since the last flush (merged with the
    stored ones), and (``daily``) the day's latest Price and FxRate per instrument; a
    feed may write those less often than the bars (they are kept until then). Returns
    the number of bars written."""
    with _bars_lock:
        bars = _aggregator().drain()
        for bar in bars:
            held = _daily_pending.get(bar.symbol)
            if held is None or bar.last_at >= held.last_at:
                _daily_pending[bar.symbol] = bar
        latest = dict(_daily_pending) if daily else {}
        if daily:
            _daily_pending.clear()
    if not bars and not latest:
        return 0
    known = reference({b.symbol for b in bars} | set(latest))
    today = timezone.now().astimezone(UTC).date()
    bar_rows = [
        (
            b.symbol,
            known[b.symbol][0] if b.symbol in known else None,
            b.start,
            b.seconds,
            _price(b.open),
            _price(b.high),
            _price(b.low),
            _price(b.close),
            round(b.volume, 6),
            b.ticks,
            b.first_at,
            b.last_at,
        )
        for b in sorted(bars, key=lambda b: (b.symbol, b.start))
    ]
    price_rows = []
    fx_rows = []
    for symbol, b in sorted(latest.items()):
        day = b.last_at.astimezone(UTC).date()
        if day > today or b.close <= 0:
            continue
        if is_fx(symbol):
            fx_rows.append((*fx_pair(symbol), day, round(b.close, 10)))
        elif symbol in known:
            price_rows.append((known[symbol][0], day, _price(b.close), source[:50]))
    if not (bar_rows or price_rows or fx_rows):
        return 0
    with audited_transaction():
        with connection.cursor() as cursor:
            _upsert(cursor, PriceBar._meta.db_table, "b", _BAR_COLUMNS, _bars_conflict(), bar_rows)
            _upsert(cursor, Price._meta.db_table, "p", _PRICE_COLUMNS, _PRICE_CONFLICT, price_rows)
            _upsert(cursor, FxRate._meta.db_table, "f", _FX_COLUMNS, _FX_CONFLICT, fx_rows)
        # The stored drift of the accounts these prices value is now older than them;
        # the periodic refresh recomputes it (portfolios.tasks.drift_refresh_stale).
        drift_mark_stale(
            security_ids=[row[0] for row in price_rows], all_accounts=bool(fx_rows), refresh=False
        )
        # One event per flush, not per tick or bar: the day's prices it wrote are what
        # the drift, the rebalancer and compliance read.
        audit_record(
            actor=None,
            actor_name=f"market data ({source})"[:150],
            kind="prices.flushed",
            obj=PriceLoad(timezone.now().strftime("%Y%m%dT%H%M%S.%f"), source[:50]),
            after={
                "bars": len(bar_rows),
                "prices": len(price_rows),
                "fx_rates": len(fx_rows),
                "first_at": min((b.first_at for b in bars), default=None),
                "last_at": max((b.last_at for b in bars), default=None),
            },
        )
    return len(bar_rows)


def bars_discard() -> None:
    """Forget the bars not yet flushed (tests)."""
    with _bars_lock:
        _aggregator().drain()
        _daily_pending.clear()


# --- Loads: a file, an API post ---------------------------------------------------------


@dataclass(frozen=True)
class PriceLoad:
    """What an audit event of a load names (a load is no row of its own)."""

    pk: str
    source: str

    def __str__(self) -> str:
        return f"{self.source} load {self.pk}"


class ImportMode:
    ALL_OR_NOTHING = "all_or_nothing"
    GOOD_ROWS = "good_rows"
    CHOICES = (ALL_OR_NOTHING, GOOD_ROWS)


@dataclass
class ImportResult:
    applied: int
    quarantined: list[QuarantinedQuote]
    errors: list[RowError]  # rows not read (skipped in good-rows mode)
    ignored: int = 0


def _load_record(actor, kind: str, source: str, result: ImportResult, extra: dict) -> None:
    with audited_transaction():
        audit_record(
            actor=actor,
            kind=kind,
            obj=PriceLoad(timezone.now().strftime("%Y%m%dT%H%M%S.%f"), source),
            after={
                "applied": result.applied,
                "quarantined": [q.pk for q in result.quarantined],
                "bad_rows": [str(e) for e in result.errors],
            }
            | extra,
        )


def prices_import(
    *, actor, text: str, mode: str, filename: str = "", now: datetime | None = None
) -> ImportResult:
    """Import a CSV of prices and FX rates (portfolios.marketdata.csvfile).

    ``all_or_nothing``: a row that cannot be read, names no known security, or fails
    the checks refuses the whole file (a ValidationError naming every such row), and
    nothing is applied. ``good_rows``: the good rows are applied, unreadable rows are
    named and skipped, and rows that fail the checks are quarantined."""
    require(actor, Action.REFERENCE_MANAGE)
    if mode not in ImportMode.CHOICES:
        raise ValidationError({"mode": [f"Choose {' or '.join(ImportMode.CHOICES)}."]})
    now = now or timezone.now()
    try:
        batch = CsvPrices(text, now=now).read()
    except CsvFileError as error:
        raise ValidationError({"file": [str(error)]}) from None
    lines = {id(q): n for q, n in zip(batch.quotes, batch.lines, strict=True)}
    unknown = unknown_symbols(batch.quotes)
    errors = list(batch.errors) + [
        RowError(lines[id(q)], q.symbol, f"no security {q.symbol}")
        for q in batch.quotes
        if q.symbol in unknown
    ]
    errors.sort(key=lambda e: e.row)
    quotes = [q for q in batch.quotes if q.symbol not in unknown]
    if mode == ImportMode.ALL_OR_NOTHING and errors:
        raise ValidationError({"file": [str(e) for e in errors]})
    if not quotes and not errors:
        raise ValidationError({"file": ["The file has no price rows."]})
    numbers = [lines[id(q)] for q in quotes]
    try:
        applied = quotes_apply(
            quotes,
            source="file",
            now=now,
            refuse_problems=mode == ImportMode.ALL_OR_NOTHING,
            row_numbers=numbers,
        )
    except QuotesRefused as refused:
        raise ValidationError({"file": refused.messages}) from None
    result = ImportResult(applied.accepted, applied.quarantined, errors, applied.ignored)
    with audited_transaction():  # the prices and the import's event commit together
        bars_flush(source="file")
        _load_record(actor, "prices.imported", "file", result, {"file": filename, "mode": mode})
    return result


def quotes_post(*, actor, quotes: list[Quote], now: datetime | None = None) -> Applied:
    """Quotes an integrator posted (already read by portfolios.marketdata.rest and
    refused whole by the API when one was unreadable or named no security): the ones
    that fail the checks are quarantined, the rest applied."""
    require(actor, Action.REFERENCE_MANAGE)
    applied = quotes_apply(quotes, source="api", now=now)
    with audited_transaction():  # the prices and the post's event commit together
        bars_flush(source="api")
        _load_record(
            actor,
            "quotes.posted",
            "api",
            ImportResult(applied.accepted, applied.quarantined, [], applied.ignored),
            {"symbols": sorted({q.symbol for q in quotes})[:50]},
        )
    return applied


# --- Quarantine decisions ---------------------------------------------------------------


def _decide(*, actor, quarantine_id: int, target: str, reason: str) -> QuarantinedQuote:
    require(actor, Action.REFERENCE_MANAGE)
    if not reason.strip():
        raise ValidationError({"reason": ["Say why."]})
    with audited_transaction():
        row = QuarantinedQuote.objects.select_for_update().get(pk=quarantine_id)
        before = _quarantine_snapshot(row)
        move(row, target)
        row.decided_by = actor
        row.decided_at = timezone.now()
        row.decision_reason = reason.strip()
        row.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        audit_record(
            actor=actor,
            kind=f"quote.{target}",
            obj=row,
            before=before,
            after=_quarantine_snapshot(row),
            reason=row.decision_reason,
        )
    return row


def _as_quote(row: QuarantinedQuote) -> Quote:
    def f(x):
        return None if x is None else float(x)

    return Quote(
        row.symbol, row.venue, row.quoted_at, f(row.bid), f(row.ask), f(row.last), float(row.size)
    )


def quarantine_release(*, actor, quarantine_id: int, reason: str) -> QuarantinedQuote:
    """Apply a held quote after all (a move the checks thought too large, a zero that
    was right). A quote that is negative, not a number or dated in the future cannot
    be released: discard it."""
    require(actor, Action.REFERENCE_MANAGE)
    row = QuarantinedQuote.objects.get(pk=quarantine_id)
    if row.reason in (NOT_FINITE, SIZE_NOT_FINITE):
        raise ValidationError(f"This quote cannot be released ({row.reason}); discard it.")
    quote = _as_quote(row)
    problem = quote_problem(
        quote,
        previous=None,
        zero_allowed=True,
        now=timezone.now(),
        limits=Limits(jump_limit=float("inf"), future_skew=limits().future_skew),
    )
    if problem:
        raise ValidationError(f"This quote cannot be released ({problem}); discard it.")
    row = _decide(
        actor=actor,
        quarantine_id=quarantine_id,
        target=QuarantinedQuote.Status.RELEASED,
        reason=reason,
    )
    quotes_apply([quote], source="release", force=True)
    bars_flush(source="release")
    return row


def quarantine_discard(*, actor, quarantine_id: int, reason: str) -> QuarantinedQuote:
    """Drop a held quote for good."""
    return _decide(
        actor=actor,
        quarantine_id=quarantine_id,
        target=QuarantinedQuote.Status.DISCARDED,
        reason=reason,
    )
