"""The quote service and its reads on PostgreSQL, with the latest quotes in Redis and
in Django's cache: checks and quarantine, consolidation, bars, staleness, crosses."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from oms.state import TransitionError
from portfolios import quotes as selectors
from portfolios.marketdata import Freshness, Quote
from portfolios.models import FxRate, Price, PriceBar, QuarantinedQuote, Security
from portfolios.services import quotes as services

pytestmark = pytest.mark.django_db


def tick(symbol="AAA", last=100.0, *, venue="XNAS", bid=None, ask=None, at=None, size=100.0):
    bid = last - 0.05 if bid is None and last is not None else bid
    ask = last + 0.05 if ask is None and last is not None else ask
    return Quote(symbol, venue, at or timezone.now(), bid, ask, last, size)


def test_quotes_are_consolidated_across_venues_and_read_back_fresh(book, quote_store):
    now = timezone.now()
    applied = services.quotes_apply(
        [
            tick("AAA", 100.00, venue="XNAS", bid=99.98, ask=100.03, at=now - timedelta(seconds=2)),
            tick("AAA", 100.01, venue="ARCX", bid=99.99, ask=100.04, at=now - timedelta(seconds=1)),
        ],
        source="test",
    )
    assert applied.accepted == 2 and not applied.quarantined
    reading = selectors.price_for(book["securities"]["AAA"])
    assert (reading.price, reading.bid, reading.ask) == (
        Decimal("100.01"),
        Decimal("99.99"),
        Decimal("100.03"),
    )
    assert reading.freshness == Freshness.FRESH and reading.source == "live"
    venues = {q.venue: q.bid for q in __import__("portfolios.quotecache").quotecache.venues("AAA")}
    assert venues == {"XNAS": 99.98, "ARCX": 99.99}


def test_an_older_quote_from_a_venue_does_not_replace_its_newer_one(book, quote_store):
    now = timezone.now()
    services.quotes_apply([tick("AAA", 100.0, at=now)], source="test")
    applied = services.quotes_apply(
        [tick("AAA", 101.0, at=now - timedelta(seconds=5))], source="test"
    )
    assert applied.ignored == 1 and applied.accepted == 0
    assert selectors.price_for(book["securities"]["AAA"]).price == Decimal("100")


@pytest.mark.parametrize(
    ("quote", "reason"),
    [
        (Quote("AAA", "XNAS", None, None, None, -5.0), "negative last -5"),
        (Quote("AAA", "XNAS", None, 0.0, 0.0, 0.0), "bid of zero, and AAA cannot trade at zero"),
        (
            Quote("AAA", "XNAS", datetime(9999, 12, 31, tzinfo=UTC), None, None, 1.0),
            "dated 9999-12-31T00:00:00+00:00, in the future",
        ),
        (
            Quote("AAA", "XNAS", None, None, None, 160.0),
            "160 is 60% from the last accepted 100 (the limit is 25%)",
        ),
        (Quote("AAA", "XNAS", None, 101.0, 100.5, None), "bid 101 above ask 100.5 on XNAS"),
        # what the service's quick pass over ordinary ticks must not let through
        (Quote("AAA", "XNAS", None, 99.9, 100.1, float("nan")), "a price that is not a finite"),
        (Quote("AAA", "XNAS", None, 99.9, float("inf"), 100.0), "a price that is not a finite"),
        (Quote("AAA", "XNAS", None, 101.0, 100.5, 100.7), "bid 101 above ask 100.5 on XNAS"),
        (Quote("AAA", "XNAS", None, 99.9, 100.1, 100.0, float("nan")), "a size that is not"),
        (Quote("AAA", "XNAS", None, 0.0, 100.1, 100.0), "bid of zero, and AAA cannot"),
        (Quote("AAA", "XNAS", None, 129.9, 130.1, 130.0), "130 is 30% from the last accepted"),
        (Quote("AAA", "XNAS", None, 69.9, 70.1, 70.0), "70 is 30% from the last accepted"),
    ],
)
def test_a_quote_that_fails_the_checks_is_quarantined_with_its_reason_and_never_applied(
    book, quote_store, quote, reason
):
    services.quotes_apply([tick("AAA", 100.0)], source="test")
    before = selectors.price_for(book["securities"]["AAA"])
    if quote.at is None:
        quote = Quote(
            quote.symbol, quote.venue, timezone.now(), quote.bid, quote.ask, quote.last, quote.size
        )
    applied = services.quotes_apply([quote], source="probe")
    assert applied.accepted == 0
    (held,) = applied.quarantined
    assert held.reason.startswith(reason) and held.status == QuarantinedQuote.Status.HELD
    assert held.security == book["securities"]["AAA"] and held.source == "probe"
    after = selectors.price_for(book["securities"]["AAA"])
    assert (after.price, after.at) == (before.price, before.at)
    event = AuditEvent.objects.get(kind="quote.quarantined")
    assert event.object_id == str(held.pk) and event.reason == held.reason
    services.bars_flush()
    assert not Price.objects.filter(
        security=book["securities"]["AAA"], as_of__gt=timezone.now().date()
    ).exists()


def test_a_quote_that_is_not_a_number_is_held_without_its_figure_and_never_released(
    book, quote_store, ops
):
    services.quotes_apply([tick("AAA", 100.0)], source="test")
    bad = Quote("AAA", "XNAS", timezone.now(), 99.9, 100.1, float("nan"))
    (held,) = services.quotes_apply([bad], source="feed").quarantined
    held.refresh_from_db()
    assert (held.bid, held.last) == (Decimal("99.9"), None)
    with pytest.raises(ValidationError, match="cannot be released"):
        services.quarantine_release(actor=ops, quarantine_id=held.pk, reason="looks fine")
    held.refresh_from_db()
    assert held.status == QuarantinedQuote.Status.HELD


def test_a_quote_dated_just_past_the_allowed_skew_is_quarantined(book, quote_store, settings):
    settings.OMS_QUOTE_FUTURE_SKEW_SECONDS = 5
    now = timezone.now()
    ahead = tick("AAA", 100.0, at=now + timedelta(seconds=5, microseconds=1))
    (held,) = services.quotes_apply([ahead], source="probe", now=now).quarantined
    assert "in the future" in held.reason
    on_time = tick("AAA", 100.0, at=now + timedelta(seconds=5))
    assert services.quotes_apply([on_time], source="probe", now=now).accepted == 1


def test_the_jump_is_measured_from_the_batch_s_own_earlier_tick(book, quote_store):
    services.quotes_apply([tick("AAA", 100.0)], source="test")
    applied = services.quotes_apply(
        [tick("AAA", 120.0), tick("AAA", 145.0, venue="ARCX"), tick("AAA", 190.0)],
        source="test",
    )  # 100 -> 120 (20%), 120 -> 145 (21%), 145 -> 190 (31%: held)
    assert applied.accepted == 2
    (held,) = applied.quarantined
    assert held.reason.startswith("190 is 31% from the last accepted 145")


def test_a_venue_the_batch_did_not_move_is_kept_as_it_was(book, quote_store):
    from portfolios import quotecache

    now = timezone.now()
    services.quotes_apply(
        [tick("AAA", 100.0, venue="XNAS", bid=99.98, ask=100.03, at=now, size=300)],
        source="test",
    )
    (xnas,) = quotecache.venues("AAA")
    services.quotes_apply([tick("AAA", 100.2, venue="ARCX", at=now)], source="test")
    arcx, kept = quotecache.venues("AAA")
    assert kept == xnas and arcx.venue == "ARCX" and arcx.last == 100.2
    best = quotecache.consolidated(["AAA"])["AAA"]
    assert (best.bid, best.bid_venue, best.ask, best.ask_venue) == (100.15, "ARCX", 100.03, "XNAS")
    assert (best.last, best.last_venue) == (100.2, "ARCX")
    assert abs(best.at - now) < timedelta(milliseconds=1)


def test_a_batch_of_instruments_the_store_knows_makes_no_query(
    book, quote_store, django_assert_num_queries
):
    services.quotes_apply([tick("AAA", 100.0), tick("BBB", 50.0)], source="test")
    batch = [tick("AAA", 100.5), tick("BBB", 50.2, venue="ARCX"), tick("AAA", 100.4)]
    with django_assert_num_queries(0):  # the store, the checks, the bars in memory
        applied = services.quotes_apply(batch, source="test")
    assert applied.accepted == 3 and applied.consolidated["AAA"].at == batch[2].at


def test_a_flush_is_the_same_statements_whatever_the_number_of_bars(book, quote_store):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=10)
    counts = []
    for minutes in (1, 5):
        services.quotes_apply(
            [tick("AAA", 100.0 + m / 10, at=start + timedelta(minutes=m)) for m in range(minutes)]
            + [tick("BBB", 50.0, at=start)],
            source="test",
        )
        with CaptureQueriesContext(connection) as queries:
            assert services.bars_flush() == minutes + 1
        counts.append(len(queries.captured_queries))
        start += timedelta(minutes=5)
    assert counts[0] == counts[1]
    assert PriceBar.objects.filter(symbol="AAA").count() == 6


def test_the_jump_limit_is_a_setting(book, quote_store, settings):
    settings.OMS_QUOTE_JUMP_LIMIT = 0.05
    services.quotes_apply([tick("AAA", 100.0)], source="test")
    assert services.quotes_apply([tick("AAA", 106.0)], source="test").quarantined
    assert not services.quotes_apply([tick("AAA", 104.0)], source="test").quarantined


def test_a_release_applies_the_quote_and_is_audited_a_discard_drops_it(book, quote_store, ops, pm):
    services.quotes_apply([tick("AAA", 100.0)], source="test")
    (jump,) = services.quotes_apply([tick("AAA", 140.0)], source="test").quarantined
    (other,) = services.quotes_apply(
        [Quote("BBB", "XNAS", timezone.now(), None, None, -1.0)], source="test"
    ).quarantined
    with pytest.raises(PermissionDenied):
        services.quarantine_release(actor=pm, quarantine_id=jump.pk, reason="news")
    with pytest.raises(ValidationError, match="Say why"):
        services.quarantine_release(actor=ops, quarantine_id=jump.pk, reason=" ")
    released = services.quarantine_release(actor=ops, quarantine_id=jump.pk, reason="takeover bid")
    assert released.status == "released" and released.decided_by == ops
    assert selectors.price_for(book["securities"]["AAA"]).price == Decimal("140")
    # the next jump is measured from the released price
    assert not services.quotes_apply([tick("AAA", 141.0)], source="test").quarantined
    with pytest.raises(ValidationError, match="cannot be released \\(negative last -1\\)"):
        services.quarantine_release(actor=ops, quarantine_id=other.pk, reason="sure")
    services.quarantine_discard(actor=ops, quarantine_id=other.pk, reason="bad print")
    with pytest.raises(TransitionError):
        services.quarantine_discard(actor=ops, quarantine_id=jump.pk, reason="again")
    kinds = list(
        AuditEvent.objects.filter(kind__in=["quote.released", "quote.discarded"])
        .order_by("pk")
        .values_list("kind", "reason")
    )
    assert kinds == [("quote.released", "takeover bid"), ("quote.discarded", "bad print")]


def test_staleness_per_asset_class_and_missing(book, quote_store, settings):
    settings.OMS_QUOTE_MAX_AGE = {"equity": 60, "fixed_income": 3600, "default": 60}
    Price.objects.all().delete()
    now = timezone.now()
    services.quotes_apply(
        [
            tick("AAA", 100.0, at=now - timedelta(seconds=120)),
            tick("CCC", 20.0, at=now - timedelta(seconds=120)),
        ],
        source="test",
    )
    readings = selectors.prices_for(Security.objects.filter(ticker__in=["AAA", "CCC", "EEE"]))
    by_ticker = {r.symbol: r for r in readings.values()}
    assert by_ticker["AAA"].freshness == Freshness.STALE and by_ticker["AAA"].price == Decimal(
        "100"
    )
    assert by_ticker["CCC"].freshness == Freshness.FRESH  # a bond's price lives longer
    assert by_ticker["EEE"].freshness == Freshness.MISSING and by_ticker["EEE"].price is None
    assert not by_ticker["AAA"].usable and by_ticker["CCC"].usable


def test_without_the_store_the_reading_falls_back_on_bars_then_daily_prices(book, quote_store):
    services.quotes_apply([tick("AAA", 101.0)], source="test")
    services.bars_flush()
    quote_store.clear(["AAA"])  # another process's store, as in the embedded default
    reading = selectors.price_for(book["securities"]["AAA"])
    assert (reading.price, reading.source, reading.freshness) == (
        Decimal("101"),
        "bar",
        Freshness.FRESH,
    )
    reading = selectors.price_for(book["securities"]["BBB"])  # the book's daily price of today
    assert (reading.price, reading.source) == (Decimal("50"), "close")


def test_a_future_daily_price_is_never_the_latest(book, quote_store):
    aaa = book["securities"]["AAA"]
    Price.objects.create(security=aaa, as_of=datetime(9999, 12, 31).date(), price=Decimal(1))
    assert selectors.price_for(aaa).price == Decimal("100")
    assert Security.objects.with_latest_price().get(pk=aaa.pk).latest_price == Decimal("100")


def test_bars_gather_ticks_and_merge_across_flushes_and_write_the_days_price(
    book, quote_store, settings
):
    settings.OMS_QUOTE_BAR_SECONDS = 60
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2)
    services.quotes_apply(
        [
            tick("AAA", 100.0, at=start + timedelta(seconds=1), size=100),
            tick("AAA", 103.0, at=start + timedelta(seconds=30), size=200, venue="ARCX"),
        ],
        source="test",
    )
    assert services.bars_flush() == 1
    services.quotes_apply(
        [tick("AAA", 99.0, at=start + timedelta(seconds=59), size=50)], source="test"
    )
    services.quotes_apply(
        [tick("AAA", 101.0, at=start + timedelta(seconds=61), size=10)], source="test"
    )
    assert services.bars_flush() == 2
    first, second = PriceBar.objects.filter(symbol="AAA").order_by("start")
    assert (first.open, first.high, first.low, first.close, first.volume, first.ticks) == (
        Decimal(100), Decimal(103), Decimal(99), Decimal(99), Decimal(350), 3,
    )  # fmt: skip
    assert first.security == book["securities"]["AAA"] and first.seconds == 60
    assert (second.open, second.close, second.ticks) == (Decimal(101), Decimal(101), 1)
    assert Price.objects.get(security__ticker="AAA", as_of=second.last_at.date()).price == Decimal(
        101
    )
    assert PriceBar.objects.count() == 2  # bars, not ticks


def test_average_daily_volume_from_bars(book, quote_store):
    now = timezone.now()
    for days, size in ((1, 1000), (2, 3000), (30, 99999)):
        at = now - timedelta(days=days)
        services.quotes_apply([tick("AAA", 100.0, at=at, size=size)], source="test", now=now)
        services.bars_flush()
    adv = selectors.average_daily_volume([book["securities"]["AAA"].pk], days=20)
    assert adv == {book["securities"]["AAA"].pk: 2000.0}


def test_fx_quotes_crosses_and_their_freshness(book, quote_store, settings):
    settings.OMS_QUOTE_MAX_AGE = settings.OMS_QUOTE_MAX_AGE | {"fx": 60}
    now = timezone.now()
    FxRate.objects.all().delete()
    services.quotes_apply(
        [
            Quote("EUR/USD", "EBS", now - timedelta(seconds=10), 1.0849, 1.0851, None),
            Quote("USD/JPY", "EBS", now - timedelta(seconds=120), 149.99, 150.01, None),
        ],
        source="test",
    )
    eur_usd = selectors.fx_rate("USD", "EUR")
    assert eur_usd.rate == pytest.approx(1 / 1.085) and eur_usd.freshness == Freshness.FRESH
    cross = selectors.fx_rate("EUR", "JPY")
    assert cross.rate == pytest.approx(1.085 * 150.0)
    assert (
        cross.legs == ("EUR/USD", "USD/JPY") and cross.freshness == Freshness.STALE
    )  # the yen leg
    assert selectors.fx_rate("CHF", "JPY").freshness == Freshness.MISSING
    services.bars_flush()
    assert FxRate.objects.get(currency="EUR", quote="USD").rate == Decimal("1.085")


def test_the_quotes_topic_is_published_on_redis(
    book, quote_store, settings, django_capture_on_commit_callbacks
):
    if not settings.REDIS_URL:
        pytest.skip("no Redis")
    import redis

    settings.OMS_PUSH_REDIS_URL = settings.REDIS_URL
    client = redis.Redis.from_url(settings.REDIS_URL)
    subscription = client.pubsub()
    from oms import push

    subscription.subscribe(push.channel("quotes"))
    subscription.get_message(timeout=1)  # the subscribe confirmation
    with django_capture_on_commit_callbacks(execute=True):
        services.quotes_apply([tick("AAA", 100.5)], source="test")
    message = subscription.get_message(timeout=2)
    import json

    payload = json.loads(message["data"])
    assert payload["q"]["AAA"][:3] == [100.5, 100.45, 100.55]
    subscription.close()


def test_a_push_replay_says_what_moved_from_the_bars(book, quote_store):
    since = timezone.now() - timedelta(seconds=1)
    services.quotes_apply([tick("AAA", 100.5), tick("BBB", 50.5)], source="test")
    services.bars_flush()
    (event,) = selectors.quote_changes(since)
    assert set(event["q"]) == {"AAA", "BBB"} and event["q"]["AAA"][0] == 100.5


def test_a_first_quote_is_measured_from_the_price_in_the_database(book, quote_store):
    """Probing posted $1 for a $100 stock dated far ahead; with an empty store it is
    still measured from the day's price, and quarantined."""
    (held,) = services.quotes_apply([tick("AAA", 1.0)], source="probe").quarantined
    assert held.reason.startswith("1 is 99% from the last accepted 100")


def test_the_days_prices_may_be_written_less_often_than_the_bars(book, quote_store):
    services.quotes_apply([tick("AAA", 104.0)], source="test")
    services.bars_flush(daily=False)
    assert PriceBar.objects.filter(symbol="AAA").exists()
    today = timezone.now().date()
    assert Price.objects.get(security__ticker="AAA", as_of=today).price == Decimal("100")
    services.bars_flush()  # nothing new in the bars: the day's price still follows them
    assert Price.objects.get(security__ticker="AAA", as_of=today).price == Decimal("104")
