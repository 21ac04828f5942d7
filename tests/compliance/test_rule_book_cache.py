"""The rule book kept per process under its stamp (decision 37): a single order's check
in a fixed, small number of queries once the book is loaded, and every change to the
rule book, through a service or not, seen by the very next check."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance import selectors
from compliance.models import RestrictedEntry, RestrictedList, Rule, RuleBookStamp
from compliance.services import rules as rule_services
from tests.desk import approved, new_order
from trading import locks
from trading.models import Order

pytestmark = pytest.mark.django_db


def _stamp():
    return RuleBookStamp.objects.get(pk=1).stamp


def _rule_book(officer):
    rule_services.restricted_list_create(actor=officer, name="Firm", tickers=["BBB"])
    rule_services.rule_create(
        actor=officer,
        name="Firm list",
        kind="restricted",
        params={"list": ["Firm"]},
        severity="hard",
    )
    for name, kind, params, severity in (
        ("Issuer", "max_weight", {"group_by": "issuer", "limit": 0.95}, "soft"),
        ("Cash", "min_cash", {"limit": 0.0}, "hard"),
        ("Overdraft", "no_overdraft", {}, "hard"),
        ("Short", "no_short", {}, "hard"),
        ("Value", "max_order_notional", {"limit": 1e7}, "hard"),
        ("Wash", "wash_sale", {"days": 30}, "warning"),
    ):
        rule_services.rule_create(
            actor=officer, name=name, kind=kind, params=params, severity=severity
        )


#: A single order's reads (the accounts with the rule book's stamp, the positions with
#: their securities and prices, cash with the cash flows runs hold, the other live orders,
#: FX rates) and its write (the results, with the overrides in force): two round trips on
#: PostgreSQL (`oms.bulk.read_together`), five statements and one elsewhere.
def _check_statements() -> int:
    return 2 if connection.vendor == "postgresql" else 6


def test_a_single_order_check_takes_two_round_trips_once_the_rule_book_is_loaded(
    pm, compliance_officer, book, django_assert_num_queries
):
    _rule_book(compliance_officer)
    acc1 = book["accounts"][0]
    first = new_order(pm, acc1, book["securities"]["AAA"], 1, side="sell")
    second = new_order(pm, acc1, book["securities"]["AAA"], 2, side="sell")
    from trading import pretrade

    with transaction.atomic():
        [locked] = locks.lock_orders([first.pk])
        with CaptureQueriesContext(connection) as cold:
            pretrade.check([locked], stage="approve", actor=pm)
    with transaction.atomic():
        [locked] = locks.lock_orders([second.pk])
        # the rule book and its lists come from the process
        with django_assert_num_queries(_check_statements()):
            verdicts = pretrade.check([locked], stage="approve", actor=pm)
    assert verdicts[second.pk].status == "approved"
    # loading the book: the rules, their accounts, the lists, their entries, and the
    # stamp read again to know that nothing changed meanwhile
    assert len(cold) == _check_statements() + 5


def test_a_buy_reads_the_realised_sales_too(
    pm, compliance_officer, book, django_assert_num_queries
):
    _rule_book(compliance_officer)
    acc1 = book["accounts"][0]
    approved(pm, new_order(pm, acc1, book["securities"]["AAA"], 1))
    order = new_order(pm, acc1, book["securities"]["AAA"], 1)
    from trading import pretrade

    with transaction.atomic():
        [locked] = locks.lock_orders([order.pk])
        with django_assert_num_queries(_check_statements() + 1):  # and the sales realised
            pretrade.check([locked], stage="approve", actor=pm)


def test_a_rule_changed_through_its_service_is_checked_at_once(
    pm, compliance_officer, book, order_value_limit
):
    acc1 = book["accounts"][0]
    rule = order_value_limit(1000)
    aaa = book["securities"]["AAA"]  # at 100 USD
    assert approved(pm, new_order(pm, acc1, aaa, 5)).status == Order.Status.APPROVED
    rule_services.rule_update(actor=compliance_officer, rule_id=rule.pk, params={"limit": 400})
    assert approved(pm, new_order(pm, acc1, aaa, 5)).status == Order.Status.REJECTED
    rule_services.rule_set_active(actor=compliance_officer, rule_id=rule.pk, active=False)
    assert approved(pm, new_order(pm, acc1, aaa, 5)).status == Order.Status.APPROVED


def test_a_change_that_bypasses_the_services_is_checked_at_once(pm, compliance_officer, book):
    # what another process, a data fix in SQL or a migration writes: the trigger stamps it
    acc1, acc2 = book["accounts"]
    bbb = book["securities"]["BBB"]
    rule_services.restricted_list_create(actor=compliance_officer, name="Firm", tickers=["AAA"])
    rule = rule_services.rule_create(
        actor=compliance_officer,
        name="Firm list",
        kind="restricted",
        params={"list": ["Firm"]},
        severity="hard",
    )
    assert approved(pm, new_order(pm, acc1, bbb, 1)).status == Order.Status.APPROVED
    firm = RestrictedList.objects.get(name="Firm")
    RestrictedEntry.objects.create(restricted_list=firm, security=bbb)
    assert approved(pm, new_order(pm, acc1, bbb, 1)).status == Order.Status.REJECTED
    # the rule's scope narrowed to the other account, through its chosen accounts
    Rule.objects.filter(pk=rule.pk).update(scope=Rule.Scope.ACCOUNTS)
    Rule.objects.get(pk=rule.pk).accounts.add(acc2)
    assert approved(pm, new_order(pm, acc1, bbb, 1)).status == Order.Status.APPROVED
    assert approved(pm, new_order(pm, acc2, bbb, 1)).status == Order.Status.REJECTED
    Rule.objects.get(pk=rule.pk).accounts.clear()
    Rule.objects.filter(pk=rule.pk).update(scope=Rule.Scope.ALL)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM compliance_restrictedentry")
    assert approved(pm, new_order(pm, acc1, bbb, 1)).status == Order.Status.APPROVED


def test_every_write_to_the_rule_book_changes_the_stamp_and_a_rolled_back_one_is_never_reused(
    compliance_officer, book
):
    seen = [_stamp()]

    def changed():
        stamp = _stamp()
        assert stamp not in seen
        seen.append(stamp)

    rule = rule_services.rule_create(
        actor=compliance_officer, name="Cash", kind="min_cash", params={"limit": 0.01}
    )
    changed()
    rlist = rule_services.restricted_list_create(
        actor=compliance_officer, name="Firm", tickers=["AAA"]
    )
    changed()
    Rule.objects.get(pk=rule.pk).accounts.add(book["accounts"][0])
    changed()
    RestrictedEntry.objects.filter(restricted_list=rlist).delete()
    changed()
    before = _stamp()
    with transaction.atomic():
        Rule.objects.filter(pk=rule.pk).update(is_active=False)
        rolled_back = _stamp()
        assert rolled_back != before
        transaction.set_rollback(True)
    assert _stamp() == before
    Rule.objects.filter(pk=rule.pk).update(is_active=False)
    assert _stamp() not in (before, rolled_back)


def test_a_book_loaded_while_the_stamp_moved_is_not_kept(
    compliance_officer, book, django_assert_max_num_queries
):
    rule_services.rule_create(
        actor=compliance_officer, name="Cash", kind="min_cash", params={"limit": 0.01}
    )
    today = timezone.localdate()
    model_of = {book["accounts"][0].pk: book["accounts"][0].model_id}
    current = _stamp()
    selectors.engine_book_in_force(today, "pre", model_of, stamp=current)
    with django_assert_max_num_queries(0):
        kept = selectors.engine_book_in_force(today, "pre", model_of, stamp=current)
    assert [r.kind for r in kept.rules] == ["min_cash"]
    # a caller that read an older stamp than the database now holds: the book it gets is
    # loaded afresh each time and never kept under the old stamp
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            selectors.engine_book_in_force(today, "pre", model_of, stamp="an older stamp")
        assert len(queries) >= 2
