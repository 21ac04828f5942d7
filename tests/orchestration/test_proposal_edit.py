"""Proposal review: edit a proposed order's quantity; the what-if of its account and the
pre-trade check follow; an edit that breaks a rule of the account is refused."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from orchestration import services
from orchestration.models import ProposalCheck
from orchestration.selectors import order_history
from portfolios.models import RebalanceRun
from trading import pretrade

pytestmark = pytest.mark.django_db


@pytest.fixture
def proposed(pm, book):
    acc1, _ = book["accounts"]
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert run.status == RebalanceRun.Status.PROPOSED
    orders = {(o.side, o.security.ticker): o for o in run.orders.select_related("security")}
    return run, orders


def test_edit_a_quantity_recomputes_the_what_if_and_the_check(pm, proposed):
    run, orders = proposed
    sell = orders[("sell", "AAA")]  # ACC1 is overweight AAA
    before = dict(run.summary["ACC1"])
    new_quantity = sell.quantity - 10
    services.rebalance_run_order_edit(
        actor=pm, run_id=run.pk, order_id=sell.pk, quantity=new_quantity
    )
    sell.refresh_from_db()
    run.refresh_from_db()
    assert sell.quantity == new_quantity
    after = run.summary["ACC1"]
    # 10 AAA fewer sold at 100: 1,000 less cash after, and further from the model
    assert after["cash_after"] == pytest.approx(before["cash_after"] - 1000, abs=0.01)
    assert after["drift_after"] > before["drift_after"]
    assert ProposalCheck.objects.filter(order=sell).exists()
    event = AuditEvent.objects.get(kind="orders.quantity_edited")
    assert event.before["quantity"] == str(new_quantity + 10)
    assert event.after["quantity"] == str(new_quantity)
    assert event in order_history(sell)


def test_the_check_runs_again_on_the_account(pm, proposed, monkeypatch):
    run, orders = proposed
    buy = next(o for (side, _), o in orders.items() if side == "buy")
    seen = []

    def checker(batch, *, stage, actor):
        seen.append((stage, sorted(o.pk for o in batch)))
        return {o.pk: pretrade.Verdict("needs_override", ("limit",), (), "too big") for o in batch}

    previous = pretrade.registered()
    pretrade.register(checker)
    try:
        services.rebalance_run_order_edit(
            actor=pm, run_id=run.pk, order_id=buy.pk, quantity=buy.quantity + 1
        )
    finally:
        pretrade.register(previous)
    account_orders = sorted(o.pk for o in orders.values())
    assert seen == [("proposal", account_orders)]
    assert ProposalCheck.objects.get(order=buy).status == "needs_override"


@pytest.mark.parametrize(
    ("pick", "quantity", "words"),
    [
        (("sell", "AAA"), "600.5", "lot"),  # whole shares only
        (("sell", "AAA"), "601", "short sale"),  # ACC1 holds 600
        (None, "100000", "cash floor"),  # a huge buy: below the 500 floor
        (("sell", "AAA"), "0", "more than zero"),
        (("sell", "AAA"), "-5", "more than zero"),
        (("sell", "AAA"), "abc", "a number"),
    ],
)
def test_an_edit_that_breaks_a_rule_is_refused_and_nothing_saved(
    pm, proposed, pick, quantity, words
):
    run, orders = proposed
    order = orders[pick] if pick else next(o for (s, _), o in orders.items() if s == "buy")
    summary = dict(run.summary)
    with pytest.raises(ValidationError) as caught:
        services.rebalance_run_order_edit(
            actor=pm, run_id=run.pk, order_id=order.pk, quantity=quantity
        )
    assert words in " ".join(caught.value.messages)
    quantity_before = order.quantity
    order.refresh_from_db()
    run.refresh_from_db()
    assert order.quantity == quantity_before
    assert run.summary == summary
    assert not AuditEvent.objects.filter(kind="orders.quantity_edited").exists()


def test_only_a_proposed_run_is_edited(pm, proposed):
    run, orders = proposed
    order = orders[("sell", "AAA")]
    services.rebalance_run_approve(actor=pm, run_id=run.pk)
    with pytest.raises(ValidationError, match="Only a proposed run"):
        services.rebalance_run_order_edit(
            actor=pm, run_id=run.pk, order_id=order.pk, quantity=Decimal("1")
        )


def test_short_and_long_term_gains_in_the_what_if(pm, proposed):
    run, _ = proposed
    figures = run.summary["ACC1"]
    # the fixture's lots are 400 days old: every gain is long term
    assert figures["long_term_gain"] == pytest.approx(figures["realised_gain"])
    assert figures["short_term_gain"] == pytest.approx(0.0)
    assert figures["long_term_gain"] > 0


def test_dropping_an_order_updates_the_what_if(pm, proposed):
    run, orders = proposed
    buy = next(o for (side, _), o in orders.items() if side == "buy")
    before = dict(run.summary["ACC1"])
    services.rebalance_run_order_drop(actor=pm, run_id=run.pk, order_id=buy.pk)
    run.refresh_from_db()
    after = run.summary["ACC1"]
    value = float(buy.quantity * buy.estimated_price)
    fx = 1.1 if buy.security.currency == "EUR" else 1.0
    assert after["cash_after"] == pytest.approx(before["cash_after"] + value * fx, abs=0.01)
    assert after["trades"] == before["trades"] - 1


def test_dropping_the_sell_that_funds_the_buys_is_refused(pm, proposed):
    run, orders = proposed
    sell = orders[("sell", "AAA")]  # 200-odd AAA at 100 pay for the buys
    with pytest.raises(ValidationError, match="below the floor"):
        services.rebalance_run_order_drop(actor=pm, run_id=run.pk, order_id=sell.pk)
    sell.refresh_from_db()
    assert sell.status == "draft"


def test_dropping_every_order_of_an_account_leaves_its_what_if_without_trades(pm, proposed):
    run, orders = proposed
    # the buys first: dropping a sell that pays for them is refused (the cash floor)
    for order in sorted(orders.values(), key=lambda o: o.side != "buy"):
        services.rebalance_run_order_drop(actor=pm, run_id=run.pk, order_id=order.pk)
    run.refresh_from_db()
    after = run.summary["ACC1"]
    assert after["trades"] == 0 and after["buy_value"] == 0 and after["sell_value"] == 0
    assert after["drift_after"] == pytest.approx(after["drift_before"])


def test_the_check_again_sees_the_edited_quantity(pm, proposed):
    """The pre-trade check asked again after an edit judges the new quantity: it was
    handed the account's orders as read before the edit, the edited one at its old
    quantity, and its verdict stored as the new quantity's."""
    run, orders = proposed
    buy = next(o for (side, _), o in orders.items() if side == "buy")
    seen = {}

    def checker(batch, *, stage, actor):
        seen.update({o.pk: o.quantity for o in batch})
        return {o.pk: pretrade.Verdict("approved", (), (), "") for o in batch}

    previous = pretrade.registered()
    pretrade.register(checker)
    try:
        services.rebalance_run_order_edit(
            actor=pm, run_id=run.pk, order_id=buy.pk, quantity=buy.quantity + 1
        )
    finally:
        pretrade.register(previous)
    assert seen[buy.pk] == buy.quantity + 1


def test_approving_a_selection_measures_the_accounts_that_lost_orders_again(pm, book):
    """Orders left out of an approval are dropped: their accounts' what-if (cash,
    drift, trades, estimated gains) is measured without them, as a drop does; an
    account that kept all its orders keeps its figures."""
    acc1, acc2 = book["accounts"]
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    sell = run.orders.get(portfolio=acc1, security__ticker="AAA", side="sell")
    before = {code: dict(figures) for code, figures in run.summary.items()}
    chosen = list(run.orders.exclude(pk=sell.pk).values_list("pk", flat=True))
    services.rebalance_run_approve(actor=pm, run_id=run.pk, order_ids=chosen)
    run.refresh_from_db()
    value = float(sell.quantity) * 100
    after = run.summary["ACC1"]
    assert after["sell_value"] == pytest.approx(before["ACC1"]["sell_value"] - value, abs=0.01)
    assert after["cash_after"] == pytest.approx(before["ACC1"]["cash_after"] - value, abs=0.01)
    assert after["trades"] == before["ACC1"]["trades"] - 1
    assert run.summary["ACC2"] == before["ACC2"]
