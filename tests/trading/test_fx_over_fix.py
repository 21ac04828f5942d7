"""An FX forward and an FX spot order over FIX 4.4 to our simulator, filled at the rate
and allocated as two cash legs on the value date (issue 12, items 7 and 8; decision 41).

FIX 4.4 names a currency trade SecurityType FOR ("Foreign Exchange Contract"; FXSPOT and
FXFWD only arrive with FIX 5.0 SP2): the dealt currency goes in Currency (15), the value
date in SettlDate (64), and SettlType (63) says spot, 0 "Regular", or forward, 6
"Future" (the FIX 4.4 data dictionary, fields 15, 63, 64 and 167).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from portfolios import terms
from portfolios.instruments import joint_calendar
from portfolios.models import CashBalance, CashMovement, Position
from tests.portfolios.test_fx_settlement import fx_forward, fx_spot
from tests.trading.test_fix_gateway import (  # noqa: F401 (an autouse fixture)
    _filled,
    _orm_in_event_loop,
    _route,
    _trade_until,
)
from trading.brokers import fixmap
from trading.fix.codec import decode
from trading.models import (
    Allocation,
    Block,
    Broker,
    FixMessage,
    FixOutbox,
    FixSession,
    Order,
    Route,
)
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


@pytest.fixture
def fix_broker(book):
    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    FixSession.objects.create(broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=1)
    return Broker.objects.select_related("fix_session").get(pk=broker.pk)


def _released(pm, account, security, quantity, **terms_) -> Order:
    order = order_services.order_create(
        actor=pm, portfolio=account, security=security, side="buy", quantity=D(quantity), **terms_
    )
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    return order


def _sent(broker) -> dict:
    """The NewOrderSingle the gateway sent, tag -> value."""
    row = FixOutbox.objects.get()
    raw = FixMessage.objects.get(session=broker.fix_session, seq_num=row.seq_num).raw
    message = decode(bytes(raw))
    return {tag: message.get(tag) for tag in (15, 38, 63, 64, 167)}


def test_an_fx_forward_goes_out_as_for_with_its_value_date_and_is_allocated_in_two_legs(
    ops, pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    # a GBP/USD outright about three months out, on a day both currencies settle
    spot = fx_spot(ops, "GBPUSD", "GBP", rate="1.6000")
    spot_date = terms.settlement_date(spot, timezone.localdate())
    both = joint_calendar(terms.currency_calendar("GBP"), terms.currency_calendar("USD"))
    value_date = both.roll(spot_date + timedelta(days=91))
    cable = fx_forward(ops, value_date, rate="1.6005")  # 1.6000 + 5 points (ACT wiki)
    account = book["accounts"][0]
    usd = CashBalance.objects.get(portfolio=account, currency="USD").amount
    order = _released(pm, account, cable, "250000")
    route = _route(trader, order.block, fix_broker, django_capture_on_commit_callbacks)

    _trade_until(fix_broker, _filled(route), django_capture_on_commit_callbacks)

    sent = _sent(fix_broker)
    assert sent[fixmap.SECURITY_TYPE] == "FOR"
    assert sent[fixmap.CURRENCY] == "GBP"
    assert sent[fixmap.SETTL_TYPE] == "6"  # future: a forward for SettlDate
    assert sent[fixmap.SETTL_DATE] == value_date.strftime("%Y%m%d")
    route.refresh_from_db()
    assert route.status == Route.Status.FILLED and route.average_price == D("1.6005")
    order.refresh_from_db()
    assert order.status == Order.Status.ALLOCATED
    assert Block.objects.get(pk=order.block_id).status == Block.Status.ALLOCATED
    allocation = Allocation.objects.get(order=order)
    legs = {
        (m.currency, m.amount, m.value_date)
        for m in CashMovement.objects.filter(allocation_id=allocation.pk)
    }
    # 250,000 pounds bought at 1.6005 dollars a pound: 400,125.00 dollars
    assert legs == {("GBP", D(250_000), value_date), ("USD", D(-400_125), value_date)}
    assert CashBalance.objects.get(portfolio=account, currency="GBP").amount == D(250_000)
    assert CashBalance.objects.get(portfolio=account, currency="USD").amount == usd - 400_125
    assert not Position.objects.filter(security=cable).exists()


def test_an_fx_spot_goes_out_as_a_regular_settlement_on_the_spot_date(
    ops, pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    eurusd = fx_spot(ops)
    order = _released(
        pm, book["accounts"][0], eurusd, "1000.25", order_type="limit", limit_price=D("1.0930")
    )
    route = _route(trader, order.block, fix_broker, django_capture_on_commit_callbacks)

    _trade_until(fix_broker, _filled(route), django_capture_on_commit_callbacks)

    sent = _sent(fix_broker)
    spot = terms.settlement_date(eurusd, timezone.localdate())
    assert (sent[fixmap.SECURITY_TYPE], sent[fixmap.CURRENCY]) == ("FOR", "EUR")
    assert (sent[fixmap.SETTL_TYPE], sent[fixmap.SETTL_DATE]) == ("0", spot.strftime("%Y%m%d"))
    assert sent[38] == "1000.25"  # the euro amount, to the cent
    route.refresh_from_db()
    assert route.filled_quantity == D("1000.25")
    allocation = Allocation.objects.get(order=order)
    assert {m.value_date for m in CashMovement.objects.filter(allocation_id=allocation.pk)} == {
        spot
    }
