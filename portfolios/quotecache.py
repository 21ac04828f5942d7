"""Where the latest quotes live: per instrument, what each venue last said and the
consolidated quote. Redis when OMS_QUOTE_REDIS_URL (REDIS_URL by default) is set: one
hash per instrument, read and written in one pipelined round trip per batch; Django's
cache otherwise (the embedded default, where each process has its own: the readers
fall back on the bars, see portfolios.quotes).

Written only by portfolios.services.quotes; read by portfolios.quotes."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache

from .marketdata import Consolidated, Quote

KEY = "oms:quote:"
BEST = "_"  # the consolidated quote's field in an instrument's hash
FX_PAIRS = "__fx__"  # the entry whose fields are the FX pairs ever quoted


def _f(x: float | None) -> str:
    return "" if x is None else repr(x)


def _p(text: str) -> float | None:
    return float(text) if text else None


def encode_quote(q: Quote, stamp: float | None = None) -> str:
    """``stamp``: ``q.at`` in epoch seconds, when the caller has it already."""
    at = q.at.timestamp() if stamp is None else stamp
    return f"{_f(q.bid)}|{_f(q.ask)}|{_f(q.last)}|{q.size!r}|{at!r}"


def decode_quote(symbol: str, venue: str, text: str) -> Quote:
    bid, ask, last, size, at = text.split("|")
    return Quote(
        symbol, venue, datetime.fromtimestamp(float(at), UTC), _p(bid), _p(ask), _p(last),
        float(size),
    )  # fmt: skip


def encode_best(c: Consolidated) -> str:
    return (
        f"{_f(c.bid)}|{c.bid_venue}|{_f(c.ask)}|{c.ask_venue}|{_f(c.last)}|{c.last_venue}|"
        f"{c.at.timestamp()!r}"
    )


def decode_best(symbol: str, text: str) -> Consolidated:
    bid, bid_venue, ask, ask_venue, last, last_venue, at = text.split("|")
    return Consolidated(
        symbol, datetime.fromtimestamp(float(at), UTC), _p(bid), bid_venue, _p(ask), ask_venue,
        _p(last), last_venue,
    )  # fmt: skip


Entry = dict[str, str]  # field (a venue, or BEST) -> encoded text


class QuoteStore:
    def read(self, symbols: Iterable[str]) -> dict[str, Entry]:
        raise NotImplementedError

    def write(self, entries: dict[str, Entry]) -> None:
        """Set these instruments' entries: all of an instrument's fields (its venues
        and BEST) are given; FX_PAIRS is merged with what it holds."""
        raise NotImplementedError

    def clear(self, symbols: Iterable[str]) -> None:
        raise NotImplementedError


class RedisQuoteStore(QuoteStore):
    """One string per instrument ("VENUE=quote;...;_=consolidated"), so that a batch is
    one MGET and one MSET whatever its size: per-instrument commands (a hash each) cost
    more in the client than the rest of the quote service."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)

    @staticmethod
    def _parse(text: str) -> Entry:
        return dict(field.split("=", 1) for field in text.split(";") if field)

    def read(self, symbols):
        symbols = list(symbols)
        if not symbols:
            return {}
        texts = self.client.mget([KEY + s for s in symbols])
        return {s: self._parse(t) for s, t in zip(symbols, texts, strict=True) if t}

    def write(self, entries):
        known = self.read([s for s in entries if s == FX_PAIRS])
        self.client.mset(
            {
                KEY + s: ";".join(f"{k}={v}" for k, v in (known.get(s, {}) | fields).items())
                for s, fields in entries.items()
            }
        )

    def clear(self, symbols):
        keys = [KEY + s for s in symbols]
        if keys:
            self.client.delete(*keys)


class DjangoCacheQuoteStore(QuoteStore):
    TIMEOUT = None  # kept until replaced; staleness is judged by the quote's moment

    def read(self, symbols):
        found = cache.get_many([KEY + s for s in symbols])
        return {k[len(KEY) :]: v for k, v in found.items()}

    def write(self, entries):
        known = self.read(entries)
        cache.set_many(
            {KEY + s: known.get(s, {}) | fields for s, fields in entries.items()},
            timeout=self.TIMEOUT,
        )

    def clear(self, symbols):
        cache.delete_many([KEY + s for s in symbols])


_store: QuoteStore | None = None
_store_url: str | None = None
_lock = threading.Lock()


def store() -> QuoteStore:
    global _store, _store_url
    url = settings.OMS_QUOTE_REDIS_URL
    with _lock:
        if _store is None or _store_url != url:
            _store = RedisQuoteStore(url) if url else DjangoCacheQuoteStore()
            _store_url = url
        return _store


def consolidated(symbols: Iterable[str]) -> dict[str, Consolidated]:
    return {s: decode_best(s, e[BEST]) for s, e in store().read(symbols).items() if BEST in e}


def venues(symbol: str) -> list[Quote]:
    entry = store().read([symbol]).get(symbol, {})
    return [decode_quote(symbol, v, text) for v, text in sorted(entry.items()) if v != BEST]


def fx_pairs() -> set[str]:
    return set(store().read([FX_PAIRS]).get(FX_PAIRS, {}))
