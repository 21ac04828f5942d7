"""What the pre-trade check reads beyond holdings and prices: the sales realised at a
loss (wash_sale), the average daily volume from the bars (max_adv_pct) and the
government flag of a security (ucits_5_10_40, diversified_fund); and that a batch
with all of them still takes a fixed number of queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.models import PretradeResult
from compliance.services import rules as rule_services
from portfolios.models import LotClosing, PriceBar, Security
from portfolios.services import reference
from tests.desk import approved, new_order
from trading import pretrade
from trading.models import Allocation, Block, Order
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


def _trade(pm, trader, book, account, ticker, quantity, side, capture):
    """Trade an order through the desk to the simulated broker, filled and allocated."""
    order = approved(pm, new_order(pm, account, book["securities"][ticker], quantity, side))
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    with capture(execute=True):
        route_services.route_create(actor=trader, block_id=order.block_id, broker=book["broker"])
    assert Block.objects.get(pk=order.block_id).status == Block.Status.ALLOCATED
    return order


def _rule(officer, name, kind, params=None, severity=None):
    return rule_services.rule_create(
        actor=officer, name=name, kind=kind, params=params or {}, severity=severity
    )


# --- wash_sale -------------------------------------------------------------------------


@pytest.fixture
def wash_rule(compliance_officer):
    return _rule(compliance_officer, "Wash sale", "wash_sale", {"days": 30})


def test_a_buy_after_a_sale_at_a_loss_is_warned_and_goes_through(
    pm, trader, book, wash_rule, eager_celery, django_capture_on_commit_callbacks
):
    acc1 = book["accounts"][0]
    # EEE was bought at 30 and is at 10: selling 100 realises a loss of 2,000
    _trade(pm, trader, book, acc1, "EEE", 100, "sell", django_capture_on_commit_callbacks)
    order = approved(pm, new_order(pm, acc1, book["securities"]["EEE"], 10))
    assert order.status == Order.Status.APPROVED  # a warning blocks nothing
    [result] = PretradeResult.objects.filter(order=order, rule=wash_rule)
    assert (result.status, result.value, result.limit) == ("warn", 0.0, 30.0)
    assert result.group == "EEE"
    assert result.message == (
        "Wash sale: EEE was sold at a loss today, within the 30-day wash-sale window"
    )
    assert "Wash sale" in order.compliance_note
    # the other account sold nothing: its buy of EEE passes
    other = approved(pm, new_order(pm, book["accounts"][1], book["securities"]["EEE"], 10))
    assert PretradeResult.objects.get(order=other, rule=wash_rule).status == "pass"


def test_a_sale_at_a_gain_or_outside_the_window_is_no_wash_sale(
    pm, trader, book, wash_rule, eager_celery, django_capture_on_commit_callbacks
):
    acc1 = book["accounts"][0]
    # AAA was bought at 30 and is at 100: a gain
    _trade(pm, trader, book, acc1, "AAA", 50, "sell", django_capture_on_commit_callbacks)
    order = approved(pm, new_order(pm, acc1, book["securities"]["AAA"], 5))
    assert PretradeResult.objects.get(order=order, rule=wash_rule).status == "pass"
    # a loss 31 days ago is outside a 30-day window (the booking is dated back)
    sale = _trade(pm, trader, book, acc1, "EEE", 100, "sell", django_capture_on_commit_callbacks)
    back = timezone.now() - timedelta(days=31, hours=1)
    Allocation.objects.filter(order=sale).update(created_at=back)
    LotClosing.objects.filter(allocation_id=sale.allocation.pk).update(
        created_at=back, closed_on=back.date()
    )
    order = approved(pm, new_order(pm, acc1, book["securities"]["EEE"], 5))
    assert PretradeResult.objects.get(order=order, rule=wash_rule).status == "pass"


def test_the_loss_is_measured_against_the_lots_the_sale_closed_first_in_first_out(
    pm, trader, book, wash_rule, eager_celery, django_capture_on_commit_callbacks
):
    from portfolios.models import TaxLot

    acc1 = book["accounts"][0]
    # BBB (at 50): the 100 held were bought at 30 long ago; a newer lot of 100 at 80.
    TaxLot.objects.create(
        portfolio=acc1,
        security=book["securities"]["BBB"],
        quantity=100,
        original_quantity=100,
        unit_cost=Decimal(80),
        acquired_on=timezone.now().date() - timedelta(days=100),
    )
    from portfolios.models import Position

    Position.objects.filter(portfolio=acc1, security__ticker="BBB").update(quantity=200)
    # the first sale closes the old lot (a gain of 2,000): no wash sale
    _trade(pm, trader, book, acc1, "BBB", 100, "sell", django_capture_on_commit_callbacks)
    order = approved(pm, new_order(pm, acc1, book["securities"]["BBB"], 1))
    assert PretradeResult.objects.get(order=order, rule=wash_rule).status == "pass"
    order_services.order_cancel(actor=pm, order_id=order.pk, reason="test")
    # the second closes the lot at 80 (a loss of 3,000): a wash sale
    _trade(pm, trader, book, acc1, "BBB", 50, "sell", django_capture_on_commit_callbacks)
    order = approved(pm, new_order(pm, acc1, book["securities"]["BBB"], 1))
    assert PretradeResult.objects.get(order=order, rule=wash_rule).status == "warn"


# --- max_adv_pct -----------------------------------------------------------------------


def _bars(security, volumes):
    now = timezone.now()
    for days, volume in volumes:
        at = now - timedelta(days=days)
        PriceBar.objects.create(
            symbol=security.ticker,
            security=security,
            start=at,
            seconds=60,
            open=100,
            high=100,
            low=100,
            close=100,
            volume=Decimal(volume),
            ticks=1,
            first_at=at,
            last_at=at,
        )


@pytest.mark.parametrize(
    ("quantity", "status"),
    [(99, "approved"), (100, "approved"), (101, "rejected")],
    ids=["under", "at", "over"],
)
def test_max_adv_pct_reads_the_average_daily_volume_from_the_bars(
    pm, compliance_officer, book, quantity, status
):
    aaa = book["securities"]["AAA"]
    # two days of 600 and 1,400 (ADV 1,000); a bar older than the window does not count
    _bars(aaa, [(1, 600), (2, 1400), (40, 1_000_000)])
    rule = _rule(compliance_officer, "ADV 10%", "max_adv_pct", {"limit": 0.10}, "hard")
    order = approved(pm, new_order(pm, book["accounts"][0], aaa, quantity))
    assert order.status == status
    result = PretradeResult.objects.get(order=order, rule=rule)
    assert result.value == pytest.approx(quantity / 1000)


def test_a_security_without_volume_history_fails_max_adv_pct_and_says_why(
    pm, compliance_officer, book
):
    _bars(book["securities"]["AAA"], [(1, 1000)])
    rule = _rule(compliance_officer, "ADV 10%", "max_adv_pct", {"limit": 0.10}, "soft")
    order = approved(pm, new_order(pm, book["accounts"][0], book["securities"]["BBB"], 1))
    assert order.status == Order.Status.NEEDS_OVERRIDE
    result = PretradeResult.objects.get(order=order, rule=rule)
    assert (result.status, result.value, result.group) == ("fail", None, "BBB")
    assert result.message == (
        "ADV 10%: no volume history for BBB, so the order cannot be shown to be within "
        "10.00% of its average daily volume"
    )
    assert "no volume history for BBB" in order.compliance_note


# --- government securities -------------------------------------------------------------


@pytest.mark.parametrize("government", [False, True])
def test_ucits_leaves_government_securities_out(pm, compliance_officer, book, government):
    # ACC1: NAV 90,000; AAA 60,000 (66.7%), BBB and EEE 5,000 each (5.6%), cash 20,000
    Security.objects.filter(ticker="AAA").update(government=government)
    rule = _rule(compliance_officer, "UCITS", "ucits_5_10_40", severity="hard")
    order = approved(pm, new_order(pm, book["accounts"][0], book["securities"]["AAA"], 10))
    result = PretradeResult.objects.get(order=order, rule=rule)
    if government:
        # left out: BBB and EEE are the issuers above 5%, 11.1% together
        assert order.status == Order.Status.APPROVED
        assert result.status == "pass" and result.value == pytest.approx(10000 / 90000)
    else:
        assert order.status == Order.Status.REJECTED
        # laid on the buy of AAA, the issuer above 10% (the 40% sum is 78.9%)
        assert result.status == "fail" and result.group == str(book["securities"]["AAA"].pk)
        assert result.value == pytest.approx(61000 / 90000)


def _five_issuers_at_8pct(pm, book):
    """An account of NAV 100,000: five issuers at 8,000 each (the 40% sum exactly, no
    issuer above 10%) and 60,000 cash."""
    from portfolios.models import CashBalance, Portfolio, Position, Price

    fff = Security.objects.create(ticker="FFF", name="FFF Corp", currency="USD")
    Price.objects.create(security=fff, as_of=timezone.now().date(), price=Decimal(10))
    holdings = {"AAA": 80, "BBB": 160, "CCC": 400, "EEE": 800}
    account = Portfolio.objects.create(code="UCI", name="UCITS fund", manager=pm)
    for ticker, quantity in holdings.items():
        Position.objects.create(
            portfolio=account, security=book["securities"][ticker], quantity=quantity
        )
    Position.objects.create(portfolio=account, security=fff, quantity=800)
    CashBalance.objects.create(portfolio=account, currency="USD", amount=Decimal(60000))
    for security in Security.objects.all():
        Security.objects.filter(pk=security.pk).update(issuer=f"{security.ticker} Issuer")
    return account


def test_ucits_words_name_the_ten_percent_leg(pm, compliance_officer, book):
    # ACC1: NAV 90,000; AAA 61,000 after the buy (67.8% in one issuer); the issuers
    # above 5% sum to 78.9%: the order is blamed as the issuer above 10%
    Security.objects.filter(ticker="AAA").update(issuer="AAA Issuer")
    rule = _rule(compliance_officer, "UCITS", "ucits_5_10_40", severity="hard")
    order = approved(pm, new_order(pm, book["accounts"][0], book["securities"]["AAA"], 10))
    result = PretradeResult.objects.get(order=order, rule=rule)
    assert result.message == (
        "UCITS: AAA Issuer at 67.78% after, over the limit of 10.00% for one issuer"
    )


def test_ucits_words_name_the_forty_percent_leg(pm, compliance_officer, book):
    account = _five_issuers_at_8pct(pm, book)
    rule = _rule(compliance_officer, "UCITS", "ucits_5_10_40", severity="hard")
    # AAA to 9,000: no issuer above 10%, the issuers above 5% sum to 41%
    order = approved(pm, new_order(pm, account, book["securities"]["AAA"], 10))
    assert order.status == Order.Status.REJECTED
    result = PretradeResult.objects.get(order=order, rule=rule)
    assert result.value == pytest.approx(0.09)
    assert result.message == (
        "UCITS: AAA Issuer at 9.00% after, and the issuers above 5% sum to 41.00%, "
        "over the limit of 40.00%"
    )


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        # one issuer at 16,000 of 108,000 (14.8%); the six above 5%: 48,000 (44.4%)
        (
            {"AAA": 80},
            "UCITS: AAA Issuer at 14.81%, over the limit of 10.00% for one issuer; "
            "the issuers above 5% sum to 44.44%, over the limit of 40.00%",
        ),
        # a sixth issuer at 8,000 of 108,000: 44.4%, none above 10% (7.4% each)
        (
            {"DDD": 200},
            "UCITS: the issuers above 5% sum to 44.44%, over the limit of 40.00%",
        ),
    ],
)
def test_ucits_alert_words_name_the_leg_that_fails(pm, compliance_officer, book, extra, words):
    from compliance.models import Alert
    from compliance.services import posttrade
    from portfolios.models import FxRate, Position

    account = _five_issuers_at_8pct(pm, book)
    FxRate.objects.update(rate=Decimal(1))  # DDD: 200 x 40 EUR = 8,000 USD
    for ticker, quantity in extra.items():
        position, _ = Position.objects.get_or_create(
            portfolio=account, security=book["securities"][ticker]
        )
        Position.objects.filter(pk=position.pk).update(quantity=position.quantity + quantity)
    _rule(compliance_officer, "UCITS", "ucits_5_10_40", severity="hard")
    posttrade.posttrade_check(portfolio_ids=[account.pk], source="nightly")
    alert = Alert.objects.get(portfolio=account)
    assert alert.message == words


@pytest.mark.parametrize("government", [False, True])
def test_diversified_fund_counts_government_securities(pm, compliance_officer, book, government):
    Security.objects.filter(ticker="AAA").update(government=government)
    rule = _rule(compliance_officer, "1940 Act", "diversified_fund", severity="hard")
    order = approved(pm, new_order(pm, book["accounts"][0], book["securities"]["AAA"], 10))
    result = PretradeResult.objects.get(order=order, rule=rule)
    if government:
        # cash 19,000 and AAA 61,000 qualify: 88.9% of 90,000
        assert order.status == Order.Status.APPROVED
        assert result.value == pytest.approx(80000 / 90000)
    else:
        # only the cash qualifies (21.1%): laid on the buy of AAA, which does not qualify
        assert order.status == Order.Status.REJECTED
        assert result.value == pytest.approx(61000 / 90000)


def test_the_government_flag_is_reference_data(ops):
    security = reference.security_create(
        actor=ops,
        ticker="UST10",
        name="US Treasury 4.25% 2034",
        asset_class="fixed_income",
        currency="USD",
        issuer="United States Treasury",
        government=True,
    )
    assert Security.objects.get(pk=security.pk).government is True


# --- queries ---------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 12])
def test_the_feeds_take_a_fixed_number_of_queries(
    pm, trader, compliance_officer, book, count, eager_celery, django_capture_on_commit_callbacks
):
    acc1, acc2 = book["accounts"]
    _trade(pm, trader, book, acc1, "EEE", 100, "sell", django_capture_on_commit_callbacks)
    _trade(pm, trader, book, acc2, "CCC", 100, "sell", django_capture_on_commit_callbacks)
    _bars(book["securities"]["EEE"], [(1, 10_000)])
    _rule(compliance_officer, "Wash", "wash_sale", {"days": 30})
    _rule(compliance_officer, "ADV", "max_adv_pct", {"limit": 1.0}, "warning")
    _rule(compliance_officer, "UCITS", "ucits_5_10_40", severity="warning")
    # buys where a loss was realised (acc1 EEE, acc2 CCC: both bought at 30, now at 10
    # and 20) and where none was
    cycle = [(acc1, "EEE"), (acc2, "CCC"), (acc1, "AAA"), (acc2, "EEE")]
    orders = [
        new_order(pm, cycle[i % 4][0], book["securities"][cycle[i % 4][1]], 1) for i in range(count)
    ]
    locked = list(
        Order.objects.select_related("portfolio", "security").filter(pk__in=[o.pk for o in orders])
    )
    with CaptureQueriesContext(connection) as queries:
        verdicts = pretrade.check(locked, stage="approve", actor=pm)
    assert len(verdicts) == count
    # the nine of a check that loads the rule book (test_pretrade: the rules were just
    # written; five on PostgreSQL, where the check's reads are one round trip and the
    # results another), plus the volumes and the lot closings booked in the window for
    # the pairs bought (one query, however many sales)
    assert len(queries) == (5 if connection.vendor == "postgresql" else 9) + 2
    warned = {o.pk for o in locked if verdicts[o.pk].warned and "Wash" in verdicts[o.pk].warned}
    assert warned == {
        o.pk
        for o in locked
        if (o.portfolio_id, o.security.ticker) in {(acc1.pk, "EEE"), (acc2.pk, "CCC")}
    }


def test_the_rule_book_refuses_a_blocking_wash_sale_rule(compliance_officer):
    from django.core.exceptions import ValidationError

    from compliance.models import Rule

    with pytest.raises(ValidationError) as caught:
        _rule(compliance_officer, "Wash", "wash_sale", {"days": 30}, "hard")
    assert "severity" in caught.value.message_dict
    assert not Rule.objects.exists()


# --- duplicate_order -------------------------------------------------------------------


def test_duplicate_order_measures_the_live_orders_created_at_to_the_microsecond(
    pm, compliance_officer, book
):
    """The other live orders' created_at is read as microseconds worked out by the
    database (and only under ``duplicate_order``): the gap measured is the one between
    the stored timestamps, exactly, within the window and beyond it."""
    rule = _rule(compliance_officer, "Duplicate", "duplicate_order", {"minutes": 5}, "soft")
    acc1 = book["accounts"][0]
    aaa = book["securities"]["AAA"]
    earlier = new_order(pm, acc1, aaa, 1)
    # many other live orders of the account, none of them a duplicate of the next one
    for _ in range(70):
        new_order(pm, acc1, book["securities"]["BBB"], 1, side="sell")
    back = timezone.now() - timedelta(minutes=4, seconds=59, microseconds=123457)
    Order.objects.filter(pk=earlier.pk).update(created_at=back)
    order = approved(pm, new_order(pm, acc1, aaa, 2))
    assert order.status == Order.Status.NEEDS_OVERRIDE
    result = PretradeResult.objects.get(order=order, rule=rule)
    gap = (order.created_at - Order.objects.get(pk=earlier.pk).created_at) / timedelta(minutes=1)
    assert (result.status, result.value) == ("fail", gap)
    # beyond the window: passes, with the gap it measured (the order held for an
    # override is not live)
    Order.objects.filter(pk=earlier.pk).update(created_at=back - timedelta(minutes=1))
    later = approved(pm, new_order(pm, acc1, aaa, 3))
    result = PretradeResult.objects.get(order=later, rule=rule)
    gap = (later.created_at - Order.objects.get(pk=earlier.pk).created_at) / timedelta(minutes=1)
    assert later.status == Order.Status.APPROVED
    assert (result.status, result.value) == ("pass", gap)
