"""Breaks: a broker's trade bust or correction, kept in the inbox, is applied by
operations (the fill and the allocations it fed reversed or corrected;
positions, tax lots and cash follow) or dismissed with a reason; a custodian's
statement is compared with our positions and cash, each difference a break
resolved or annotated; a file with bad rows is refused whole, each row named."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import verify_audit_chain
from portfolios.models import CashBalance, Position, TaxLot
from tests.desk import broker_report, released_block
from trading.brokers import fixmap
from trading.fix.codec import Message
from trading.models import Allocation, Block, Broker, FixInbox, FixSession, Statement
from trading.services import breaks as break_services
from trading.services import executions as execution_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def allocated(pm, trader, book, eager_celery, django_capture_on_commit_callbacks):
    """A buy of 100 AAA for ACC1 (60) and ACC2 (40), filled 50 @ 100 (F1) and
    50 @ 102 (F2) over FIX, allocated at 101."""
    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    session = FixSession.objects.create(
        broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=1
    )
    block = released_block(pm, book, "60", "40")
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=broker)
    with django_capture_on_commit_callbacks(execute=True):
        for exec_id, price, status in (("F1", "100", "partially_filled"), ("F2", "102", "filled")):
            execution_services.execution_apply(
                broker_report(route, exec_id, "trade", status, last=50, price=price)
            )
    block.refresh_from_db()
    assert block.status == Block.Status.ALLOCATED and block.average_price == Decimal(101)
    return {"block": block, "route": route, "session": session, "book": book}


def _kept(allocated, fields: dict, seq: int = 7) -> FixInbox:
    """A bust or correction as the gateway keeps it: in the inbox, not applied."""
    body = {37: "O1", 17: "B1", 39: "2", 55: "AAA", 54: "1", 11: allocated["route"].cl_ord_id}
    body.update(fields)
    msg = Message("8", sorted(body.items()), begin_string="FIX.4.4", header=[(34, str(seq))])
    try:
        fixmap.report_from_execution_report(msg, broker_code="FIXB", cl_ord_id="x")
    except fixmap.TradeCorrection as exc:
        error = str(exc)
    return FixInbox.objects.create(
        session=allocated["session"],
        generation=1,
        seq_num=seq,
        msg_type="8",
        raw=msg.encode(),
        status=FixInbox.Status.NOT_APPLIED,
        error=error,
    )


def _holdings(book):
    out = {}
    for account in book["accounts"]:
        out[account.code] = (
            Position.objects.get(portfolio=account, security__ticker="AAA").quantity,
            CashBalance.objects.get(portfolio=account, currency="USD").amount,
            TaxLot.objects.filter(portfolio=account, security__ticker="AAA").aggregate(
                s=Sum("quantity")
            )["s"],
        )
    return out


def test_a_bust_reverses_the_fill_and_rebooks_the_allocations(allocated, ops, trader):
    inbox = _kept(allocated, {150: "H", 19: "F2", 32: "50", 31: "102"})
    assert list(break_services.trade_corrections()) == [inbox]
    with pytest.raises(PermissionDenied):
        break_services.correction_apply(actor=trader, inbox_id=inbox.pk)
    break_services.correction_apply(actor=ops, inbox_id=inbox.pk)
    block = Block.objects.get(pk=allocated["block"].pk)
    assert (block.filled_quantity, block.average_price) == (Decimal(50), Decimal(100))
    shares = {a.order.portfolio.code: (a.quantity, a.price) for a in Allocation.objects.all()}
    assert shares == {"ACC1": (Decimal(30), Decimal(100)), "ACC2": (Decimal(20), Decimal(100))}
    # ACC1 held 600 AAA and 20,000 USD; ACC2 100 AAA and 5,000 USD
    assert _holdings(allocated["book"]) == {
        "ACC1": (Decimal(630), Decimal(17000), Decimal(630)),
        "ACC2": (Decimal(120), Decimal(3000), Decimal(120)),
    }
    inbox.refresh_from_db()
    assert inbox.status == FixInbox.Status.APPLIED and inbox.resolved_by == ops
    assert AuditEvent.objects.filter(kind="execution.busted", actor=ops).exists()
    assert verify_audit_chain().ok
    with pytest.raises(ValidationError, match="applied"):
        break_services.correction_apply(actor=ops, inbox_id=inbox.pk)


def test_a_bust_on_an_allocated_block_gives_back_what_its_ended_route_held(allocated, ops):
    # the route (100, filled, so it holds its 100 fills) is left holding 50 after
    # the bust: the block's routed quantity follows, as it does before allocation
    inbox = _kept(allocated, {150: "H", 19: "F2", 32: "50", 31: "102"})
    break_services.correction_apply(actor=ops, inbox_id=inbox.pk)
    block = Block.objects.get(pk=allocated["block"].pk)
    route = block.routes.get()
    assert route.reserved_quantity == Decimal(50)
    assert block.routed_quantity == route.reserved_quantity


def test_a_correction_changes_the_fill_and_the_average_price(allocated, ops):
    inbox = _kept(allocated, {150: "G", 19: "F2", 32: "50", 31: "101"})
    break_services.correction_apply(actor=ops, inbox_id=inbox.pk)
    block = Block.objects.get(pk=allocated["block"].pk)
    assert (block.filled_quantity, block.average_price) == (Decimal(100), Decimal("100.5"))
    assert _holdings(allocated["book"]) == {
        "ACC1": (Decimal(660), Decimal(20000) - Decimal("6030"), Decimal(660)),
        "ACC2": (Decimal(140), Decimal(5000) - Decimal("4020"), Decimal(140)),
    }


def test_a_correction_days_later_rebooks_on_the_trade_day(allocated, ops):
    """A correction applied a week after the allocation rebooked the fills on the day of
    the correction: the new tax lots were dated then (and a bond's accrued interest ran
    to that day's settlement), so a second correction reversed at the first day what
    was booked at the later one. They are booked again on the allocation's own day."""
    from datetime import timedelta

    week_ago = timezone.now() - timedelta(days=7)
    Allocation.objects.update(created_at=week_ago, trade_date=timezone.localdate(week_ago))
    inbox = _kept(allocated, {150: "G", 19: "F2", 32: "50", 31: "101"})
    break_services.correction_apply(actor=ops, inbox_id=inbox.pk)
    bought = TaxLot.objects.filter(security__ticker="AAA", unit_cost=Decimal("100.5"))
    assert (
        sorted(bought.values_list("acquired_on", flat=True)) == [timezone.localdate(week_ago)] * 2
    )


def test_a_bust_naming_no_fill_of_ours_must_be_dismissed_with_a_reason(allocated, ops):
    inbox = _kept(allocated, {150: "H", 19: "NOPE"})
    with pytest.raises(ValidationError, match="No fill 'NOPE'"):
        break_services.correction_apply(actor=ops, inbox_id=inbox.pk)
    with pytest.raises(ValidationError, match="Say why"):
        break_services.correction_dismiss(actor=ops, inbox_id=inbox.pk, reason=" ")
    break_services.correction_dismiss(actor=ops, inbox_id=inbox.pk, reason="not our order")
    inbox.refresh_from_db()
    assert (inbox.status, inbox.resolution) == (FixInbox.Status.DISMISSED, "not our order")
    assert Block.objects.get(pk=allocated["block"].pk).filled_quantity == Decimal(100)


STATEMENT = """account,security,currency,quantity
ACC1,AAA,,600
ACC1,BBB,,90
ACC1,EEE,,500
ACC1,,USD,20000
ACC2,AAA,,100
ACC2,BBB,,700
ACC2,,USD,"5,001.50"
"""


def test_a_statement_is_compared_and_each_difference_is_a_break(ops, book, client):
    statement = break_services.statement_import(
        actor=ops, text=STATEMENT, source="Custodian", as_of=date(2026, 11, 30)
    )
    breaks = {
        (b.portfolio.code, b.security.ticker if b.security else b.currency): (b.ours, b.theirs)
        for b in statement.breaks.all()
    }
    assert breaks == {
        ("ACC1", "BBB"): (Decimal(100), Decimal(90)),
        ("ACC2", "CCC"): (Decimal(500), Decimal(0)),  # we hold it, the statement does not
        ("ACC2", "USD"): (Decimal(5000), Decimal("5001.5")),
    }
    client.force_login(ops)
    page = client.get(reverse("trading:reconciliation")).content.decode()
    assert "cash USD" in page and "-10" in page
    brk = statement.breaks.get(security__ticker="BBB")
    client.post(
        reverse("trading:statement-break", args=[brk.pk]), {"note": "", "action": "annotate"}
    )
    brk.refresh_from_db()
    assert brk.note == ""  # a note is needed
    client.post(
        reverse("trading:statement-break", args=[brk.pk]),
        {"note": "asked the custodian", "action": "annotate"},
    )
    brk.refresh_from_db()
    assert (brk.status, brk.note) == ("open", "asked the custodian")
    client.post(
        reverse("trading:statement-break", args=[brk.pk]),
        {"note": "10 lent out: custodian agrees", "action": "resolve"},
    )
    brk.refresh_from_db()
    assert brk.status == "resolved" and brk.resolved_by == ops


def test_a_statement_with_bad_rows_names_each_and_changes_nothing(ops, book, client):
    bad = (
        "account,security,currency,quantity\n"
        "ACC1,AAA,,600\n"
        "NOPE,AAA,,1\n"
        "ACC1,BBB,USD,1\n"
        "ACC2,ZZZ,,1\n"
        "ACC2,AAA,,lots\n"
        "ACC1,AAA,,5\n"
    )
    with pytest.raises(ValidationError) as error:
        break_services.statement_import(actor=ops, text=bad, source="Custodian", as_of=date.today())
    messages = error.value.message_dict["file"]
    assert messages == [
        "line 3: no account 'NOPE'",
        "line 4: give a security or a currency, not both or neither",
        "line 5: no security 'ZZZ'",
        "line 6: quantity 'lots' is not a number",
        "line 7: the same account and holding twice",
    ]
    assert not Statement.objects.exists()
    with pytest.raises(ValidationError, match="header must name"):
        break_services.statement_import(
            actor=ops, text="who,what\n1,2\n", source="C", as_of=date.today()
        )
    client.force_login(ops)
    upload = io.BytesIO(bad.encode())
    upload.name = "statement.csv"
    response = client.post(
        reverse("trading:statement-upload"), {"file": upload, "source": "Custodian"}
    )
    assert response.status_code == 422
    assert "line 5: no security &#x27;ZZZ&#x27;" in response.content.decode()
    assert not Statement.objects.exists()
