"""The blotter in a real browser: dense (30+ blocks on a 1440×900 screen),
worked from the keyboard, and pushed: a fill shows without a reload, and the
page makes one request per change (or one poll a second), never one per row.

Two ways of pushing: through the Server-Sent Events stream of an ASGI server
(uvicorn, as in production) on Redis, and without Redis, where the page polls
one URL once a second (pytest-django's live server is a WSGI server: there the
stream refuses and the page falls back to its poll).
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from tests.conftest import service_missing
from tests.e2e.servers import asgi_served
from trading.brokers import ExecutionReport
from trading.models import Block, Route
from trading.services import executions as execution_services
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("OMS_SCREENSHOTS", ROOT / "var" / "screenshots"))
WIDE = {"width": 1440, "height": 900}


def _need_postgresql() -> None:
    if connection.vendor != "postgresql":
        # the live server shares one in-memory SQLite connection across threads: a
        # fill written from the test while the page reads would race on it
        service_missing("PostgreSQL (DATABASE_URL): fills written beside the live server")


def _release_blocks(pm, book, count: int) -> list[Block]:
    """``count`` blocks: one order per block, limit buys at 50 (they rest at SIM)."""
    from portfolios.models import Price, Security

    blocks = []
    today = timezone.now().date()
    for n in range(count):
        security = Security.objects.create(
            ticker=f"T{n:02d}", name=f"Test {n}", asset_class="equity", currency="USD"
        )
        Price.objects.create(security=security, as_of=today, price=Decimal(100))
        order = order_services.order_create(
            actor=pm,
            portfolio=book["accounts"][n % 2],
            security=security,
            side="buy",
            quantity=Decimal(100 + n),
            order_type="limit",
            limit_price=Decimal(50),
        )
        order_services.orders_approve(actor=pm, order_ids=[order.pk])
        order_services.orders_release(actor=pm, order_ids=[order.pk])
        blocks.append(Block.objects.get(orders__pk=order.pk))
    return blocks


def _fill(route: Route, exec_id: str, quantity: int) -> None:
    execution_services.execution_apply(
        ExecutionReport(
            broker=route.broker.code,
            cl_ord_id=route.cl_ord_id,
            exec_id=exec_id,
            exec_type="trade",
            ord_status="partially_filled",
            transact_time=timezone.now(),
            last_quantity=Decimal(quantity),
            last_price=Decimal("49.5"),
        )
    )


def _watch_requests(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def _log_in(browser, base_url: str, user):
    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", f"pw-{user.username}")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return context, page


def test_a_dense_blotter_worked_from_the_keyboard_follows_a_fill_with_one_poll(
    book, pm, trader, browser, live_server, eager_celery
):
    _need_postgresql()
    blocks = _release_blocks(pm, book, 36)
    resting = blocks[-1]  # the newest: the top row
    route = route_services.route_create(actor=trader, block_id=resting.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    context, desk = _log_in(browser, live_server.url, trader)
    try:
        desk.goto(f"{live_server.url}/trading/blotter/")
        expect(desk.locator("h1")).to_have_text("Blotter")
        # dense: 30 or more blocks on the screen at once, one line each
        visible = desk.evaluate(
            """() => [...document.querySelectorAll('#blotter-body tr.block-row')]
                 .filter(r => { const b = r.getBoundingClientRect();
                                return b.top >= 0 && b.bottom <= window.innerHeight; }).length"""
        )
        assert visible >= 30, f"only {visible} blocks fit on a 1440x900 screen"
        SHOTS.mkdir(parents=True, exist_ok=True)
        desk.screenshot(path=str(SHOTS / "blotter-1440x900.png"))

        # keyboard: / searches, j/k move, r opens the ticket on the selected block
        desk.keyboard.press("/")
        assert desk.evaluate("document.activeElement.id") == "blotter-search"
        desk.keyboard.press("Escape")
        desk.locator(f"#block-{blocks[-2].pk}").focus()
        desk.keyboard.press("j")
        assert desk.evaluate("document.activeElement.dataset.block") == str(blocks[-3].pk)
        desk.keyboard.press("k")
        desk.keyboard.press("r")
        expect(desk.locator("#ticket")).to_be_visible()
        expect(desk.locator("#ticket-what")).to_contain_text(blocks[-2].security.ticker)
        desk.screenshot(path=str(SHOTS / "blotter-ticket.png"))
        desk.keyboard.press("Escape")
        expect(desk.locator("#ticket")).to_be_hidden()

        desk.evaluate("window.__not_reloaded = true")
        expect(desk.locator("#push-state")).to_contain_text("live")
        requests = _watch_requests(desk)
        _fill(route, "E2E-1", 40)
        filled = desk.locator(f"#block-{resting.pk} [data-col=filled]")
        expect(filled).to_have_text("40", timeout=5_000)
        time.sleep(3)  # a quiet while: what does the page ask for?
        assert desk.evaluate("window.__not_reloaded === true"), "the blotter was reloaded"
        polls = [u for u in requests if "/push/poll/?topic=blotter" in u]
        rows = [u for u in requests if "/trading/blotter/rows/" in u]
        # about one a second for the whole blotter (the live prices poll their own topic)
        assert 2 <= len(polls) <= 6, requests
        assert len(rows) == 1, requests  # one fetch for the one change
        assert not [u for u in requests if "/push/" not in u and "/blotter/rows/" not in u]
        desk.screenshot(path=str(SHOTS / "blotter-filled.png"))
    finally:
        context.close()


@pytest.fixture
def asgi_server(tmp_path):
    """The web application under uvicorn, as production runs it, on the test database."""
    _need_postgresql()
    if not settings.REDIS_URL:
        service_missing("Redis: set REDIS_URL (the stream is fed by Redis pub/sub)")
    from tests.integration.conftest import _database_url

    env = os.environ | {
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "OMS_PUSH_REDIS_URL": settings.REDIS_URL,
        "STATIC_ROOT": str(tmp_path / "static"),
        "PYTHONUNBUFFERED": "1",
    }
    with asgi_served(env, tmp_path / "uvicorn.log") as url:
        yield url


def test_over_the_stream_a_fill_shows_with_one_fetch_and_no_poll(
    book, pm, trader, browser, asgi_server, role_groups
):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import Group

    from oms.roles import Role

    trader.groups.add(Group.objects.get(name=Role.TRADER.value))
    # the server checks passwords with the production hashers, not the tests' fast one
    hasher = PBKDF2PasswordHasher()
    trader.password = hasher.encode(f"pw-{trader.username}", hasher.salt(), iterations=1000)
    trader.save(update_fields=["password"])
    [block] = _release_blocks(pm, book, 1)
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    context, desk = _log_in(browser, asgi_server, trader)
    try:
        desk.goto(f"{asgi_server}/trading/blotter/")
        expect(desk.locator("#push-state")).to_have_attribute("data-mode", "sse")
        desk.evaluate("window.__not_reloaded = true")
        requests = _watch_requests(desk)
        started = time.monotonic()
        _fill(route, "E2E-SSE-1", 25)
        expect(desk.locator(f"#block-{block.pk} [data-col=filled]")).to_have_text(
            "25", timeout=5_000
        )
        seen_after = time.monotonic() - started
        time.sleep(2)
        # a second blotter open at the same time hears the next fill too
        other_context, other = _log_in(browser, asgi_server, trader)
        other.goto(f"{asgi_server}/trading/blotter/")
        expect(other.locator("#push-state")).to_have_attribute("data-mode", "sse")
        _fill(route, "E2E-SSE-2", 5)
        for page in (desk, other):
            expect(page.locator(f"#block-{block.pk} [data-col=filled]")).to_have_text("30")
        other_context.close()
        assert desk.evaluate("window.__not_reloaded === true")
        assert not [u for u in requests if "/push/poll/" in u], requests  # pushed, not polled
        rows = [u for u in requests if "/trading/blotter/rows/" in u]
        assert 1 <= len(rows) <= 2, requests  # one fetch per change
        print(f"fill shown on the blotter {seen_after * 1000:.0f} ms after it was applied")
    finally:
        context.close()
