"""The lots a run's sell takes are the lots booked when it fills (issue 13, item 4): a run
choosing the highest-cost lots or the least tax proposes its sells, and the fills (the
in-worker simulated broker, then allocation) close those lots and store what each
realised (`LotClosing`), equal to the gains the proposal estimated; a bust reopens the
same lots; the wash-sale rule and the next run read the stored loss."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from compliance.models import PretradeResult, Rule
from orchestration import services as run_services
from portfolios.models import LotClosing, Position, TaxLot
from portfolios.selectors import realised_pnl
from portfolios.services.holdings import Fill, holdings_book_fills
from trading.models import Allocation, Block, Broker, FixInbox, FixSession, Order
from trading.services import breaks as break_services
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()


def _lots(account, security, lots):
    """Replace the account's lots of the security: ``(quantity, unit cost, days ago)``."""
    TaxLot.objects.filter(portfolio=account, security=security).delete()
    made = [
        TaxLot.objects.create(
            portfolio=account,
            security=security,
            quantity=Decimal(q),
            original_quantity=Decimal(q),
            unit_cost=Decimal(cost),
            acquired_on=TODAY - timedelta(days=days),
        )
        for q, cost, days in lots
    ]
    Position.objects.filter(portfolio=account, security=security).update(
        quantity=sum(Decimal(q) for q, _, _ in lots)
    )
    return made


@pytest.fixture
def aaa_lots(book):
    """ACC1's 600 AAA (at 100) in four lots of 150: long term at 30 (gain 70 a share,
    taxed at 20%), short term at 120 (a loss), short term at 85 (gain 15 at 37%: 5.55
    of tax a share) and long term at 75 (gain 25 at 20%: 5.00). Highest cost first is
    120, 85, 75, 30; least tax first is 120, 75, 85, 30; first in, first out is 30 first."""
    acc1 = book["accounts"][0]
    aaa = book["securities"]["AAA"]
    oldest, loss, short_gain, long_gain = _lots(
        acc1, aaa, [(150, 30, 800), (150, 120, 100), (150, 85, 60), (150, 75, 500)]
    )
    return {
        "account": acc1,
        "security": aaa,
        "oldest": oldest,
        "loss": loss,
        "short_gain": short_gain,
        "long_gain": long_gain,
    }


def _run_and_fill(pm, trader, book, accounts, parameters, capture):
    """Propose, approve and release a run, route every block to the simulated broker
    (filled in the worker at the latest price) and allocate."""
    run = run_services.rebalance_run_create(actor=pm, portfolios=accounts, parameters=parameters)
    assert run.status == "proposed", run.error
    run_services.rebalance_run_approve(actor=pm, run_id=run.pk)
    run_services.rebalance_run_release(actor=pm, run_id=run.pk)
    for block in Block.objects.filter(orders__rebalance_run=run).distinct():
        with capture(execute=True):
            route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
        assert Block.objects.get(pk=block.pk).status == Block.Status.ALLOCATED
    run.refresh_from_db()
    return run


def _closed(account, security) -> dict:
    """lot id → quantity its closings still hold (reversals netted)."""
    rows = (
        LotClosing.objects.filter(portfolio=account, security=security)
        .values("lot_id")
        .annotate(q=Sum("quantity"))
    )
    return {r["lot_id"]: r["q"] for r in rows if r["q"]}


def _booked_gains(account) -> dict:
    rows = (
        LotClosing.objects.filter(portfolio=account).values("term").annotate(g=Sum("realised_gain"))
    )
    gains = {r["term"]: float(r["g"]) for r in rows}
    return {"short": gains.get("short", 0.0), "long": gains.get("long", 0.0)}


def _aaa_sell(run, account) -> Order:
    return run.orders.get(portfolio=account, security__ticker="AAA", side="sell")


@pytest.mark.parametrize(
    ("method", "second"),
    [("hifo", "short_gain"), ("min_tax", "long_gain")],
)
def test_a_run_sells_the_lots_it_chose_and_books_the_gain_it_estimated(
    pm, trader, book, aaa_lots, method, second, eager_celery, django_capture_on_commit_callbacks
):
    acc1, aaa = aaa_lots["account"], aaa_lots["security"]
    run = _run_and_fill(
        pm,
        trader,
        book,
        [acc1],
        {"lot_selection": method, "wash_sale_days": 0},
        django_capture_on_commit_callbacks,
    )
    sell = _aaa_sell(run, acc1)
    assert sell.lot_method == method and sell.lots  # the run's choice is on the order
    assert sell.status == Order.Status.ALLOCATED
    sold = sell.quantity
    assert 150 < sold < 300  # the test's premise: the first lot and part of the second
    # the lots closed are the ones the method ranks first, not the oldest (FIFO)
    assert _closed(acc1, aaa) == {
        aaa_lots["loss"].pk: Decimal(150),
        aaa_lots[second].pk: sold - 150,
    }
    aaa_lots["oldest"].refresh_from_db()
    assert aaa_lots["oldest"].quantity == 150
    # what was booked is what the proposal estimated, short and long term
    estimate = run.summary[acc1.code]
    booked = _booked_gains(acc1)
    assert booked["short"] == pytest.approx(estimate["short_term_gain"], abs=0.01)
    assert booked["long"] == pytest.approx(estimate["long_term_gain"], abs=0.01)
    # and the realised P&L selector gives the same, in the account's base currency
    pnl = realised_pnl([acc1.pk])[acc1.pk]
    assert pnl.currency == "USD"
    assert float(pnl.total) == pytest.approx(estimate["realised_gain"], abs=0.01)
    assert realised_pnl([acc1.pk], since=TODAY + timedelta(days=1)) == {}


def test_fifo_is_the_default_and_a_hand_entered_sell_takes_its_own_method(
    pm, trader, book, aaa_lots, eager_celery, django_capture_on_commit_callbacks
):
    """A run's hifo sell and a hand-entered fifo sell of the same security share one
    block; allocation closes each account's lots by its own order's method."""
    acc1, acc2 = book["accounts"]
    aaa = aaa_lots["security"]
    old2, new2 = _lots(acc2, aaa, [(50, 30, 900), (50, 150, 40)])
    manual = order_services.order_create(
        actor=pm, portfolio=acc2, security=aaa, side="sell", quantity=Decimal(60)
    )
    assert manual.lot_method == "fifo"
    order_services.orders_approve(actor=pm, order_ids=[manual.pk])
    run = run_services.rebalance_run_create(
        actor=pm, portfolios=[acc1], parameters={"lot_selection": "hifo", "wash_sale_days": 0}
    )
    run_services.rebalance_run_approve(actor=pm, run_id=run.pk)
    run_services.rebalance_run_release(actor=pm, run_id=run.pk)
    order_services.orders_release(actor=pm, order_ids=[manual.pk])
    manual.refresh_from_db()
    sell = _aaa_sell(run, acc1)
    assert manual.block_id == sell.block_id  # one block, two methods
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_create(actor=trader, block_id=sell.block_id, broker=book["broker"])
    assert _closed(acc2, aaa) == {old2.pk: Decimal(50), new2.pk: Decimal(10)}
    assert aaa_lots["loss"].pk in _closed(acc1, aaa)
    assert aaa_lots["oldest"].pk not in _closed(acc1, aaa)


def test_a_hand_entered_sell_may_choose_hifo_but_a_buy_may_not(pm, book):
    acc1 = book["accounts"][0]
    order = order_services.order_create(
        actor=pm,
        portfolio=acc1,
        security=book["securities"]["AAA"],
        side="sell",
        quantity=Decimal(10),
        lot_method="hifo",
    )
    assert order.lot_method == "hifo"
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="sells only"):
        order_services.order_create(
            actor=pm,
            portfolio=acc1,
            security=book["securities"]["AAA"],
            side="buy",
            quantity=Decimal(10),
            lot_method="hifo",
        )
    with pytest.raises(ValidationError, match="not one of"):
        order_services.order_create(
            actor=pm,
            portfolio=acc1,
            security=book["securities"]["AAA"],
            side="sell",
            quantity=Decimal(10),
            lot_method="lifo",
        )
    assert Order.objects.filter(portfolio=acc1).count() == 1


def test_booking_by_method_alone_closes_the_highest_cost_or_least_tax_lots(book, aaa_lots):
    """Without specific lots (a hand-entered order), the method decides at booking."""
    acc1, aaa = aaa_lots["account"], aaa_lots["security"]
    fill = Fill(portfolio_id=acc1.pk, buying=False, quantity=Decimal(200), price=Decimal(100))
    from django.db import transaction

    for method, second in (("hifo", "short_gain"), ("min_tax", "long_gain")):
        with transaction.atomic():
            sid = transaction.savepoint()
            holdings_book_fills(
                security=aaa,
                fills=[Fill(**(fill.__dict__ | {"lot_method": method}))],
                on_date=TODAY,
            )
            assert _closed(acc1, aaa) == {
                aaa_lots["loss"].pk: Decimal(150),
                aaa_lots[second].pk: Decimal(50),
            }
            transaction.savepoint_rollback(sid)
    holdings_book_fills(security=aaa, fills=[fill], on_date=TODAY)  # fifo
    assert _closed(acc1, aaa) == {
        aaa_lots["oldest"].pk: Decimal(150),
        aaa_lots["long_gain"].pk: Decimal(50),
    }
    rows = {r.lot_id: r for r in LotClosing.objects.filter(portfolio=acc1)}
    oldest = rows[aaa_lots["oldest"].pk]
    assert (oldest.term, oldest.realised_gain, oldest.closed_on) == ("long", Decimal(10500), TODAY)


def test_a_lot_sold_on_its_anniversary_is_short_term(book):
    acc1 = book["accounts"][0]
    aaa = book["securities"]["AAA"]
    year_ago = (
        TODAY.replace(year=TODAY.year - 1) if not (TODAY.month == 2 and TODAY.day == 29) else None
    )
    if year_ago is None:
        pytest.skip("today has no anniversary a year back")
    _lots(acc1, aaa, [(10, 50, (TODAY - year_ago).days), (10, 50, (TODAY - year_ago).days + 1)])
    holdings_book_fills(
        security=aaa,
        fills=[Fill(portfolio_id=acc1.pk, buying=False, quantity=Decimal(20), price=Decimal(100))],
        on_date=TODAY,
    )
    terms = dict(LotClosing.objects.filter(portfolio=acc1).values_list("lot__acquired_on", "term"))
    assert terms == {year_ago: "short", year_ago - timedelta(days=1): "long"}


# --- a bust -----------------------------------------------------------------------------


@pytest.fixture
def fix_sold(pm, trader, book, aaa_lots, eager_celery, django_capture_on_commit_callbacks):
    """A hifo run's AAA sell for ACC1 routed to a FIX broker, filled in one report
    (F1 at 100) and allocated."""
    from trading.brokers import ExecutionReport
    from trading.services import executions as execution_services

    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    session = FixSession.objects.create(
        broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=1
    )
    acc1 = aaa_lots["account"]
    run = run_services.rebalance_run_create(
        actor=pm, portfolios=[acc1], parameters={"lot_selection": "hifo", "wash_sale_days": 0}
    )
    run_services.rebalance_run_approve(actor=pm, run_id=run.pk)
    run_services.rebalance_run_release(actor=pm, run_id=run.pk)
    sell = _aaa_sell(run, acc1)
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=sell.block_id, broker=broker)
    with django_capture_on_commit_callbacks(execute=True):
        execution_services.execution_apply(
            ExecutionReport(
                broker="FIXB",
                cl_ord_id=route.cl_ord_id,
                exec_id="F1",
                exec_type="trade",
                ord_status="filled",
                transact_time=timezone.now(),
                last_quantity=route.quantity,
                last_price=Decimal(100),
            )
        )
    assert Block.objects.get(pk=sell.block_id).status == Block.Status.ALLOCATED
    return {"route": route, "session": session, "sell": sell, **aaa_lots}


def _bust(fix_sold) -> FixInbox:
    from trading.brokers import fixmap
    from trading.fix.codec import Message

    route = fix_sold["route"]
    body = {37: "O1", 17: "B1", 39: "4", 55: "AAA", 54: "2", 11: route.cl_ord_id}
    body.update({150: "H", 19: "F1", 32: str(route.quantity), 31: "100"})
    msg = Message("8", sorted(body.items()), begin_string="FIX.4.4", header=[(34, "7")])
    try:
        fixmap.report_from_execution_report(msg, broker_code="FIXB", cl_ord_id="x")
    except fixmap.TradeCorrection as exc:
        error = str(exc)
    return FixInbox.objects.create(
        session=fix_sold["session"],
        generation=1,
        seq_num=7,
        msg_type="8",
        raw=msg.encode(),
        status=FixInbox.Status.NOT_APPLIED,
        error=error,
    )


def test_a_bust_reopens_the_lots_the_sale_closed_and_offsets_its_closings(fix_sold, ops):
    acc1, aaa = fix_sold["account"], fix_sold["security"]
    closed = _closed(acc1, aaa)
    assert set(closed) == {fix_sold["loss"].pk, fix_sold["short_gain"].pk}
    before = LotClosing.objects.count()
    break_services.correction_apply(actor=ops, inbox_id=_bust(fix_sold).pk)
    # every lot is whole again, the oldest untouched throughout
    assert {
        lot.pk: lot.quantity for lot in TaxLot.objects.filter(portfolio=acc1, security=aaa)
    } == {fix_sold[k].pk: Decimal(150) for k in ("oldest", "loss", "short_gain", "long_gain")}
    # the trail is kept: one reversing row per closing, naming it, and the sums are zero
    reversing = LotClosing.objects.filter(reverses__isnull=False)
    assert reversing.count() == before == LotClosing.objects.count() - before
    assert _closed(acc1, aaa) == {}
    assert realised_pnl([acc1.pk])[acc1.pk].total == 0
    assert not Allocation.objects.filter(order=fix_sold["sell"]).exists()
    # the trail names the lots: closed at allocation, reopened by the bust
    from audit.models import AuditEvent

    sell = str(fix_sold["sell"].pk)
    allocated = AuditEvent.objects.get(kind="order.allocated", object_id=sell)
    reversed_ = AuditEvent.objects.get(kind="allocation.reversed", object_id=sell)
    named = {lot: Decimal(q) for lot, q in allocated.after["lots_closed"]}
    assert named == closed
    assert {lot: Decimal(q) for lot, q in reversed_.after["lots_reopened"]} == named


# --- the wash-sale rule reads what was booked ------------------------------------------


def test_the_wash_sale_rule_sees_the_loss_the_hifo_sale_booked(
    pm, trader, compliance_officer, book, aaa_lots, eager_celery, django_capture_on_commit_callbacks
):
    """Under FIFO the sale would have closed the lot at 30 (a gain): the rule would see
    no loss. Booked by HIFO it closed the lot at 120 first: a loss of 3,000 on it."""
    from compliance.services import rules as rule_services

    acc1, aaa = aaa_lots["account"], aaa_lots["security"]
    # the whole loss lot and nothing else: a sale of 150 at 100 realises -3,000
    manual = order_services.order_create(
        actor=pm,
        portfolio=acc1,
        security=aaa,
        side="sell",
        quantity=Decimal(150),
        lot_method="hifo",
    )
    order_services.orders_approve(actor=pm, order_ids=[manual.pk])
    order_services.orders_release(actor=pm, order_ids=[manual.pk])
    manual.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_create(actor=trader, block_id=manual.block_id, broker=book["broker"])
    assert _booked_gains(acc1) == {"short": -3000.0, "long": 0.0}
    rule = rule_services.rule_create(
        actor=compliance_officer,
        name="Wash",
        kind="wash_sale",
        params={"days": 30},
        severity="warning",
    )
    buy = order_services.order_create(
        actor=pm, portfolio=acc1, security=aaa, side="buy", quantity=Decimal(1)
    )
    order_services.orders_approve(actor=pm, order_ids=[buy.pk])
    assert PretradeResult.objects.get(order=buy, rule=rule).status == "warn"
    assert Rule.objects.filter(pk=rule.pk).exists()
    # and a run over the account does not buy AAA back inside the window
    order_services.order_cancel(actor=pm, order_id=buy.pk, reason="test")
    run = run_services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert run.status == "proposed", run.error
    assert not run.orders.filter(security=aaa, side="buy").exists()
