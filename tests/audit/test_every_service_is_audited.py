"""Every service that changes state emits its audit event, inside its own transaction.

The services are found, not listed by hand: every public function defined in the
`services` module (or package) of every app of ours. Each one must appear below,
either with how to call it and the events it must emit (`CALLS`), or with why it
emits none of its own (`AUDITED_BY_CALLER`, `NO_STATE_CHANGE`, `THE_TRAIL_ITSELF`).
A new service that is in none of them fails `test_every_service_is_listed`; so does
a listed one that is gone.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

OUR_APPS = ("oms", "audit", "portfolios", "trading", "compliance", "orchestration", "config")


def services_modules() -> list:
    """The `services` module, or every module of the `services` package, of each app."""
    found = []
    for app in apps.get_app_configs():
        if app.name not in OUR_APPS:
            continue
        try:
            module = importlib.import_module(f"{app.name}.services")
        except ModuleNotFoundError:
            continue
        found.append(module)
        if hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
                found.append(importlib.import_module(info.name))
    return found


def public_services() -> set[str]:
    return {
        f"{module.__name__}.{name}"
        for module in services_modules()
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if not name.startswith("_") and function.__module__ == module.__name__
    }


# --- Services that change nothing, or whose writes their caller records ---------------------

NO_STATE_CHANGE = {
    "trading.services.orders.order_check": "validates an order's terms",
    "portfolios.services.reference.model_targets_errors": "validates a model's targets",
    "trading.services.routes.route_ticket": "reads a route into the broker's ticket",
    "trading.services.routes.routes_resend_unsent": "enqueues route_send for lost tasks",
    "trading.services.blocks.allocate_when_ended": "enqueues block_allocate after commit",
    "trading.services.trading_day.trading_day": "pure: the trading day of a moment",
    "trading.services.trading_day.day_order_over": "pure: whether a day order is over",
    "trading.services.trading_day.check_may_send": "pure: refuses a stale day order",
    "audit.services.snapshot": "reads fields for an event's before and after",
    "audit.services.audited_transaction": "the transaction the services open",
}
#: Helpers that write inside the transaction of a service that records their change:
#: the caller's call below must emit these kinds.
AUDITED_BY_CALLER = {
    "portfolios.services.holdings.holdings_book_fills": (
        "trading.services.allocations.block_allocate",
        {"order.allocated"},
    ),
    "trading.services.blocks.block_follow_routes": (
        "trading.services.executions.execution_apply",
        {"block.updated"},
    ),
    "trading.services.blocks.orders_follow_block": (
        "trading.services.executions.execution_apply",
        {"order.status"},
    ),
}
THE_TRAIL_ITSELF = {
    "audit.services.audit_record": "appends the event every service calls it for",
    "audit.services.audit_record_many": "appends one event per changed row, in one statement",
    "audit.services.audit_seal": "chains events into the trail (seals are the trail)",
    "audit.services.audit_checkpoint": "signs the trail's head (checkpoints are the trail)",
    "audit.services.checkpoint_export": "copies a checkpoint to the auditor's file",
}


# --- How to call each state-changing service -------------------------------------------------


class World:
    """Objects in the states the services start from, made through the services."""

    def __init__(self, personas, book):
        self.pm, self.trader, self.ops = personas["pm"], personas["trader"], personas["ops"]
        self.book = book
        self._reports = 0

    def order(self, upto: str = "draft", account: int = 0, quantity: str = "10"):
        from trading.services import orders as o

        order = o.order_create(
            actor=self.pm,
            portfolio=self.book["accounts"][account],
            security=self.book["securities"]["AAA"],
            side="buy",
            quantity=Decimal(quantity),
        )
        if upto in ("approved", "released"):
            o.orders_approve(actor=self.pm, order_ids=[order.pk])
        if upto == "released":
            o.orders_release(actor=self.pm, order_ids=[order.pk])
        order.refresh_from_db()
        return order

    def block(self):
        return self.order("released").block

    def route(self, sent: bool = False, acknowledged: bool = False):
        from trading.services import routes as r

        route = r.route_create(actor=self.trader, block_id=self.block().pk, broker=self.broker)
        if sent or acknowledged:
            r.route_claim_for_sending(route.pk)
        if acknowledged:
            self.apply(route, "new", "new")
        route.refresh_from_db()
        return route

    @property
    def broker(self):
        return self.book["broker"]

    def report(self, route, exec_type, ord_status, last=0, cum=0):
        from trading.brokers import ExecutionReport

        self._reports += 1
        return ExecutionReport(
            broker=route.broker.code,
            cl_ord_id=route.cl_ord_id,
            exec_id=f"X{self._reports}",
            exec_type=exec_type,
            ord_status=ord_status,
            transact_time=timezone.now(),
            last_quantity=Decimal(last),
            last_price=Decimal(100) if last else None,
            cumulative_quantity=Decimal(cum),
            average_price=Decimal(100) if cum else None,
        )

    def apply(self, route, exec_type, ord_status, last=0, cum=0):
        from trading.services.executions import execution_apply

        return execution_apply(self.report(route, exec_type, ord_status, last, cum))

    def filled_block(self, partly: bool = False):
        route = self.route(acknowledged=True)
        if partly:
            self.apply(route, "trade", "partially_filled", last=4, cum=4)
            self.apply(route, "canceled", "cancelled", cum=4)
        else:
            self.apply(route, "trade", "filled", last=route.quantity, cum=route.quantity)
        return route.block

    def run(self, upto: str = "proposed"):
        from orchestration import services as runs

        run = runs.rebalance_run_create(actor=self.pm, portfolios=[self.book["accounts"][0]])
        if upto == "approved":
            runs.rebalance_run_approve(actor=self.pm, run_id=run.pk)
        return run

    def draft_run(self, settings):
        from orchestration import services as runs

        settings.OMS_REBALANCE_INLINE_LIMIT = 0  # queued for the worker: left as a draft
        return runs.rebalance_run_create(actor=self.pm, portfolios=[self.book["accounts"][0]])


@dataclass(frozen=True)
class Call:
    """How to call a service: ``prepare`` makes what the call starts from (given a World
    and pytest's settings) and returns the call itself; the event kinds it must emit."""

    prepare: Callable
    emits: frozenset[str]


def call(prepare, *emits: str) -> Call:
    return Call(prepare, frozenset(emits))


def _sec(w, s):
    from portfolios.services.reference import security_create

    return lambda: security_create(
        actor=w.ops, ticker="NEW", name="New Co", asset_class="equity", currency="USD"
    )


def _prices(w, s):
    from portfolios.services.reference import prices_create

    security = w.book["securities"]["BBB"]
    day = timezone.now().date().replace(year=2001)
    return lambda: prices_create(
        actor=w.ops, prices=[{"security": security, "as_of": day, "price": Decimal(5)}]
    )


def _model(w, s):
    from portfolios.services.reference import model_create

    targets = [{"security": w.book["securities"]["AAA"], "weight": Decimal(1)}]
    return lambda: model_create(actor=w.pm, name="All AAA", targets=targets)


def _orders(name):
    def prepare(w, s):
        from trading.services import orders as o

        if name == "order_create":
            return lambda: w.order()
        if name == "orders_approve":
            order = w.order()
            return lambda: o.orders_approve(actor=w.pm, order_ids=[order.pk])
        if name == "orders_release":
            order = w.order("approved")
            return lambda: o.orders_release(actor=w.pm, order_ids=[order.pk])
        order = w.order("released")
        return lambda: o.order_cancel(actor=w.pm, order_id=order.pk, reason="changed my mind")

    return prepare


def _routes(name):
    def prepare(w, s):
        from trading.services import routes as r

        if name == "route_create":
            block = w.block()
            return lambda: r.route_create(actor=w.trader, block_id=block.pk, broker=w.broker)
        if name == "route_cancel_unsent":
            route = w.route()
            return lambda: r.route_cancel(actor=w.trader, route_id=route.pk, reason="wrong size")
        if name == "route_cancel":
            route = w.route(acknowledged=True)
            return lambda: r.route_cancel(actor=w.trader, route_id=route.pk)
        if name == "route_cancel_send":
            route = w.route(acknowledged=True)
            r.route_cancel(actor=w.trader, route_id=route.pk)
            return lambda: r.route_cancel_send(route.pk)
        route = w.route(sent=name == "route_mark_unconfirmed")
        if name == "route_mark_unconfirmed":
            return lambda: r.route_mark_unconfirmed(route.pk, "the connection dropped")
        if name == "route_not_sent":
            return lambda: r.route_not_sent(route.pk, "cannot be made into a message")
        return lambda: getattr(r, name)(route.pk)

    return prepare


def _executions(name):
    def prepare(w, s):
        from trading.services import executions as e

        route = w.route(acknowledged=True)
        report = w.report(route, "trade", "partially_filled", last=3, cum=3)
        return lambda: getattr(e, name)(report)

    return prepare


def _blocks(name):
    def prepare(w, s):
        from trading.services import allocations, blocks

        if name == "block_allocate":
            block = w.filled_block()
            return lambda: allocations.block_allocate(block_id=block.pk)
        block = w.filled_block(partly=True)
        return lambda: blocks.block_done_for_day(actor=w.trader, block_id=block.pk)

    return prepare


def _runs(name):
    def prepare(w, s):
        from orchestration import services as runs

        if name == "rebalance_run_create":
            return lambda: w.run()
        if name == "rebalance_run_execute":
            run = w.draft_run(s)
            return lambda: runs.rebalance_run_execute(run_id=run.pk)
        run = w.run("approved" if name == "rebalance_run_release" else "proposed")
        return lambda: getattr(runs, name)(actor=w.pm, run_id=run.pk)

    return prepare


CALLS = {
    "portfolios.services.reference.security_create": call(_sec, "security.created"),
    "portfolios.services.reference.prices_create": call(_prices, "price.created"),
    "portfolios.services.reference.model_create": call(_model, "model.created"),
    "trading.services.orders.order_create": call(_orders("order_create"), "order.created"),
    "trading.services.orders.orders_approve": call(_orders("orders_approve"), "order.approved"),
    "trading.services.orders.orders_release": call(
        _orders("orders_release"), "order.released", "block.orders_added"
    ),
    "trading.services.orders.order_cancel": call(
        _orders("order_cancel"), "order.cancelled", "block.order_removed"
    ),
    "trading.services.routes.route_create": call(
        _routes("route_create"), "route.created", "block.routed", "order.status"
    ),
    "trading.services.routes.route_claim_for_sending": call(
        _routes("route_claim_for_sending"), "route.sent"
    ),
    "trading.services.routes.route_mark_unconfirmed": call(
        _routes("route_mark_unconfirmed"), "route.unconfirmed"
    ),
    "trading.services.routes.route_cancel": call(_routes("route_cancel"), "route.cancel_requested"),
    "trading.services.routes.route_not_sent": call(
        _routes("route_not_sent"), "route.not_sent", "block.updated"
    ),
    # The simulated broker answers within the call: its fills are applied and recorded.
    "trading.services.routes.route_send": call(
        _routes("route_send"), "route.sent", "execution.new", "execution.trade"
    ),
    "trading.services.routes.route_cancel_send": call(
        _routes("route_cancel_send"), "execution.canceled"
    ),
    "trading.services.executions.execution_apply": call(
        _executions("execution_apply"), "execution.trade", "block.updated", "order.status"
    ),
    "trading.services.executions.apply_in_order": call(
        _executions("apply_in_order"), "execution.trade"
    ),
    "trading.services.allocations.block_allocate": call(
        _blocks("block_allocate"), "order.allocated", "block.allocated"
    ),
    "trading.services.blocks.block_done_for_day": call(
        _blocks("block_done_for_day"), "block.done_for_day"
    ),
    "orchestration.services.rebalance_run_create": call(
        _runs("rebalance_run_create"),
        "rebalance.created",
        "rebalance.started",
        "rebalance.proposed",
        "order.created",
    ),
    "orchestration.services.rebalance_run_execute": call(
        _runs("rebalance_run_execute"), "rebalance.started", "rebalance.proposed"
    ),
    "orchestration.services.rebalance_run_approve": call(
        _runs("rebalance_run_approve"), "rebalance.approved", "order.approved"
    ),
    "orchestration.services.rebalance_run_release": call(
        _runs("rebalance_run_release"), "rebalance.released", "order.released"
    ),
    "orchestration.services.rebalance_run_cancel": call(
        _runs("rebalance_run_cancel"), "rebalance.cancelled", "order.cancelled"
    ),
}
#: A second call of route_cancel: a route not yet sent is cancelled here and now.
EXTRA_CALLS = {
    "route_cancel before it is sent": (
        "trading.services.routes.route_cancel",
        call(_routes("route_cancel_unsent"), "route.cancelled", "block.updated"),
    ),
}


def test_every_service_is_listed():
    listed = set(CALLS) | set(AUDITED_BY_CALLER) | set(NO_STATE_CHANGE) | set(THE_TRAIL_ITSELF)
    found = public_services()
    assert not found - listed, (
        "public services neither called by this test nor listed with a reason: "
        f"{sorted(found - listed)}"
    )
    assert not listed - found, f"listed here but no longer a service: {sorted(listed - found)}"
    assert {caller for caller, _ in AUDITED_BY_CALLER.values()} <= set(CALLS)
    for caller, kinds in AUDITED_BY_CALLER.values():
        assert kinds <= CALLS[caller].emits


@pytest.fixture
def spied(monkeypatch):
    """Each event appended (by audit_record, or one per entry of audit_record_many),
    with whether it ran inside a transaction opened below the test's own (the
    service's)."""
    import audit.services

    seen: list[tuple[str, bool]] = []
    real = audit.services.audit_record
    real_many = audit.services.audit_record_many
    floor: list[int] = [len(connection.atomic_blocks)]

    def spy(**kwargs):
        seen.append((kwargs["kind"], len(connection.atomic_blocks) > floor[0]))
        return real(**kwargs)

    def spy_many(**kwargs):
        events = real_many(**kwargs)
        inside = len(connection.atomic_blocks) > floor[0]
        seen.extend((kwargs["kind"], inside) for _ in events)
        return events

    for module in services_modules():
        if getattr(module, "audit_record", None) is real:
            monkeypatch.setattr(module, "audit_record", spy)
        if getattr(module, "audit_record_many", None) is real_many:
            monkeypatch.setattr(module, "audit_record_many", spy_many)
    return seen, floor


def _run(target: Call, personas, book, settings, spied, monkeypatch) -> set[str]:
    seen, floor = spied
    invoke = target.prepare(World(personas, book), settings)
    seen.clear()
    before = AuditEvent.objects.count()
    floor[0] = len(connection.atomic_blocks)
    invoke()
    kinds = {kind for kind, _ in seen}
    assert all(inside for _, inside in seen), f"recorded outside the service's transaction: {seen}"
    assert AuditEvent.objects.count() - before == len(seen)  # each call appended one event
    return kinds


@pytest.mark.parametrize("name", sorted(CALLS))
def test_each_service_emits_its_events(name, personas, book, settings, spied, monkeypatch):
    kinds = _run(CALLS[name], personas, book, settings, spied, monkeypatch)
    assert CALLS[name].emits <= kinds, f"{name} emitted {sorted(kinds)}"


@pytest.mark.parametrize("case", sorted(EXTRA_CALLS))
def test_each_way_of_a_service_emits_its_events(case, personas, book, settings, spied, monkeypatch):
    name, target = EXTRA_CALLS[case]
    kinds = _run(target, personas, book, settings, spied, monkeypatch)
    assert target.emits <= kinds, f"{name} emitted {sorted(kinds)}"


def test_the_caller_records_what_the_holdings_booked(personas, book, settings, spied, monkeypatch):
    _run(
        CALLS["trading.services.allocations.block_allocate"],
        personas,
        book,
        settings,
        spied,
        monkeypatch,
    )
    allocated = AuditEvent.objects.filter(kind="order.allocated").first()
    assert {"position", "cash", "cash_currency"} <= set(allocated.after)
    assert allocated.before["position"] != allocated.after["position"]
