"""Every page, in a real browser, under its Content-Security-Policy: no violation and
no script error, on the demo book, for each role; the pages' own scripts still work
(a confirm before cancelling, HTMX swaps and polling on the blotter)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from config.demo import DEMO_PASSWORD, load_demo_data

from .test_chain import route_from_the_ticket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Collected in the page itself: the browser fires this event for every blocked script,
# style, handler, eval or connection, whatever the console says.
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI || "inline"} ` +
                           `${event.sourceFile || ""}:${event.lineNumber || ""}`);
});
"""


@pytest.fixture
def demo(eager_celery):
    load_demo_data(accounts=4, days=10)


@pytest.fixture
def open_as(browser, live_server):
    """A logged-in page for a demo user, watched for violations and script errors."""
    contexts = []

    def login(username):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(15_000)
        context.add_init_script(WATCH)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on(
            "console",
            lambda message: message.type == "error" and page.problems.append(message.text),
        )
        page.on("pageerror", lambda error: page.problems.append(f"uncaught: {error}"))
        page.on(
            "response",
            lambda response: (
                response.status >= 400 and page.problems.append(f"{response.status} {response.url}")
            ),
        )
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    yield login
    for context in contexts:
        context.close()


def visit(page, url: str) -> None:
    """Load a page, let its polling run a round, and find nothing blocked or broken."""
    response = page.goto(url)
    assert response.status < 400, (url, response.status)
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, url
    page.wait_for_timeout(1_300)  # the live fragments poll every second
    assert_clean(page, url)


# Redoc's footer shows a logo from its CDN; the policy blocks the request (the docs
# work offline) and Redoc hides the image when it fails to load.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
EXPECTED = re.compile(rf"^img-src {re.escape(REDOC_LOGO)} ")


def assert_clean(page, where: str) -> None:
    violations = [v for v in page.evaluate("window.__violations") if not EXPECTED.match(v)]
    assert violations == [], (where, violations)
    problems = [p for p in page.problems if f"image '{REDOC_LOGO}'" not in p]
    assert problems == [], (where, problems)


def test_every_role_s_pages_run_under_the_policy(demo, open_as, live_server):
    from portfolios.models import ModelPortfolio, Portfolio

    base = live_server.url
    account = Portfolio.objects.order_by("pk").first()
    model = ModelPortfolio.objects.order_by("pk").first()

    # --- The PM: accounts, one account, a rebalance proposed and released.
    pm = open_as("pm")
    for path in ("/portfolios/", f"/portfolios/{account.pk}/", f"/portfolios/models/{model.pk}/"):
        visit(pm, base + path)
    for path in ("/portfolios/models/", f"/portfolios/models/{model.pk}/edit/"):
        visit(pm, base + path)
    visit(pm, base + f"/portfolios/models/{model.pk}/assign/")
    pm.goto(base + "/portfolios/")
    pm.locator('input[name="portfolios"]').first.check()
    pm.click("text=Rebalance selected")
    pm.click("text=Propose orders")
    expect(pm.locator("h1")).to_contain_text("Proposed")
    assert_clean(pm, "the proposed run")
    run_url = pm.url
    pm.click("#approve")
    pm.click("#release")
    expect(pm.locator("h1")).to_contain_text("Released")
    for path in ("/portfolios/runs/", "/trading/orders/", "/trading/orders/new/"):
        visit(pm, base + path)
    visit(pm, run_url)

    # --- The trader: the blotter routes a block over HTMX and follows it to allocated.
    trader = open_as("trader")
    visit(trader, base + "/trading/blotter/")
    block_id = trader.locator("tr.block-row").first.get_attribute("id")
    route_from_the_ticket(trader, int(block_id.removeprefix("block-")), "SIM · Simulated broker")
    expect(trader.locator(f"#{block_id} [data-col=status]")).to_contain_text("Allocated")
    assert_clean(trader, "the blotter after routing")
    visit(trader, base + f"/trading/blocks/{block_id.removeprefix('block-')}/")
    visit(trader, base + "/trading/brokers/")

    # --- Compliance: the audit trail and its verification.
    compliance = open_as("compliance")
    visit(compliance, base + "/compliance/audit/")
    visit(compliance, base + "/compliance/audit/verify/")
    compliance.click("#verify")
    expect(compliance.locator("#verify-result")).to_contain_text("Chain intact")
    assert_clean(compliance, "the verified chain")

    # --- Operations: the admin and the API's documentation.
    ops = open_as("ops")
    for path in ("/admin/", "/admin/portfolios/security/", "/admin/portfolios/security/add/"):
        visit(ops, base + path)
    visit(ops, base + "/api/docs/")
    expect(ops.locator(".swagger-ui .info .title")).to_contain_text("OMS API", timeout=30_000)
    assert_clean(ops, "Swagger UI")
    visit(ops, base + "/api/redoc/")
    expect(ops.locator("h1").first).to_contain_text("OMS API", timeout=30_000)
    assert_clean(ops, "Redoc")


def test_a_cancel_asks_first_without_an_inline_handler(demo, open_as, live_server):
    """The confirm that was an onsubmit attribute now comes from oms.js (data-confirm)."""
    from portfolios.models import Portfolio, Security
    from trading.models import Order
    from trading.services import orders as order_services

    pm_user = Portfolio.objects.order_by("pk").first().manager
    order = order_services.order_create(
        actor=pm_user,
        portfolio=Portfolio.objects.order_by("pk").first(),
        security=Security.objects.order_by("pk").first(),
        side="buy",
        quantity=1,
    )
    page = open_as("pm")
    visit(page, f"{live_server.url}{order.get_absolute_url()}")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.click("text=Cancel order")
    page.wait_for_timeout(300)
    assert asked == ["Cancel this order?"]
    order.refresh_from_db()
    assert order.status == Order.Status.DRAFT, "dismissed: nothing was cancelled"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Cancel order")
    expect(page.locator(".message-success")).to_be_visible()
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert_clean(page, "the cancelled order")
