"""The compliance story in a real browser: a PM's order breaches a soft limit at
approval, the PM asks for an override and cannot decide it (not even as a compliance
officer: four eyes), another compliance officer approves it, the order is released and
traded on the simulated broker, the post-trade check raises an alert, compliance
resolves it, and the audit explorer shows every step and verifies the chain."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from compliance.models import Alert, Override
from compliance.services import rules as rule_services
from oms.roles import Role
from portfolios.models import Security
from tests.e2e.test_chain import route_from_the_ticket
from trading.models import Order
from trading.services import orders as order_services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_override_four_eyes_trade_alert_and_audit(
    book, pm, trader, compliance_officer, eager_celery, log_in, live_server
):
    from django.contrib.auth.models import Group

    account = book["accounts"][0]
    Security.objects.filter(ticker="AAA").update(issuer="Acme")
    # The PM is a compliance officer too: only the four-eyes rule keeps them from
    # deciding their own request.
    pm.groups.add(Group.objects.get(name=Role.COMPLIANCE.value))
    rule_services.rule_create(
        actor=compliance_officer,
        name="Issuer 70%",
        kind="max_weight",
        params={"group_by": "issuer", "limit": 0.70},
        severity="soft",
        when="pre",
    )
    rule_services.rule_create(
        actor=compliance_officer,
        name="Single security 70%",
        kind="max_weight",
        params={"group_by": "security", "limit": 0.70},
        severity="soft",
        when="post",
    )
    # ACC1: NAV 90,000, AAA 60,000; 40 more AAA is 64,000 (71.1%), over both limits.
    order = order_services.order_create(
        actor=pm, portfolio=account, security=book["securities"]["AAA"], side="buy", quantity=40
    )
    order_url = f"{live_server.url}{order.get_absolute_url()}"

    # --- The PM approves the order: the check holds it for an override.
    page = log_in(pm)
    page.goto(order_url)
    page.click("button:text-is('Approve')")
    expect(
        page.locator(".message-error, .message-success, .message-warning").first
    ).to_contain_text("Needs an override: Issuer 70% (Acme): 71.11% over the limit of 70.00%")
    expect(page.locator("h1")).to_contain_text("Needs override")
    checks = page.locator("#pretrade-results")
    expect(checks).to_contain_text("Issuer 70%")
    expect(checks.locator("tr", has_text="Issuer 70%")).to_contain_text("Fail")

    # --- The PM asks for an override with a justification.
    page.fill(
        "#override-request textarea[name=justification]", "The client asked for it in writing."
    )
    page.click("#override-request button[type=submit]")
    expect(page.locator(".message-success")).to_contain_text("Override requested")
    override = Override.objects.get(order=order)
    expect(page.locator("#pretrade-results")).to_contain_text(
        f"Override #{override.pk}: requested · asked by {pm.username}"
    )
    expect(page.locator("#override-request")).to_have_count(0)  # one request at a time

    # ... and cannot decide it: the queue shows it without the buttons.
    page.goto(f"{live_server.url}/compliance/overrides/")
    row = page.locator("#overrides tbody tr", has_text=f"#{override.pk}")
    expect(row).to_contain_text("The client asked for it in writing.")
    expect(row).to_contain_text("Your request: another officer decides.")
    expect(row.locator("button")).to_have_count(0)

    # --- Another compliance officer approves it.
    officer = log_in(compliance_officer)
    officer.goto(f"{live_server.url}/compliance/overrides/")
    row = officer.locator("#overrides tbody tr", has_text=f"#{override.pk}")
    expect(row).to_contain_text("Issuer 70%")
    row.locator("input[name=note]").fill("Client mandate allows it.")
    row.locator("button[value=approve]").click()
    expect(officer.locator(".message-success")).to_contain_text(f"Override {override.pk} approved.")
    officer.goto(f"{live_server.url}/compliance/overrides/?status=approved")
    expect(officer.locator("#overrides")).to_contain_text(
        f"by {compliance_officer.username}: Client mandate allows it."
    )
    order.refresh_from_db()
    assert order.status == Order.Status.APPROVED

    # --- The PM sees it approved and releases it (the release's check counts the override).
    page.goto(order_url)
    expect(page.locator("h1")).to_contain_text("Approved")
    page.click("button:text-is('Release to trading')")
    expect(page.locator("h1")).to_contain_text("Released")
    order.refresh_from_db()
    assert order.status == Order.Status.RELEASED and order.block_id

    # --- The trader routes the block to the simulated broker: it fills and is allocated.
    desk = log_in(trader)
    expect(desk.locator(f"#block-{order.block_id}")).to_contain_text(account.code)
    route_from_the_ticket(desk, order.block_id, "SIM · Simulated")
    expect(desk.locator(f"#block-{order.block_id} [data-col=status]")).to_contain_text("Allocated")
    order.refresh_from_db()
    assert order.status == Order.Status.ALLOCATED

    # --- The post-trade check after the allocation opened an alert; the PM sees it on
    # the account's page.
    alert = Alert.objects.get(portfolio=account, status=Alert.Status.OPEN)
    assert (alert.rule.name, alert.source) == ("Single security 70%", "allocation")
    page.goto(f"{live_server.url}{account.get_absolute_url()}")
    expect(page.locator("#account-alerts")).to_contain_text("Single security 70%")
    expect(page.locator("#account-alerts")).to_contain_text("71.11% over the limit of 70.00%")

    # --- Compliance resolves it on the alert queue.
    officer.goto(f"{live_server.url}/compliance/alerts/")
    row = officer.locator("#alerts tbody tr", has_text=f"#{alert.pk}")
    expect(row).to_contain_text(account.code)
    expect(row).to_contain_text("Single security 70%")
    row.locator("input[name=text]").fill("PM trims AAA tomorrow, agreed with the client.")
    row.locator("button[value=resolve]").click()
    expect(officer.locator(".message-success")).to_contain_text(f"Alert {alert.pk}: done.")
    expect(officer.locator("#alerts")).not_to_contain_text(f"#{alert.pk}")
    officer.goto(f"{live_server.url}/compliance/alerts/?status=resolved")
    expect(officer.locator("#alerts")).to_contain_text(
        f"resolved by {compliance_officer.username}: PM trims AAA tomorrow"
    )
    page.goto(f"{live_server.url}{account.get_absolute_url()}")
    expect(page.locator("#account-alerts")).to_contain_text("No alert here.")

    # --- The audit explorer shows every step, by whom, and the chain verifies.
    officer.goto(f"{live_server.url}/compliance/audit/")
    steps = [
        ("override.", {"override.requested": pm.username, "override.approved": "compliance"}),
        ("order.", {"order.needs_override": pm.username, "order.released": pm.username}),
        ("alert.", {"alert.opened": "system", "alert.resolved": "compliance"}),
    ]
    for prefix, kinds in steps:
        officer.fill("#id_actor", "")
        officer.fill("#id_kind", prefix)
        officer.click("form.filters button[type=submit]")
        table = officer.locator("#audit")
        for kind, actor in kinds.items():
            event = table.locator(f'tr[data-kind="{kind}"]').first
            expect(event).to_be_visible()
            expect(event.locator(".actor")).to_have_text(actor)
    reason = officer.locator('#audit tr[data-kind="alert.resolved"]').first
    expect(reason).to_contain_text("PM trims AAA tomorrow")
    officer.goto(f"{live_server.url}/compliance/audit/verify/")
    officer.click("#verify")
    expect(officer.locator("#verify-result")).to_contain_text("Chain intact.")
    assert Decimal(order.filled_quantity) == Decimal(40)
