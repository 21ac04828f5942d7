"""The demo ships a rule book: tried as a new user would, a hand-entered buy of
1,000,000 AAPL in a $527k account was approved, released, filled and booked, leaving the
account at -217 million USD. Now it is rejected before it can be approved, while the
demo's own rebalance of every account still goes through."""

from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from compliance.models import RestrictedList, Rule
from config.demo import DEMO_RULES, load_demo_data
from orchestration import services as run_services
from portfolios.models import Portfolio, Security
from trading.models import Order
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    load_demo_data()
    return get_user_model().objects.get(username="pm")


def test_the_demo_loads_its_rule_book_through_the_services(demo):
    assert set(Rule.objects.values_list("name", flat=True)) == {r[0] for r in DEMO_RULES}
    firm = RestrictedList.objects.get(name="Firm restricted")
    assert {str(e) for e in firm.entries.all()} == {"INTC", "issuer Bank of America Corp."}
    # a second load finds it there
    assert load_demo_data()["rules"] == 0


def test_a_fat_finger_buy_is_rejected_before_approval(demo):
    account = Portfolio.objects.get(code="ACC001")
    order = order_services.order_create(
        actor=demo,
        portfolio=account,
        security=Security.objects.get(ticker="AAPL"),
        side="buy",
        quantity=Decimal(1_000_000),
    )
    order_services.orders_approve(actor=demo, order_ids=[order.pk])
    order.refresh_from_db()
    assert order.status == Order.Status.REJECTED
    assert order.approved_by is None
    assert order.compliance_note.startswith("Rejected: Maximum order value $1m")
    with pytest.raises(ValidationError, match="rejected by compliance"):
        order_services.orders_release(actor=demo, order_ids=[order.pk])


def test_the_demo_rebalance_goes_through(demo):
    # every account of the demo PM (MULTI01, the multi-asset account, is pm2's)
    run = run_services.rebalance_run_create(
        actor=demo, portfolios=list(Portfolio.objects.filter(manager=demo))
    )
    assert run.orders.count() > 20
    run_services.rebalance_run_approve(actor=demo, run_id=run.pk)
    assert set(run.orders.values_list("status", flat=True)) == {Order.Status.APPROVED}
    run_services.rebalance_run_release(actor=demo, run_id=run.pk)
    assert Counter(run.orders.values_list("status", flat=True)) == {
        Order.Status.RELEASED: run.orders.count()
    }
    # the firm's restricted list fed the run's do-not-buy list
    assert not run.orders.filter(security__ticker__in=["INTC", "BAC"], side="buy").exists()


def test_the_demo_has_government_securities_and_its_funds_are_not_ones(demo):
    government = set(Security.objects.filter(government=True).values_list("ticker", flat=True))
    assert government == {"UST10", "DBR34", "T4.375-2034"}
    # the Treasury ETFs are funds: a UCITS or 1940 Act test does not look through them
    assert not Security.objects.filter(ticker__in=["TLT", "SHY", "EUNH"], government=True)


def test_the_demo_bonds_and_derivatives_are_valued_and_orderable(demo):
    from django.utils import timezone

    from portfolios.quotes import positions_valued
    from portfolios.terms import unit_value

    account = Portfolio.objects.get(code="MULTI01")
    rows = {r.security.asset_class: r for r in positions_valued(account)["rows"]}
    assert set(rows) == {"bond", "future", "option"}
    for row in positions_valued(account)["rows"]:
        price = row.reading.price
        expected = row.quantity * unit_value(row.security, price, timezone.localdate())
        assert row.value == expected.quantize(Decimal("0.01"))
    treasury = next(r for r in positions_valued(account)["rows"] if r.security.government)
    # 100,000 face: about 99,000 clean, plus interest accrued since the last coupon
    assert treasury.value > treasury.quantity * treasury.reading.price / 100
    # a PM can order each (the ACC001 account is the demo PM's)
    for security in Security.objects.filter(asset_class__in=["bond", "future", "option"]):
        quantity = max(security.min_quantity, security.round_lot)
        order_services.order_create(
            actor=demo,
            portfolio=Portfolio.objects.get(code="ACC001"),
            security=security,
            side="buy",
            quantity=quantity,
        )


def test_pm2_can_order_the_demo_fx_spot_and_forward_and_the_rule_book_checks_them(demo):
    """MULTI01 trades EUR/USD spot and a three-month outright (decision 41): the
    pre-trade check runs on each (a euro amount at its rate in dollars) and approves it."""
    pm2 = get_user_model().objects.get(username="pm2")
    account = Portfolio.objects.get(code="MULTI01")
    fx = (
        Security.objects.with_latest_price()
        .filter(asset_class__in=["fx_spot", "fx_forward"])
        .order_by("ticker")
    )
    assert [s.asset_class for s in fx] == ["fx_spot", "fx_forward"]
    assert all(s.base_currency == "EUR" and s.currency == "USD" for s in fx)
    spot, forward = fx
    assert forward.latest_price - spot.latest_price == Decimal("0.0045")  # 45 points
    orders = [
        order_services.order_create(
            actor=pm2, portfolio=account, security=security, side=side, quantity=Decimal(50_000)
        )
        for security, side in ((spot, "buy"), (forward, "sell"))
    ]
    order_services.orders_approve(actor=pm2, order_ids=[o.pk for o in orders])
    for order in orders:
        order.refresh_from_db()
        assert order.status == Order.Status.APPROVED, order.compliance_note
