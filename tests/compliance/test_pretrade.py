"""The pre-trade check through the trading services, on the database: rules at, under and
over their limits, restricted lists, a missing price, the other live orders of the
account, the re-check at release, and the query count of a batch check."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from compliance.models import PretradeResult
from compliance.services import pretrade as pretrade_service
from compliance.services import rules as rule_services
from portfolios.models import Security
from tests.desk import approved, new_order
from trading import pretrade
from trading.models import Order
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db


def test_the_compliance_checker_is_registered():
    assert pretrade.registered() is pretrade_service.checker


def test_without_rules_every_order_passes_and_nothing_is_stored(pm, book):
    order = approved(pm, new_order(pm, book["accounts"][0], book["securities"]["AAA"], 10))
    assert order.status == Order.Status.APPROVED
    assert not PretradeResult.objects.exists()


@pytest.mark.parametrize(
    ("quantity", "status"),
    [(9, "approved"), (10, "approved"), (11, "rejected")],
    ids=["under", "at", "over"],
)
def test_max_order_notional_under_at_and_over_the_limit(
    pm, compliance_officer, book, quantity, status, order_value_limit
):
    # AAA is at 100 USD: 10 of it is exactly the limit of 1,000.
    rule = order_value_limit(1000)
    order = approved(pm, new_order(pm, book["accounts"][0], book["securities"]["AAA"], quantity))
    assert order.status == status
    [result] = PretradeResult.objects.filter(order=order)
    assert (result.rule, result.rule_version, result.stage) == (rule, 1, "approve")
    assert result.value == pytest.approx(quantity * 100)
    assert result.limit == 1000
    assert result.status == ("fail" if status == "rejected" else "pass")
    event = (
        AuditEvent.objects.filter(object_id=str(order.pk), kind__startswith="order.")
        .order_by("pk")
        .last()
    )
    if status == "rejected":
        assert event.kind == "order.rejected"
        assert event.after["failed"] == ["Order value"]
        assert "Order value" in order.compliance_note
    else:
        assert event.kind == "order.approved"


def test_a_soft_issuer_limit_needs_an_override(pm, compliance_officer, book):
    acc1 = book["accounts"][0]
    Security.objects.filter(ticker="AAA").update(issuer="Acme")
    rule_services.rule_create(
        actor=compliance_officer,
        name="Issuer 70%",
        kind="max_weight",
        params={"group_by": "issuer", "limit": 0.70},
        severity="soft",
    )
    # ACC1: NAV 90,000, AAA 60,000 (66.7%); 40 more AAA is 64,000 of 90,000 = 71.1%.
    order = approved(pm, new_order(pm, acc1, book["securities"]["AAA"], 40))
    assert order.status == Order.Status.NEEDS_OVERRIDE
    [result] = PretradeResult.objects.filter(order=order)
    assert result.status == "fail" and result.group == "Acme"
    assert result.value == pytest.approx(64000 / 90000)
    # 30 more is 63,000 / 90,000 = 70% exactly: at the limit, it passes.
    order = approved(pm, new_order(pm, book["accounts"][1], book["securities"]["AAA"], 1))
    assert order.status == Order.Status.APPROVED


def test_a_restricted_security_and_issuer_are_rejected_on_buys_only(pm, compliance_officer, book):
    acc1 = book["accounts"][0]
    Security.objects.filter(ticker="EEE").update(issuer="Shady Co")
    rule_services.restricted_list_create(
        actor=compliance_officer, name="Firm", tickers=["BBB"], issuers=["Shady Co"]
    )
    rule_services.rule_create(
        actor=compliance_officer,
        name="Firm restricted list",
        kind="restricted",
        params={"list": ["Firm"]},
        severity="hard",
    )
    buy_bbb = approved(pm, new_order(pm, acc1, book["securities"]["BBB"], 1))
    buy_eee = approved(pm, new_order(pm, acc1, book["securities"]["EEE"], 1))
    sell_bbb = approved(pm, new_order(pm, acc1, book["securities"]["BBB"], 1, side="sell"))
    buy_aaa = approved(pm, new_order(pm, acc1, book["securities"]["AAA"], 1))
    assert [o.status for o in (buy_bbb, buy_eee, sell_bbb, buy_aaa)] == [
        "rejected",
        "rejected",
        "approved",
        "approved",
    ]
    assert "restricted list" in buy_bbb.compliance_note


def test_an_account_level_list_binds_its_account_only(pm, compliance_officer, book):
    acc1, acc2 = book["accounts"]
    rule_services.restricted_list_create(
        actor=compliance_officer, name="ACC1 own", level="account", portfolio=acc1, tickers=["AAA"]
    )
    rule_services.rule_create(
        actor=compliance_officer,
        name="Account lists",
        kind="restricted",
        params={"list": ["ACC1 own"]},
        severity="hard",
    )
    assert approved(pm, new_order(pm, acc1, book["securities"]["AAA"], 1)).status == "rejected"
    assert approved(pm, new_order(pm, acc2, book["securities"]["AAA"], 1)).status == "approved"


def test_a_missing_price_does_not_pass_silently(pm, compliance_officer, book, order_value_limit):
    naked = Security.objects.create(
        ticker="NOPX", name="No price Corp", asset_class="equity", currency="USD"
    )
    order_value_limit(1_000_000)
    order = approved(pm, new_order(pm, book["accounts"][0], naked, 1))
    assert order.status == Order.Status.NEEDS_OVERRIDE
    assert "no price for NOPX" in order.compliance_note
    with pytest.raises(ValidationError, match="awaits a compliance override"):
        order_services.orders_release(actor=pm, order_ids=[order.pk])


def test_a_holding_without_a_price_is_named_by_its_ticker(
    pm, compliance_officer, book, order_value_limit
):
    """Probing: an account held an unpriced security and every other order of it was
    held for compliance with "no price for 61", the security's database key."""
    naked = Security.objects.create(
        ticker="NOPX", name="No price Corp", asset_class="equity", currency="USD"
    )
    account = book["accounts"][0]
    account.positions.create(security=naked, quantity=10)
    order_value_limit(1_000_000)
    order = approved(pm, new_order(pm, account, book["securities"]["BBB"], 1))
    assert order.status == Order.Status.NEEDS_OVERRIDE
    assert order.compliance_note == (
        "Could not be checked: no price for NOPX. Compliance must look at it."
    )


def test_other_live_orders_count_in_the_portfolio_after(pm, compliance_officer, book):
    """Probing sold a long-only account short with two draft sells of its whole holding,
    each approved and released on its own."""
    acc1 = book["accounts"][0]
    rule_services.rule_create(actor=compliance_officer, name="Long only", kind="no_short")
    first = new_order(pm, acc1, book["securities"]["AAA"], 600, side="sell")
    second = new_order(pm, acc1, book["securities"]["AAA"], 600, side="sell")
    approved(pm, first)
    approved(pm, second)
    statuses = sorted(
        Order.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)
    )
    assert statuses.count("approved") <= 1
    assert "rejected" in statuses


def test_a_rejected_order_cannot_be_released(pm, compliance_officer, book, order_value_limit):
    order_value_limit(100)
    order = approved(pm, new_order(pm, book["accounts"][0], book["securities"]["AAA"], 5))
    assert order.status == "rejected"
    with pytest.raises(ValidationError, match="was rejected by compliance and cannot be released"):
        order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    assert order.status == "rejected" and order.block is None


def test_release_checks_again(pm, compliance_officer, book, order_value_limit):
    """A rule added between approval and release stops the release, in words."""
    order = approved(pm, new_order(pm, book["accounts"][0], book["securities"]["AAA"], 5))
    assert order.status == "approved"
    order_value_limit(100)
    with pytest.raises(ValidationError, match=r"cannot be released: Rejected: Order value"):
        order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    assert order.status == "approved"


def test_a_rule_out_of_its_dates_or_inactive_is_not_checked(pm, compliance_officer, book):
    from django.utils import timezone

    rule = rule_services.rule_create(
        actor=compliance_officer,
        name="Order value",
        kind="max_order_notional",
        params={"limit": 100},
        active_from=timezone.localdate() + timedelta(days=1),
    )
    assert approved(
        pm, new_order(pm, book["accounts"][0], book["securities"]["AAA"], 5)
    ).status == ("approved")
    rule_services.rule_update(actor=compliance_officer, rule_id=rule.pk, active_from=None)
    rule_services.rule_set_active(actor=compliance_officer, rule_id=rule.pk, active=False)
    assert approved(
        pm, new_order(pm, book["accounts"][0], book["securities"]["AAA"], 5)
    ).status == ("approved")
    rule.refresh_from_db()
    assert rule.version == 3


def test_model_scope_binds_the_accounts_of_the_model(pm, compliance_officer, book):
    rule_services.rule_create(
        actor=compliance_officer,
        name="Core order value",
        kind="max_order_notional",
        params={"limit": 100},
        scope="model",
        model=book["model"],
    )
    # both accounts follow the Core model
    assert approved(
        pm, new_order(pm, book["accounts"][1], book["securities"]["AAA"], 5)
    ).status == ("rejected")


def _rules(compliance_officer):
    for name, kind, params in (
        ("Issuer", "max_weight", {"group_by": "issuer", "limit": 0.9}),
        ("Sector", "max_weight", {"group_by": "sector", "limit": 0.9}),
        ("Cash", "min_cash", {"limit": 0.0}),
        ("Overdraft", "no_overdraft", {}),
        ("Short", "no_short", {}),
        ("Value", "max_order_notional", {"limit": 1e7}),
        ("UCITS", "ucits_5_10_40", {}),
    ):
        rule_services.rule_create(
            actor=compliance_officer, name=name, kind=kind, params=params, severity="warning"
        )


@pytest.mark.parametrize("count", [2, 12])
def test_a_batch_check_takes_a_fixed_number_of_queries(pm, compliance_officer, book, count):
    _rules(compliance_officer)
    acc1, acc2 = book["accounts"]
    orders = [
        new_order(pm, acc1 if i % 2 else acc2, book["securities"]["AAA"], 1) for i in range(count)
    ]
    locked = list(
        Order.objects.select_related("portfolio", "security").filter(pk__in=[o.pk for o in orders])
    )
    with CaptureQueriesContext(connection) as queries:
        verdicts = pretrade.check(locked, stage="approve", actor=pm)
    assert len(verdicts) == count
    # the accounts with the rule book's stamp; the rule book, loaded once per stamp (its
    # rules, their accounts, the stamp read again; no list here: the rule book's own
    # test pins the check once loaded); the positions with their securities and prices
    # (one statement), cash with the cash flows runs hold (cash on its way: one
    # statement), live orders, FX rates, the results stored (one insert, or as many as
    # the backend's limit on parameters per statement asks: SQLite's is low)
    fields = [f for f in PretradeResult._meta.concrete_fields if not f.primary_key]
    rows = count * 7
    inserts = -(-rows // (connection.ops.bulk_batch_size(fields, [None] * rows) or rows))
    if connection.vendor == "postgresql":
        # the five reads in one round trip, the results (with the overrides in force) in
        # another (`oms.bulk.read_together`)
        assert len(queries) == 1 + 3 + 1
    else:
        assert len(queries) == 8 + inserts
    assert PretradeResult.objects.filter(order__in=orders).count() == count * 7


def test_restricted_lists_feed_the_rebalancers_do_not_buy_list(pm, compliance_officer, book):
    from orchestration import services as run_services

    acc1, acc2 = book["accounts"]
    run = run_services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert run.orders.filter(security__ticker="BBB", side="buy").exists()  # ACC1 is short of BBB
    run_services.rebalance_run_cancel(actor=pm, run_id=run.pk)  # one open run per account
    rule_services.restricted_list_create(actor=compliance_officer, name="Firm", tickers=["BBB"])
    rule_services.rule_create(
        actor=compliance_officer, name="Firm list", kind="restricted", params={"list": ["Firm"]}
    )
    run = run_services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    assert run.status == "proposed"
    assert not run.orders.filter(security__ticker="BBB", side="buy").exists()
    # selling what is restricted for buys stays allowed
    assert run.orders.filter(security__ticker="BBB", side="sell").exists()


def test_no_overdraft_counts_the_base_currency_an_fx_sale_pays(pm, ops, compliance_officer, book):
    """Selling EUR/USD pays euros (decision 41: two cash legs): an account without them
    is overdrawn in EUR, one holding them is not."""
    from portfolios.models import CashBalance, Price
    from portfolios.services import reference

    eurusd = reference.security_create(
        actor=ops,
        ticker="EURUSD",
        name="EUR/USD spot",
        asset_class="fx_spot",
        currency="USD",
        base_currency="EUR",
        tick_size=Decimal("0.0001"),
        min_quantity=Decimal("0.01"),
        fractional=True,
    )
    Price.objects.create(security=eurusd, as_of=timezone.localdate(), price=Decimal("1.1"))
    rule_services.rule_create(
        actor=compliance_officer, name="Overdraft", kind="no_overdraft", params={}
    )
    account = book["accounts"][0]
    assert not CashBalance.objects.filter(portfolio=account, currency="EUR", amount__gt=0)
    order = approved(pm, new_order(pm, account, eurusd, 50_000, side="sell"))
    assert order.status == Order.Status.REJECTED
    assert "EUR" in order.compliance_note
    CashBalance.objects.update_or_create(
        portfolio=account, currency="EUR", defaults={"amount": Decimal(60_000)}
    )
    assert approved(pm, new_order(pm, account, eurusd, 50_000, side="sell")).status == (
        Order.Status.APPROVED
    )
