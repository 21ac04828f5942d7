"""manage.py run_price_feed: simulated quotes through the service into the store,
the bars, the day's prices and the FIX simulator's prices file."""

import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from portfolios import quotes as selectors
from portfolios.marketdata import Freshness
from portfolios.models import PriceBar, Security

pytestmark = pytest.mark.django_db


def test_the_feed_moves_prices_everywhere_the_desk_reads_them(
    book, quote_store, tmp_path, settings
):
    settings.OMS_QUOTE_BAR_SECONDS = 1
    path = tmp_path / "fix-prices.json"
    call_command(
        "run_price_feed",
        "--tick-rate=400",
        "--interval=0.05",
        "--flush-every=0.2",
        "--duration=1.0",
        "--seed=1",
        f"--prices-file={path}",
        "--venues=XNAS,ARCX,BATS",
        stdout=io.StringIO(),
    )
    readings = selectors.prices_for(Security.objects.all())
    assert {r.symbol: (r.freshness, r.source) for r in readings.values()} == dict.fromkeys(
        ("AAA", "BBB", "CCC", "DDD", "EEE"), (Freshness.FRESH, "live")
    )
    assert PriceBar.objects.filter(symbol="AAA").exists()
    assert PriceBar.objects.filter(symbol="EUR/USD").exists()  # the book's FX rate walks too
    file_prices = json.loads(path.read_text())
    assert set(file_prices) == {"AAA", "BBB", "CCC", "DDD", "EEE"}
    for reading in readings.values():
        assert float(file_prices[reading.symbol]) == pytest.approx(float(reading.price))
    latest = Security.objects.with_latest_price().get(ticker="AAA")
    assert latest.latest_price_date == timezone.now().date()
    assert (
        latest.latest_price == PriceBar.objects.filter(symbol="AAA").order_by("-last_at")[0].close
    )
