"""The whole chain in a real browser: the PM rebalances an account and releases the
orders, the trader routes the block and sees it fill without a reload, the
account's positions and cash change, and compliance finds every step in the trail."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portfolios.models import CashBalance, Position
from tests.conftest import service_missing
from trading.models import Block, Order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def holdings(account) -> dict[str, object]:
    return dict(
        Position.objects.filter(portfolio=account).values_list("security__ticker", "quantity")
    )


def route_from_the_ticket(desk, block_id: int, broker_label: str) -> None:
    """From the keyboard: select the block's row, r opens the ticket, Enter sends."""
    desk.locator(f"#block-{block_id}").focus()
    desk.keyboard.press("r")
    ticket = desk.locator("#ticket")
    expect(ticket).to_be_visible()
    desk.locator("#ticket-broker").select_option(label=broker_label)
    desk.locator("#ticket-quantity").focus()
    desk.keyboard.press("Enter")
    expect(ticket).to_be_hidden()


def test_drift_to_fills_in_the_browser(
    book, pm, trader, compliance_officer, eager_celery, log_in, live_server
):
    account = book["accounts"][0]
    before = holdings(account)
    cash_before = CashBalance.objects.get(portfolio=account, currency="USD").amount

    # --- The PM sees drifting accounts and rebalances one.
    page = log_in(pm)
    expect(page.locator("h1")).to_have_text("Accounts")
    row = page.locator("tr", has=page.locator(f'a:text-is("{account.code}")'))
    expect(row).to_contain_text("Out of band")
    row.locator('input[name="portfolios"]').check()
    page.click("text=Rebalance selected")
    expect(page.locator("h1")).to_have_text("Rebalance")
    page.click("text=Propose orders")
    expect(page.locator("h1")).to_contain_text("Proposed")
    expect(page.locator("#what-if")).to_contain_text(account.code)
    orders = page.locator("#orders tbody tr")
    count = orders.count()
    assert count > 0
    expect(orders.first).to_contain_text("Draft")

    page.click("#approve")
    expect(page.locator("h1")).to_contain_text("Approved")
    page.click("#release")
    expect(page.locator("h1")).to_contain_text("Released")
    expect(page.locator(".message-success")).to_contain_text("released")
    released = list(Order.objects.filter(portfolio=account, status=Order.Status.RELEASED))
    assert len(released) == count

    # --- The trader finds them in blocks on the blotter and routes each to SIM.
    desk = log_in(trader)
    expect(desk.locator("h1")).to_have_text("Blotter")
    desk.evaluate("window.__not_reloaded = true")
    block_ids = sorted({order.block_id for order in released})
    for block_id in block_ids:
        block_row = desk.locator(f"#block-{block_id}")
        expect(block_row).to_contain_text(account.code)
        expect(block_row.locator("[data-col=status]")).to_contain_text("Open")
        route_from_the_ticket(desk, block_id, "SIM · Simulated")
        # The row is fetched again when the route is sent and as its fills arrive.
        expect(desk.locator(f"#block-{block_id} [data-col=status]")).to_contain_text("Allocated")
        block = Block.objects.get(pk=block_id)
        expect(desk.locator(f"#block-{block_id} [data-col=filled]")).to_have_text(
            f"{block.quantity:,.0f}"
        )
    assert desk.evaluate("window.__not_reloaded === true"), "the blotter was reloaded"

    # --- The account's positions and cash changed by the allocated fills.
    after = holdings(account)
    for order in released:
        order.refresh_from_db()
        assert order.status == Order.Status.ALLOCATED
        sign = 1 if order.side == "buy" else -1
        ticker = order.security.ticker
        assert after[ticker] == before.get(ticker, 0) + sign * order.quantity
    cash_after = CashBalance.objects.get(portfolio=account, currency="USD").amount
    assert cash_after != cash_before
    page.goto(f"{live_server.url}{account.get_absolute_url()}")
    in_model = {target.security.ticker for target in book["model"].targets.all()}
    for order in released:
        ticker = order.security.ticker
        quantity = page.locator(f'#holdings tr[data-ticker="{ticker}"] [data-col=quantity]')
        if after[ticker] == 0 and ticker not in in_model:
            expect(quantity).to_have_count(0)  # sold out of a security the model does not hold
        else:
            expect(quantity).to_have_text(f"{after[ticker]:,.0f}")
    expect(page.locator('#cash tr[data-currency="USD"] [data-col=amount]')).to_have_text(
        f"{cash_after:,.2f}"
    )

    # --- Compliance finds every step in the audit trail, with its actor.
    audit = log_in(compliance_officer)
    expect(audit.locator("h1")).to_have_text("Audit trail")
    steps = {
        "pm": [
            "rebalance.created",
            "rebalance.proposed",
            "rebalance.approved",
            "orders.approved",
            "rebalance.released",
            "orders.released",
        ],
        "trader": ["route.created", "block.routed"],
        "broker:SIM": ["route.sent", "execution.trade"],
        "system": ["order.allocated", "block.allocated"],
    }
    for actor, kinds in steps.items():
        audit.fill("#id_actor", actor)
        audit.fill("#id_kind", "")
        audit.click("form.filters button[type=submit]")
        table = audit.locator("#audit")
        for kind in kinds:
            event = table.locator(f'tr[data-kind="{kind}"]').first
            expect(event).to_be_visible()
            expect(event.locator(".actor")).to_have_text(actor)
    audit.goto(f"{live_server.url}/compliance/audit/verify/")
    audit.click("#verify")
    expect(audit.locator("#verify-result")).to_contain_text("Chain intact.")


def test_blotter_row_follows_fills_that_arrive_later_from_the_worker(
    book, pm, trader, eager_celery, log_in, monkeypatch
):
    """The routing worker sends the route after the trader's request has returned: the
    blotter hears of the fills on the push channel (here, without Redis, its one poll)
    and shows them as they land, with no reload."""
    from django.db import connection

    from trading import tasks
    from trading.services import orders as order_services

    if connection.vendor != "postgresql":
        # The live server shares one in-memory SQLite connection across its threads:
        # a worker writing from this thread while the page polls would race on it.
        service_missing("PostgreSQL (DATABASE_URL): a worker writing beside the live server")
    orders = [
        order_services.order_create(
            actor=pm,
            portfolio=account,
            security=book["securities"]["BBB"],
            side="buy",
            quantity=quantity,
        )
        for account, quantity in zip(book["accounts"], (30, 20), strict=True)
    ]
    ids = [order.pk for order in orders]
    order_services.orders_approve(actor=pm, order_ids=ids)
    order_services.orders_release(actor=pm, order_ids=ids)
    block = Block.objects.get()
    queue: list[int] = []  # the routing queue, drained below by "the worker"
    monkeypatch.setattr(tasks.route_send, "delay", queue.append)

    desk = log_in(trader)
    row = desk.locator(f"#block-{block.pk}")
    expect(row).to_contain_text("ACC1")
    expect(row).to_contain_text("ACC2")  # two accounts' orders in one block
    desk.evaluate("window.__not_reloaded = true")
    route_from_the_ticket(desk, block.pk, "SIM · Simulated")
    status = desk.locator(f"#block-{block.pk} [data-col=status]")
    expect(status).to_contain_text("Working")
    assert len(queue) == 1

    tasks.route_send(queue.pop())  # the worker sends it; the fills apply and allocate

    expect(status).to_contain_text("Allocated", timeout=10_000)
    expect(desk.locator(f"#block-{block.pk} [data-col=filled]")).to_have_text("50")
    assert desk.evaluate("window.__not_reloaded === true"), "the blotter was reloaded"
