"""Two writers creating the same account's first holding at once: an option's exercise
delivering the underlying into an account that does not hold it yet, while a fill of
that underlying is allocated to the same account (decision 55).

Both run on their own PostgreSQL connections. The exercise is held at the moment it
delivers (it holds the option's position and the account's cash by then), until the
allocation is seen waiting for a lock on another connection: the two are then inside
each other's way. Neither may fail (no unique violation, no deadlock for a task retry
to recover): the second waits for the first, and the account ends with the sum of
both.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from portfolios.models import CashBalance, LifecycleEvent, Position, Price, TaxLot
from portfolios.services import lifecycle, reference
from portfolios.services.holdings import holdings_book_fill
from tests.conftest import service_missing
from tests.desk import broker_report, released_block
from tests.portfolios.test_lifecycle import EXPIRY, _option
from trading.models import Allocation
from trading.services import allocations as allocation_services
from trading.services import executions as execution_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


def _someone_waits_for_a_lock(timeout: float = 10.0) -> bool:
    """Whether, within `timeout`, a backend of this test database waits on a lock."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


def _in_each_others_way(monkeypatch):
    """Hold the exercise where it delivers until the allocation has started its booking
    and waits on a lock; the allocation starts its booking once the exercise is there."""
    both_in = threading.Barrier(2, timeout=10)
    real_deliver = lifecycle.holdings_deliver
    real_book = allocation_services.holdings_book_many

    def deliver(**kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_in.wait()
        # a third connection watches: the allocation is blocked by the exercise
        watcher = threading.Thread(target=_watch)
        watcher.start()
        watcher.join()
        return real_deliver(**kwargs)

    def _watch():
        try:
            waited.append(_someone_waits_for_a_lock())
        finally:
            connection.close()

    def book(**kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_in.wait()
        return real_book(**kwargs)

    waited: list[bool] = []
    monkeypatch.setattr(lifecycle, "holdings_deliver", deliver)
    monkeypatch.setattr(allocation_services, "holdings_book_many", book)
    return waited


def _run_together(*jobs) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(job):
        try:
            job()
        except BaseException as exc:  # the finding: any error of either writer
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def _filled_route(pm, trader, book, ticker, quantity):
    block = released_block(pm, book, str(quantity), ticker=ticker)
    route = route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    route_services.route_claim_for_sending(route.pk)
    execution_services.execution_apply(broker_report(route, "N", "new", "new"))
    execution_services.execution_apply(
        broker_report(route, "F", "trade", "filled", quantity, quantity, price="110")
    )
    return route


@pytest.fixture(
    params=[("call", "100", True), ("put", "120", False)], ids=["exercise", "assignment"]
)
def option_on_xyz(request, ops, book):
    """XYZ, which ACC1 does not hold, and ACC1's option on it, in the money on its
    expiry (XYZ closing at 115): a long call struck at 100, exercised, or a short put
    struck at 120, assigned; either buys 100 XYZ at the strike."""
    right, strike, long = request.param
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL): writers at once (SQLite serialises them)")
    xyz = reference.security_create(
        actor=ops, ticker="XYZ", name="XYZ Corp", asset_class="equity", currency="USD"
    )
    Price.objects.create(security=xyz, as_of=EXPIRY, price=D(115))
    today = date.today()
    for day in (today - timedelta(days=1), today):
        Price.objects.create(security=xyz, as_of=day, price=D(110))
    call = _option(ops, xyz, right, strike)
    account = book["accounts"][0]
    with transaction.atomic():
        holdings_book_fill(
            portfolio=account,
            security=call,
            buying=long,
            quantity=D(1),
            price=D(5),
            on_date=EXPIRY - timedelta(days=30),
        )
    book["securities"]["XYZ"] = xyz
    assert not Position.objects.filter(portfolio=account, security=xyz).exists()
    return account, xyz, call


def test_an_exercise_and_an_allocation_create_the_same_position_at_once(
    pm, trader, book, option_on_xyz, monkeypatch
):
    account, xyz, option = option_on_xyz
    route = _filled_route(pm, trader, book, "XYZ", 50)
    cash = CashBalance.objects.get(portfolio=account, currency="USD").amount
    waited = _in_each_others_way(monkeypatch)

    errors = _run_together(
        lambda: lifecycle.lifecycle_book(on=EXPIRY),
        lambda: allocation_services.block_allocate(block_id=route.block_id),
    )

    assert errors == []
    assert waited == [True]  # the two were inside each other's way
    event = LifecycleEvent.objects.get(security=option)
    assert event.outcome == ("exercised" if option.option_right == "call" else "assigned")
    [allocation] = Allocation.objects.filter(order__block_id=route.block_id)
    assert allocation.quantity == 50
    position = Position.objects.get(portfolio=account, security=xyz)
    assert position.quantity == 100 + 50  # the exercise's delivery and the allocation
    lots = TaxLot.objects.filter(portfolio=account, security=xyz)
    assert sum(lot.quantity for lot in lots) == 150
    # the strike paid for 100 shares and the 50 bought at 110
    assert CashBalance.objects.get(portfolio=account, currency="USD").amount == (
        cash - 100 * option.strike - D(5_500) - allocation.commission
    )
