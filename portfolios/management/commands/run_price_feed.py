"""The demo's price feed: the simulated adapter, through the quote service, announced
on the "quotes" push topic; the prices file the FIX simulator re-reads follows it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection
from django.utils import timezone

from portfolios.marketdata import MarketDataAdapter, SimulatedFeed
from portfolios.models import FxRate, Security
from portfolios.services import quotes as quote_services


def write_prices_file(path: Path, prices: dict[str, float]) -> None:
    """{"TICKER": "price"} written atomically (python -m trading.fix.simulator --prices)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(
        json.dumps(
            {k: f"{v:.8f}".rstrip("0").rstrip(".") for k, v in prices.items()},
            indent=1,
            sort_keys=True,
        )
    )
    os.replace(tmp, path)


def starting_prices() -> dict[str, tuple[float, float]]:
    """symbol -> (latest price, tick) of every active security with a price, and of every
    FX pair with a rate."""
    instruments = {
        ticker: (float(price), float(tick))
        for ticker, price, tick in Security.objects.filter(is_active=True)
        .with_latest_price()
        .values_list("ticker", "latest_price", "tick_size")
        if price
    }
    today = timezone.now().date()
    for currency, quote, rate in (
        FxRate.objects.filter(as_of__lte=today)
        .order_by("currency", "quote", "-as_of")
        .values_list("currency", "quote", "rate")
    ):
        instruments.setdefault(f"{currency}/{quote}", (float(rate), 0.0001))
    return instruments


class Command(BaseCommand):
    help = (
        "Stream simulated prices (a random walk per security and FX pair, bid/ask/last on "
        "several venues) through the quote service; flush bars and refresh the FIX "
        "simulator's prices file every --flush-every seconds."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tick-rate", type=float, default=settings.OMS_PRICE_FEED_TICK_RATE)
        parser.add_argument("--volatility", type=float, default=settings.OMS_PRICE_FEED_VOLATILITY)
        parser.add_argument("--venues", default=",".join(settings.OMS_PRICE_FEED_VENUES))
        parser.add_argument("--interval", type=float, default=0.2, help="seconds between batches")
        parser.add_argument("--flush-every", type=float, default=1.0)
        parser.add_argument(
            "--daily-every",
            type=float,
            default=10.0,
            help="seconds between writes of the day's prices (the bars go every --flush-every)",
        )
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--prices-file",
            type=Path,
            default=settings.VAR_DIR / "fix-prices.json",
            help="the FIX simulator's --prices file, refreshed from the latest quotes",
        )
        parser.add_argument("--duration", type=float, default=None, help="stop after this long")

    def handle(self, *args, **opts):
        instruments = starting_prices()
        if not instruments:
            raise CommandError("No security has a price to start from: load prices first.")
        venues = tuple(v.strip().upper() for v in opts["venues"].split(",") if v.strip())
        try:
            feed = SimulatedFeed(
                instruments,
                venues=venues,
                volatility=opts["volatility"],
                tick_rate=opts["tick_rate"],
                interval=opts["interval"],
                seed=opts["seed"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        signal.signal(signal.SIGTERM, lambda *_: feed.stop())
        self.stdout.write(
            f"price feed: {len(feed.walks)} instruments on {', '.join(venues)}, "
            f"{opts['tick_rate']:g} ticks/s"
        )
        self.run(feed, opts)

    def run(self, feed: MarketDataAdapter, opts) -> None:
        path: Path = opts["prices_file"]
        prices = {s: p for s, (p, _) in starting_prices().items() if "/" not in s}
        write_prices_file(path, prices)
        started = last_flush = last_daily = time.monotonic()
        ticks = held = 0
        try:
            for batch in feed.batches():
                applied = quote_services.quotes_apply(batch.quotes, source=feed.source)
                ticks += applied.accepted
                held += len(applied.quarantined)
                for symbol, best in applied.consolidated.items():
                    if "/" not in symbol and best.price:
                        prices[symbol] = best.price
                now = time.monotonic()
                if now - last_flush >= opts["flush_every"]:
                    daily = now - last_daily >= opts["daily_every"]
                    quote_services.bars_flush(source=feed.source, daily=daily)
                    last_daily = now if daily else last_daily
                    write_prices_file(path, prices)
                    if not connection.in_atomic_block:  # (a test's transaction)
                        close_old_connections()
                    last_flush = now
                if opts["duration"] is not None and now - started >= opts["duration"]:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            feed.close()
            quote_services.bars_flush(source=feed.source)
            write_prices_file(path, prices)
        self.stdout.write(f"price feed stopped: {ticks} ticks applied, {held} quarantined")
