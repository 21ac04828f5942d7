"""In a browser: a PM enters a withdrawal on the account page, rebalances, edits a
proposed quantity on the run page (a breaking quantity is refused with the rule, a
good one saved) and sees the what-if follow."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from orchestration.models import CashFlow
from trading.models import Order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_enter_a_withdrawal_and_edit_a_proposed_quantity(book, pm, log_in, live_server):
    account = book["accounts"][0]
    page = log_in(pm)
    page.goto(f"{live_server.url}{account.get_absolute_url()}")
    form = page.locator("#account-cash-flow-form")
    expect(form).to_be_visible()
    form.locator('select[name="kind"]').select_option("withdrawal")
    form.locator('input[name="amount"]').fill("3000")
    form.locator("button[type=submit]").click()
    expect(page.locator("#cash-flows-of-account")).to_contain_text("Withdrawal")
    assert CashFlow.objects.get().status == "pending"

    page.goto(f"{live_server.url}/portfolios/runs/new/?portfolios={account.pk}")
    page.click("text=Propose orders")
    expect(page.locator("h1")).to_contain_text("Proposed")
    expect(page.locator("#what-if")).to_contain_text("3,000.00")  # the cash need
    sell = Order.objects.get(portfolio=account, security__ticker="AAA", side="sell")
    row = page.locator("#orders tbody tr", has=page.locator(f'a:text-is("#{sell.pk}")'))
    box = row.locator('input[name="quantity"]')
    box.fill("601")  # more than the 600 held
    row.locator(".quantity-edit button[type=submit]").click()
    expect(page.locator("#order-edit-form")).to_contain_text("short sale")
    wanted = sell.quantity + 5  # selling more keeps the cash floor (the withdrawal is tight)
    page.fill("#id_quantity", f"{wanted.normalize():f}")
    page.click("#order-edit-form button[type=submit]")
    expect(page.locator(".message").first).to_contain_text("what-if and pre-trade check")
    sell.refresh_from_db()
    assert sell.quantity == wanted
    row = page.locator("#orders tbody tr", has=page.locator(f'a:text-is("#{sell.pk}")'))
    expect(row.locator('input[name="quantity"]')).to_have_value(f"{sell.quantity.normalize():f}")
