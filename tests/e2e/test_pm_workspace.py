"""The portfolio manager's day in a real browser, as the book-scale issue tells it: edit a
model and see the drift dashboard follow, enter a withdrawal, rebalance every account,
approve and release the proposal, and the trader finds the blocks on the blotter."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from orchestration.models import CashFlow
from portfolios.models import AccountDrift, RebalanceRun
from portfolios.services.drift import drift_refresh
from trading.models import Block, Order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _pct(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text.replace("−", "-")))


def test_model_to_drift_to_withdrawal_to_run_to_blotter(
    book, pm, trader, log_in, live_server, eager_celery
):
    acc1, acc2 = book["accounts"]
    model = book["model"]
    drift_refresh()  # as the demo's load does
    page = log_in(pm)

    # The dashboard shows both accounts with their stored drift and the histogram.
    page.goto(f"{live_server.url}/portfolios/drift/")
    row = page.locator(f'#drift-table tr[data-account="{acc1.code}"]')
    before = _pct(row.locator('[data-col="drift"]').inner_text())
    expect(page.locator("#drift-histogram .main-svg").first).to_be_visible()

    # Edit the model: everything in AAA and cash. Its accounts' drift moves, at once.
    page.goto(f"{live_server.url}/portfolios/models/{model.pk}/edit/")
    rows = page.locator("[data-row]")
    for ticker in ("BBB", "CCC", "DDD"):
        rows.filter(has=page.locator(f'input[value="{ticker}"]')).locator(
            "[data-remove-row]"
        ).click()
    page.locator('input[name="target_pct"]').first.fill("95")
    expect(page.locator("[data-total]")).to_have_text("100%")
    page.click("text=Save model")
    expect(page.locator(".message-success")).to_contain_text("saved")
    stored = AccountDrift.objects.get(portfolio=acc1)
    assert not stored.stale  # refreshed when the edit committed
    page.goto(f"{live_server.url}/portfolios/drift/")
    row = page.locator(f'#drift-table tr[data-account="{acc1.code}"]')
    after = _pct(row.locator('[data-col="drift"]').inner_text())
    assert after != before
    assert after == round(stored.drift * 100, 2)

    # A withdrawal on the first account, raised by the next run.
    page.goto(f"{live_server.url}{acc1.get_absolute_url()}")
    form = page.locator("#account-cash-flow-form")
    form.locator('select[name="kind"]').select_option("withdrawal")
    form.locator('input[name="amount"]').fill("2000")
    form.locator("button[type=submit]").click()
    expect(page.locator("#cash-flows-of-account")).to_contain_text("Withdrawal")

    # Rebalance all my accounts: one run over both, the withdrawal in its cash need.
    page.goto(f"{live_server.url}/portfolios/runs/new/")
    page.check('input[name="scope"][value="all"]')
    page.click("text=Propose orders")
    expect(page.locator("h1")).to_contain_text("Proposed")
    run = RebalanceRun.objects.get()
    assert sorted(run.portfolios.values_list("code", flat=True)) == ["ACC1", "ACC2"]
    assert CashFlow.objects.get().run_id == run.pk
    drafts = run.orders.filter(status=Order.Status.DRAFT)
    assert drafts.filter(security__ticker="AAA", side="buy").exists()  # now 95% of the model

    # Approve and release the whole proposal.
    page.click("#approve")
    expect(page.locator("#release")).to_be_visible()
    page.click("#release")
    expect(page.locator(".message-success").first).to_be_visible()
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.RELEASED
    # The withdrawal waits for the sells that raise it (booked once they are allocated).
    assert CashFlow.objects.get().status == CashFlow.Status.AWAITING_SELLS
    page.goto(f"{live_server.url}/portfolios/runs/cash-flows/")
    expect(page.locator("td", has_text="Waiting for its sells").first).to_be_visible()
    blocks = list(Block.objects.filter(orders__rebalance_run=run).distinct())
    assert blocks

    # The desk sees them on its blotter.
    desk = log_in(trader)
    desk.goto(f"{live_server.url}/trading/blotter/")
    for block in blocks:
        expect(desk.locator(f'tr[data-block="{block.pk}"]')).to_be_visible()
