"""Cash flows: a deposit to invest, a withdrawal to raise; used by the next run, applied
when it is released, given back when it is cancelled; raise cash for one account."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from orchestration import services
from orchestration.models import CashFlow
from orchestration.selectors import cash_flows_in_runs
from portfolios.models import CashBalance, RebalanceRun
from portfolios.services.drift import drift_refresh
from trading.models import Order
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


def cash_of(account, currency="USD"):
    return CashBalance.objects.get(portfolio=account, currency=currency).amount


def _route_the_run(run, trader, broker, capture):
    """Every block of the run's released orders to the (simulated) broker, filled and
    allocated in the callbacks after each commit."""
    for block_id in sorted(set(run.orders.exclude(block=None).values_list("block_id", flat=True))):
        with capture(execute=True):
            route_services.route_create(actor=trader, block_id=block_id, broker=broker)


def test_a_withdrawal_is_raised_by_the_next_run_and_booked_when_its_sells_are_allocated(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    """Releasing the run used to book the withdrawal at once, before any sell had
    filled: the account's cash went to -10,000 USD ("the sells bring it back") and
    stayed there if they never filled. The withdrawal now waits for the run's sells and
    is booked from their proceeds once they are allocated."""
    acc1, _ = book["accounts"]
    flow = services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="withdrawal", currency="USD", amount="30000"
    )
    assert flow.status == CashFlow.Status.PENDING
    assert AuditEvent.objects.filter(kind="cash_flow.created", object_id=str(flow.pk)).exists()
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert run.status == RebalanceRun.Status.PROPOSED
    figures = run.summary["ACC1"]
    assert figures["cash_need"] == pytest.approx(30000)
    # the run's target leaves the withdrawal free: cash after the need stays above the floor
    assert figures["cash_after"] >= 500 - 1e-6
    flow.refresh_from_db()
    assert flow.status == CashFlow.Status.IN_RUN and flow.run_id == run.pk
    services.rebalance_run_approve(actor=pm, run_id=run.pk)
    drift_refresh(portfolio_ids=[acc1.pk])
    services.rebalance_run_release(actor=pm, run_id=run.pk)
    flow.refresh_from_db()
    assert flow.status == CashFlow.Status.AWAITING_SELLS
    assert cash_of(acc1) == Decimal("20000")  # nothing sold yet: nothing withdrawn
    assert AuditEvent.objects.filter(
        kind="cash_flow.awaiting_sells", object_id=str(flow.pk)
    ).exists()
    # still on its way out: the pre-trade check and the next run count it
    assert cash_flows_in_runs([acc1.pk]) == [(acc1.pk, "USD", -30000.0)]
    _route_the_run(run, trader, book["broker"], django_capture_on_commit_callbacks)
    assert not run.orders.exclude(status=Order.Status.ALLOCATED).exists()
    flow.refresh_from_db()
    assert flow.status == CashFlow.Status.APPLIED
    applied = AuditEvent.objects.get(kind="cash_flow.applied", object_id=str(flow.pk))
    before = Decimal(applied.before["cash"])
    assert before > Decimal("30000")  # the sells' proceeds came in first
    assert cash_of(acc1) == before - Decimal("30000") >= Decimal("500")
    assert applied.after["status"] == "applied" and applied.after["run"] == run.pk
    assert cash_flows_in_runs([acc1.pk]) == []


def test_a_withdrawal_whose_sells_end_unfilled_goes_back_to_pending(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    """Sells cancelled with nothing filled raise nothing: the periodic settlement gives
    the withdrawal back (pending, for the next run), saying why, and books nothing."""
    acc1, _ = book["accounts"]
    flow = services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="withdrawal", currency="USD", amount="30000"
    )
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    services.rebalance_run_approve(actor=pm, run_id=run.pk)
    services.rebalance_run_release(actor=pm, run_id=run.pk)
    assert services.cash_flows_settle() == {"applied": 0, "returned": 0}  # sells still live
    for order in run.orders.filter(status=Order.Status.RELEASED):
        order_services.order_cancel(actor=trader, order_id=order.pk, reason="client changed mind")
    assert services.cash_flows_settle() == {"applied": 0, "returned": 1}
    flow.refresh_from_db()
    assert flow.status == CashFlow.Status.PENDING and flow.run_id is None
    assert cash_of(acc1) == Decimal("20000")
    returned = AuditEvent.objects.get(kind="cash_flows.returned", object_id=str(flow.pk))
    assert "short of the 30,000.00 USD (30,000.00 USD) to withdraw" in returned.reason
    # the next run raises it again
    again = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert again.summary["ACC1"]["cash_need"] == pytest.approx(30000)


def test_a_withdrawal_in_another_currency_is_booked_from_the_sells_in_the_base(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    """A EUR withdrawal from a USD account: the run raises its value in USD (at 1.1), so
    the EUR balance never covered it and the settlement handed it back for ever (each
    run raising it again). It is booked in EUR once the account's cash, valued in its
    base, covers it; the desk converts."""
    acc1, _ = book["accounts"]
    flow = services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="withdrawal", currency="EUR", amount="20000"
    )
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert run.summary["ACC1"]["cash_need"] == pytest.approx(22000)
    services.rebalance_run_approve(actor=pm, run_id=run.pk)
    services.rebalance_run_release(actor=pm, run_id=run.pk)
    _route_the_run(run, trader, book["broker"], django_capture_on_commit_callbacks)
    flow.refresh_from_db()
    assert flow.status == CashFlow.Status.APPLIED
    applied = AuditEvent.objects.get(kind="cash_flow.applied", object_id=str(flow.pk))
    eur = CashBalance.objects.get(portfolio=acc1, currency="EUR").amount
    assert applied.after["currency"] == "EUR"
    assert eur == Decimal(applied.before["cash"]) - Decimal("20000")  # in its own currency
    assert cash_of(acc1) + eur * Decimal("1.1") >= Decimal("500")  # covered in the base


def test_a_waiting_withdrawal_whose_run_is_gone_waits_on_no_other_order(pm, book):
    """`CashFlow.run` is nulled when its run goes: the settlement looked for the sells of
    "no run", which are every hand-entered order of the account."""
    acc1, _ = book["accounts"]
    flow = services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="withdrawal", currency="USD", amount="1000"
    )
    CashFlow.objects.filter(pk=flow.pk).update(status=CashFlow.Status.AWAITING_SELLS, run=None)
    manual = order_services.order_create(
        actor=pm, portfolio=acc1, security=book["securities"]["AAA"], side="sell",
        quantity=Decimal(10),
    )  # fmt: skip
    order_services.orders_approve(actor=pm, order_ids=[manual.pk])
    assert services.cash_flows_settle() == {"applied": 1, "returned": 0}
    assert cash_of(acc1) == Decimal("19000")


def test_a_withdrawal_waiting_for_sells_is_counted_by_the_next_run(pm, book):
    """The released run's sells are projected into the next run's book; the withdrawal
    they are raising is that book's cash need too, so the next run does not invest it."""
    acc1, _ = book["accounts"]
    services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="withdrawal", currency="USD", amount="30000"
    )
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    services.rebalance_run_approve(actor=pm, run_id=run.pk)
    services.rebalance_run_release(actor=pm, run_id=run.pk)
    nxt = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    assert nxt.summary["ACC1"]["cash_need"] == pytest.approx(30000)
    assert nxt.summary["ACC1"]["buy_value"] == pytest.approx(0, abs=1e-6)


def test_a_deposit_is_invested_by_the_next_run(pm, book):
    _, acc2 = book["accounts"]
    plain = services.rebalance_run_create(actor=pm, portfolios=[acc2])
    buys_before = plain.summary["ACC2"]["buy_value"]
    services.rebalance_run_cancel(actor=pm, run_id=plain.pk)
    services.cash_flow_create(
        actor=pm, portfolio=acc2, kind="deposit", currency="EUR", amount="10000"
    )
    run = services.rebalance_run_create(actor=pm, portfolios=[acc2])
    figures = run.summary["ACC2"]
    assert figures["cash_need"] == pytest.approx(-11000)  # 10,000 EUR at 1.1
    assert figures["buy_value"] > buys_before + 5000


def test_a_cancelled_run_gives_its_cash_flows_back(pm, book):
    acc1, _ = book["accounts"]
    flow = services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="withdrawal", currency="USD", amount="1000"
    )
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    services.rebalance_run_cancel(actor=pm, run_id=run.pk)
    flow.refresh_from_db()
    assert flow.status == CashFlow.Status.PENDING and flow.run_id is None
    assert cash_of(acc1) == Decimal("20000")
    again = services.rebalance_run_create(actor=pm, portfolios=[acc1])
    flow.refresh_from_db()
    assert flow.run_id == again.pk


def test_cancel_a_pending_cash_flow_and_not_one_in_a_run(pm, book):
    acc1, acc2 = book["accounts"]
    flow = services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="deposit", currency="USD", amount="5"
    )
    services.cash_flow_cancel(actor=pm, cash_flow_id=flow.pk)
    flow.refresh_from_db()
    assert flow.status == CashFlow.Status.CANCELLED
    other = services.cash_flow_create(
        actor=pm, portfolio=acc2, kind="withdrawal", currency="USD", amount="100"
    )
    services.rebalance_run_create(actor=pm, portfolios=[acc2])
    with pytest.raises(ValidationError, match="only a pending one"):
        services.cash_flow_cancel(actor=pm, cash_flow_id=other.pk)


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"amount": "-500"}, "amount", "positive"),
        ({"amount": "0"}, "amount", "more than zero"),
        ({"amount": "abc"}, "amount", "a number"),
        ({"amount": "1.234"}, "amount", "two decimals"),
        ({"currency": "US"}, "currency", "three-letter"),
        ({"currency": "JPY"}, "currency", "No FX rate from JPY"),
        ({"kind": "gift"}, "kind", "'deposit' or 'withdrawal'"),
        # a note too long is refused, not cut to fit
        ({"note": "x" * 201}, "note", "At most 200 characters"),
    ],
)
def test_bad_cash_flows_are_refused_and_nothing_saved(pm, book, values, field, words):
    acc1, _ = book["accounts"]
    terms = {"kind": "withdrawal", "currency": "USD", "amount": "100"} | values
    with pytest.raises(ValidationError) as caught:
        services.cash_flow_create(actor=pm, portfolio=acc1, **terms)
    assert words in " ".join(caught.value.message_dict[field])
    assert not CashFlow.objects.exists()


def test_someone_elses_account_is_refused(book, make_user):
    from oms.roles import Role

    other = make_user("pm2", Role.PORTFOLIO_MANAGER)
    with pytest.raises(PermissionDenied):
        services.cash_flow_create(
            actor=other,
            portfolio=book["accounts"][0],
            kind="deposit",
            currency="USD",
            amount="1",
        )


def test_csv_import_enters_every_line(pm, book):
    text = "account,currency,amount,kind\nACC1,USD,1000,withdrawal\nACC2,EUR,250.50,deposit\n"
    flows = services.cash_flows_import(actor=pm, text=text)
    assert [(f.portfolio.code, f.kind, f.amount) for f in flows] == [
        ("ACC1", "withdrawal", Decimal("1000")),
        ("ACC2", "deposit", Decimal("250.50")),
    ]
    assert AuditEvent.objects.filter(kind="cash_flow.created").count() == 2


def test_csv_with_bad_lines_names_each_and_saves_nothing(pm, book):
    text = (
        "account,currency,amount,kind\n"
        "ACC1,USD,1000,withdrawal\n"
        "ZZZ,USD,10,deposit\n"
        "ACC2,USD,-5,withdrawal\n"
        "ACC2,XXX,5,deposit\n"
    )
    with pytest.raises(ValidationError) as caught:
        services.cash_flows_import(actor=pm, text=text)
    errors = caught.value.message_dict["file"]
    assert errors[0] == "Line 3: no account 'ZZZ' among yours."
    assert errors[1].startswith("Line 4: amount: Must be positive")
    assert errors[2].startswith("Line 5: currency: No FX rate from XXX")
    assert not CashFlow.objects.exists()


def test_csv_without_the_columns_is_refused(pm, book):
    with pytest.raises(ValidationError, match="the header lacks kind"):
        services.cash_flows_import(actor=pm, text="account,currency,amount\nACC1,USD,1\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a value with no column is not dropped: the line is refused, with its number
        (
            "account,currency,amount,kind\nACC1,USD,10,deposit\nACC2,USD,1,000,deposit\n",
            "Line 3: 5 fields, but the header names 4 (account, currency, amount, kind).",
        ),
        # a column the import does not read is not dropped either
        (
            "account,currency,amount,kind,note\nACC1,USD,10,deposit,for fees\n",
            "Line 1: the header has note, which is not a column of the import "
            "(the columns are account, currency, amount, kind).",
        ),
    ],
)
def test_csv_with_more_than_its_columns_is_refused_not_cut(text, message, pm, book):
    with pytest.raises(ValidationError) as caught:
        services.cash_flows_import(actor=pm, text=text)
    assert caught.value.message_dict["file"] == [message]
    assert not CashFlow.objects.exists()


def test_raise_cash_sells_what_drifts_most_and_only_sells(pm, book):
    acc1, _ = book["accounts"]
    run = services.rebalance_raise_cash(actor=pm, portfolio=acc1, amount="25000")
    assert run.parameters["objective"] == "raise_cash"
    orders = list(run.orders.select_related("security"))
    assert orders and {o.side for o in orders} == {"sell"}
    # ACC1: AAA is 60,000 of a 65,000 account after the withdrawal (target 40%): the
    # most overweight; 5,500 more than the 20,000 of cash is to raise
    assert {o.security.ticker for o in orders} == {"AAA"}
    assert run.summary["ACC1"]["cash_after"] >= 500 - 1e-6
    flow = CashFlow.objects.get(portfolio=acc1)
    assert flow.kind == "withdrawal" and flow.status == CashFlow.Status.IN_RUN


def test_raise_cash_without_an_amount_or_a_withdrawal_is_refused(pm, book):
    with pytest.raises(ValidationError, match="has no pending withdrawal"):
        services.rebalance_raise_cash(actor=pm, portfolio=book["accounts"][0])
    assert not RebalanceRun.objects.exists()


def test_raise_cash_in_an_open_run_is_refused_and_enters_no_withdrawal(pm, book):
    acc1, _ = book["accounts"]
    services.rebalance_run_create(actor=pm, portfolios=[acc1])
    with pytest.raises(ValidationError, match="open rebalance"):
        services.rebalance_raise_cash(actor=pm, portfolio=acc1, amount="100")
    assert not CashFlow.objects.exists()


def test_a_flow_cancelled_while_the_run_computes_skips_its_account(pm, book, monkeypatch):
    """The engine counted a withdrawal that was cancelled before the chunk committed:
    the account gets no order on a cash need that is gone; it is skipped, with why."""
    acc1, acc2 = book["accounts"]
    flow = services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="withdrawal", currency="USD", amount="30000"
    )
    real_engine = services.rebalance

    def engine_then_cancel(book_, options):
        result = real_engine(book_, options)
        services.cash_flow_cancel(actor=pm, cash_flow_id=flow.pk)  # meanwhile, elsewhere
        return result

    monkeypatch.setattr(services, "rebalance", engine_then_cancel)
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    assert run.status == RebalanceRun.Status.PROPOSED
    assert "changed while the run computed" in run.skipped["ACC1"]
    assert "ACC1" not in run.summary and "ACC2" in run.summary
    assert not run.orders.filter(portfolio=acc1).exists()
    assert run.orders.filter(portfolio=acc2).exists()
    flow.refresh_from_db()
    assert flow.status == CashFlow.Status.CANCELLED and flow.run_id is None


@pytest.mark.django_db(transaction=True)
def test_raise_cash_and_a_run_started_meanwhile_leave_no_withdrawal_unasked(pm, book, monkeypatch):
    """Raise cash enters a withdrawal and opens a run: together or not at all. Another
    run of the account, started between the two (a second click, a colleague), used to
    take the withdrawal just entered and raise it while the PM was told raise cash was
    refused. Now one of the two runs is refused, and a refused raise enters nothing."""
    import threading

    from django.db import connection

    from tests.conftest import service_missing

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: a second writer at once (SQLite serialises them)")
    acc1, _ = book["accounts"]
    real_create = services.cash_flow_create
    elsewhere: list = []
    done = threading.Event()
    threads = []

    def run_elsewhere():
        try:
            elsewhere.append(services.rebalance_run_create(actor=pm, portfolios=[acc1]))
        except ValidationError as error:
            elsewhere.append(error)
        finally:
            done.set()
            connection.close()

    def enter_then_someone_runs(**kwargs):
        flow = real_create(**kwargs)
        threads.append(threading.Thread(target=run_elsewhere))
        threads[0].start()
        done.wait(8)  # the other run finishes, or waits for this transaction
        return flow

    monkeypatch.setattr(services, "cash_flow_create", enter_then_someone_runs)
    try:
        raised = services.rebalance_raise_cash(actor=pm, portfolio=acc1, amount="25000")
    except ValidationError as error:
        raised = error
    threads[0].join(30)
    [other] = elsewhere
    runs = list(RebalanceRun.objects.all())
    assert len(runs) == 1, (raised, other)  # one of the two was refused
    if isinstance(raised, ValidationError):
        assert "open rebalance" in str(raised)
        assert not CashFlow.objects.exists(), "the refused raise left its withdrawal"
        assert other.summary["ACC1"]["cash_need"] == pytest.approx(0)
    else:
        assert "open rebalance" in str(other)
        [flow] = CashFlow.objects.all()
        assert flow.status == CashFlow.Status.IN_RUN and flow.run_id == raised.pk
        assert raised.summary["ACC1"]["cash_need"] == pytest.approx(25000)


def _cash_queries(run_release):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run_release()
    # The booking's statements, which name the tables quoted; the pre-trade check's
    # plain SQL (its reads sent together, pinned in tests/compliance) names them bare.
    tables = ('"orchestration_cashflow"', '"portfolios_cashbalance"')
    return [q["sql"] for q in captured.captured_queries if any(t in q["sql"] for t in tables)]


def test_releasing_a_run_books_its_cash_flows_in_a_fixed_number_of_queries(pm, book):
    """A run's flows are booked together, whatever their number: balances created and
    locked in one go (in pk order, as fills lock them), written in one statement."""
    acc1, acc2 = book["accounts"]

    def released(flows):
        for account, currency, kind, amount in flows:
            services.cash_flow_create(
                actor=pm, portfolio=account, kind=kind, currency=currency, amount=amount
            )
        run = services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
        services.rebalance_run_approve(actor=pm, run_id=run.pk)
        return _cash_queries(lambda: services.rebalance_run_release(actor=pm, run_id=run.pk))

    one = released([(acc1, "USD", "deposit", "100")])
    many = released(
        [(acc1, "USD", "deposit", "100"), (acc1, "USD", "withdrawal", "40")]
        + [(acc2, "USD", "deposit", "10"), (acc2, "EUR", "deposit", "20")]
        + [(acc1, "EUR", "deposit", "5")] * 3
    )
    assert len(many) == len(one), many
    # every flow booked on its own currency's cash, one after the other
    assert cash_of(acc1) == Decimal("20000") + 100 + 100 - 40
    assert cash_of(acc2, "EUR") == Decimal("20")
    assert cash_of(acc1, "EUR") == Decimal("15")
    assert CashFlow.objects.filter(status=CashFlow.Status.APPLIED).count() == 8
    applied = AuditEvent.objects.filter(kind="cash_flow.applied").order_by("pk")
    eur = [e.after["cash"] for e in applied if e.after.get("currency") == "EUR"]
    assert eur == ["20.0000", "5.0000", "10.0000", "15.0000"]


def test_a_withdrawal_whose_sells_were_all_left_out_goes_back_to_pending(pm, book):
    """Approving a selection that leaves out every order of an account raises none of
    its withdrawal: releasing the run used to book the withdrawal anyway (its cash
    30,000 lower, under its floor, with nothing sold); it is given back for the next
    run. The other account's flow, whose orders go, is booked."""
    acc1, acc2 = book["accounts"]
    withdrawal = services.cash_flow_create(
        actor=pm, portfolio=acc1, kind="withdrawal", currency="USD", amount="30000"
    )
    deposit = services.cash_flow_create(
        actor=pm, portfolio=acc2, kind="deposit", currency="USD", amount="1000"
    )
    run = services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    assert run.orders.filter(portfolio=acc1).exists()
    chosen = list(run.orders.filter(portfolio=acc2).values_list("pk", flat=True))
    assert chosen
    cash2 = cash_of(acc2)
    services.rebalance_run_approve(actor=pm, run_id=run.pk, order_ids=chosen)
    services.rebalance_run_release(actor=pm, run_id=run.pk)
    withdrawal.refresh_from_db()
    deposit.refresh_from_db()
    assert withdrawal.status == CashFlow.Status.PENDING and withdrawal.run_id is None
    assert cash_of(acc1) == Decimal("20000")
    assert deposit.status == CashFlow.Status.APPLIED
    assert cash_of(acc2) == cash2 + 1000
    returned = AuditEvent.objects.get(kind="cash_flows.returned", object_id=str(run.pk))
    assert returned.after["cash_flows"] == [withdrawal.pk]


def test_a_raise_that_cannot_be_met_leaves_no_withdrawal_behind(pm, book):
    """Raise cash of more than the account can free: its run skips the account and says
    why. The withdrawal the raise entered used to stay pending, so that every later run
    of the account (the whole book's too) skipped it on that same shortfall until
    someone found and cancelled it; it is cancelled with the raise."""
    acc1, acc2 = book["accounts"]
    run = services.rebalance_raise_cash(actor=pm, portfolio=acc1, amount="10000000")
    assert "ACC1" in run.skipped
    assert not CashFlow.objects.filter(status=CashFlow.Status.PENDING).exists()
    [flow] = CashFlow.objects.all()
    assert flow.status == CashFlow.Status.CANCELLED
    assert AuditEvent.objects.filter(kind="cash_flow.cancelled", object_id=str(flow.pk)).exists()
    services.rebalance_run_cancel(actor=pm, run_id=run.pk)
    later = services.rebalance_run_create(actor=pm, portfolios=[acc1, acc2])
    assert "ACC1" not in later.skipped
