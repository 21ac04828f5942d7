"""Every service that changes state emits its audit event, inside its own transaction.

The services are found, not listed by hand: every public function defined in the
`services` module (or package) of every app of ours. Each one must appear below,
either with how to call it and the events it must emit (`CALLS`), or with why it
emits none of its own (`AUDITED_BY_CALLER`, `NO_STATE_CHANGE`, `THE_TRAIL_ITSELF`).
A new service that is in none of them fails `test_every_service_is_listed`; so does
a listed one that is gone.

Each call must write only inside a transaction it opens (never one row committed
on its own), and every transaction of its that writes must record an event: a
service that changes a row without saying so fails `test_each_service_emits_its_events`.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
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
    "portfolios.services.models.model_targets_errors": "validates a model's targets",
    "portfolios.services.models.model_snapshot": "reads a model for an event's before and after",
    "portfolios.services.models.model_targets_export": "reads a model's targets as CSV",
    "trading.services.routes.route_ticket": "reads a route into the broker's ticket",
    "trading.services.routes.routes_resend_unsent": "enqueues route_send for lost tasks",
    "trading.services.blocks.allocate_when_ended": "enqueues block_allocate after commit",
    "trading.services.blocks.allocate_all_when_ended": "enqueues blocks_allocate after commit",
    "trading.services.trading_day.trading_day": "pure: the trading day of a moment",
    "trading.services.blocks.block_status_by_routes": "pure: a block's status by its routes",
    "trading.services.trading_day.session_day": "pure: where a FIX session's day ends",
    "trading.services.trading_day.broker_day": "pure: where a broker's trading day ends",
    "trading.services.allocations.fill_days": "reads the days of a block's last fill",
    "trading.services.trading_day.day_order_over": "pure: whether a day order is over",
    "trading.services.trading_day.check_may_send": "pure: refuses a stale day order",
    "trading.services.trading_day.known_exchange": "pure: whether a calendar knows a MIC",
    "trading.services.trading_day.session_close": "pure: the close of a moment's session",
    "trading.services.trading_day.order_ends_at": "pure: when an order's life ends",
    "trading.services.routes.trading_unit": "pure: the step a route's quantity goes in",
    "trading.services.routes.broker_terms_errors": "validates terms against a broker's",
    "trading.services.routes.pending_terms": "reads a pending replace for the trail",
    "trading.services.routes.pending_replace_terms": "reads a pending replace's terms",
    "trading.services.executions.fill_commission": "pure: one fill's commission",
    "trading.services.allocations.split_commission": "pure: a commission split pro rata",
    "trading.services.allocations.allocation_split": "pure: a block's fill split per order",
    "trading.services.allocations.allocation_amounts": "pure: an allocation's money",
    "portfolios.services.holdings.fill_amount": "pure: the cash a fill moves",
    "portfolios.services.holdings.settles_on": "pure: the day a trade settles by our cycle",
    "portfolios.services.lifecycle.lifecycle_due": "reads the events due on the holdings",
    "portfolios.services.lifecycle.lifecycle_plan": "reads what booking an event would do",
    "portfolios.services.lifecycle.lifecycle_plans": "reads what booking many events would do",
    "portfolios.services.lifecycle.face_on_record": "reads a bond's face on a record date",
    "trading.services.blocks.block_changed": "announces a change after commit; writes none",
    "trading.services.breaks.trade_corrections": "reads the busts and corrections kept",
    "trading.services.day_end.routes_to_ask": "reads the routes the sweep asks about",
    "trading.services.day_end.routes_needing_a_person": "reads the routes left for a person",
    "trading.services.day_end.block_day_ends_at": "reads when a block's day is over",
    "audit.services.snapshot": "reads fields for an event's before and after",
    "audit.services.audited_transaction": "the transaction the services open",
    "compliance.services.rules.rule_check": "validates a rule (reads the lists it names)",
    "compliance.services.rules.rule_terms": "reads a rule's terms (for the check and the form)",
    "compliance.services.pretrade.build_book": "reads the engine's book of the accounts",
    "compliance.services.pretrade.describe": "pure: a result in words",
    "compliance.services.pretrade.override_in_force": "reads the overrides in force",
    "trading.services.bulk.id_ranges": "pure: ids as ranges for a bulk event",
    "trading.services.bulk.in_ranges": "pure: whether ranges hold an id",
    "portfolios.services.quotes.limits": "reads the quote checks' limits from settings",
    "portfolios.services.quotes.reference": "reads which symbols are securities",
    "portfolios.services.quotes.reference_forget": "forgets this process's symbol list",
    "portfolios.services.quotes.unknown_symbols": "reads which symbols name no security",
    "portfolios.services.quotes.quote_payload": "pure: a consolidated quote as a message",
    "portfolios.services.quotes.publish_quotes": "announces prices on the push topic",
    "portfolios.services.quotes.bars_discard": "forgets this process's unflushed bars",
    # Derived figures, like a cache: the drift follows from holdings, cash, models and
    # prices, each audited where it changes; the refresh writes only AccountDrift
    # (tests/portfolios/test_stored_drift.py checks it writes nothing else, no event).
    "portfolios.services.drift.drift_refresh": "stores derived drift figures (a cache)",
}
#: Helpers that write inside the transaction of a service that records their change:
#: the caller's call below must emit these kinds.
AUDITED_BY_CALLER = {
    "portfolios.services.holdings.holdings_book_fills": (
        "trading.services.allocations.block_allocate",
        {"order.allocated"},
    ),
    # Allocating several blocks books every account and security of them at once.
    "portfolios.services.holdings.holdings_book_many": (
        "trading.services.allocations.blocks_allocate",
        {"order.allocated"},
    ),
    # Allocation books with holdings_book_fills; a correction re-books each account's
    # share of the corrected fills one by one.
    "portfolios.services.holdings.holdings_book_fill": (
        "trading.services.breaks.correction_apply",
        {"order.reallocated"},
    ),
    "portfolios.services.holdings.holdings_backfill_closings": (
        "trading.services.allocations.allocations_backfill_closings",
        {"lots.closings_backfilled"},
    ),
    # A life-cycle event moves the holdings inside the transaction that records it.
    "portfolios.services.holdings.holdings_credit": (
        "portfolios.services.lifecycle.lifecycle_book",
        {"lifecycle.paid"},
    ),
    "portfolios.services.holdings.holdings_close_position": (
        "portfolios.services.lifecycle.lifecycle_book_event",
        {"lifecycle.exercised"},
    ),
    "portfolios.services.holdings.holdings_deliver": (
        "portfolios.services.lifecycle.lifecycle_book_event",
        {"lifecycle.exercised"},
    ),
    "portfolios.services.holdings.holdings_lock_positions": (
        "portfolios.services.lifecycle.lifecycle_book_event",
        {"lifecycle.exercised"},
    ),
    "portfolios.services.holdings.holdings_reverse_fill": (
        "trading.services.breaks.correction_apply",
        {"allocation.reversed"},
    ),
    # Booking holdings marks the accounts' stored drift stale, in the allocation's
    # transaction (prices_create, bars_flush mark theirs in their own too).
    "portfolios.services.drift.drift_mark_stale": (
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
    "trading.services.blocks.orders_follow_blocks": (
        "trading.services.routes.routes_create",
        {"order.status"},
    ),
    # The checker stores a PretradeResult per order and rule, inside the transaction of
    # the order service that asked (`trading.pretrade.check`) and moves the orders: its
    # approve records them (order.approved, .needs_override, .rejected), its release
    # order.released (a refused release writes nothing: it rolls back, results too).
    "compliance.services.pretrade.pretrade_check": (
        "trading.services.orders.orders_approve",
        {"order.approved"},
    ),
    "compliance.services.pretrade.checker": (
        "trading.services.orders.orders_approve",
        {"order.approved"},
    ),
    # A run's orders move in bulk, one event on the run per step.
    "trading.services.bulk.run_orders_create": (
        "orchestration.services.rebalance_run_create",
        {"orders.created"},
    ),
    "trading.services.bulk.run_orders_approve": (
        "orchestration.services.rebalance_run_approve",
        {"orders.approved"},
    ),
    "trading.services.bulk.run_orders_release": (
        "orchestration.services.rebalance_run_release",
        {"orders.released"},
    ),
    "trading.services.bulk.run_orders_cancel": (
        "orchestration.services.rebalance_run_cancel",
        {"orders.cancelled"},
    ),
    "orchestration.services.rebalance_run_start": (
        "orchestration.services.rebalance_run_execute",
        {"rebalance.started"},
    ),
    "orchestration.services.rebalance_chunk_execute": (
        "orchestration.services.rebalance_run_execute",
        {"orders.created", "rebalance.proposed"},
    ),
}
THE_TRAIL_ITSELF = {
    "audit.services.audit_record": "appends the event every service calls it for",
    "audit.services.audit_record_many": "appends one event per changed row, in one statement",
    "audit.services.audit_record_each": "appends events of several kinds, in order, in one statement",
    "audit.services.audit_seal": "chains events into the trail (seals are the trail)",
    "audit.services.audit_checkpoint": "signs the trail's head (checkpoints are the trail)",
    "audit.services.checkpoint_export": "copies a checkpoint to the auditor's file",
}


# --- How to call each state-changing service -------------------------------------------------


class World:
    """Objects in the states the services start from, made through the services."""

    def __init__(self, personas, book):
        self.pm, self.trader, self.ops = personas["pm"], personas["trader"], personas["ops"]
        self.compliance = personas["compliance"]
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

    def route(self, sent: bool = False, acknowledged: bool = False, broker=None, quantity=None):
        from trading.services import routes as r

        route = r.route_create(
            actor=self.trader,
            block_id=self.block().pk,
            broker=broker or self.broker,
            quantity=None if quantity is None else Decimal(quantity),
        )
        if sent or acknowledged:
            r.route_claim_for_sending(route.pk)
        if acknowledged:
            self.apply(route, "new", "new")
        route.refresh_from_db()
        return route

    @property
    def broker(self):
        return self.book["broker"]

    @property
    def fix_broker(self):
        """A broker reached over FIX: its busts and corrections come through its session."""
        from trading.models import Broker, FixSession

        if not hasattr(self, "_fix_broker"):
            broker = Broker.objects.create(code="FIXB", name="FIX", adapter=Broker.Adapter.FIX)
            FixSession.objects.create(
                broker=broker, sender_comp_id="OMS", target_comp_id="FIXB", port=1
            )
            self._fix_broker = Broker.objects.select_related("fix_session").get(pk=broker.pk)
        return self._fix_broker

    def kept(self, route, fields: dict):
        """A broker's message the gateway kept in the inbox, not applied: a trade bust
        (150=H) or correction (150=G) naming one of the route's fills by ExecRefID (19)."""
        from trading.brokers import fixmap
        from trading.fix.codec import Message
        from trading.models import FixInbox

        self._reports += 1
        body = {11: route.cl_ord_id, 17: f"K{self._reports}", 37: "O1", 39: "2", 54: "1"}
        body |= {55: route.block.security.ticker} | fields
        msg = Message("8", sorted(body.items()), begin_string="FIX.4.4", header=[(34, "7")])
        try:
            fixmap.report_from_execution_report(msg, broker_code="FIXB", cl_ord_id="x")
        except fixmap.TradeCorrection as exc:
            error = str(exc)  # what the gateway keeps it with
        return FixInbox.objects.create(
            session=route.broker.fix_session,
            generation=1,
            seq_num=self._reports,
            msg_type="8",
            raw=msg.encode(),
            status=FixInbox.Status.NOT_APPLIED,
            error=error,
        )

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

    def rule(self, limit: str = "0.60", when: str = "both", name: str = "Issuer limit"):
        """A soft issuer limit in the rule book. ACC1 holds 600 AAA of a NAV of 90,000
        (two thirds): a buy of AAA breaches 60% (and fails it post-trade as it stands)
        and passes 90%."""
        from compliance.services import rules

        return rules.rule_create(
            actor=self.compliance,
            name=name,
            kind="max_weight",
            params={"group_by": "issuer", "limit": float(limit)},
            severity="soft",
            when=when,
        )

    def held(self):
        """A buy of AAA that fails the soft issuer limit: it needs an override."""
        self.rule()
        order = self.order(quantity="40")
        from trading.services import orders as o

        o.orders_approve(actor=self.pm, order_ids=[order.pk])
        order.refresh_from_db()
        assert order.status == "needs_override"
        return order

    def override(self):
        """An override asked for on a held order, waiting for compliance."""
        from compliance.services import overrides

        return overrides.override_request(
            actor=self.pm, order_id=self.held().pk, justification="The client asked for it."
        )

    def alert(self):
        """An open alert: ACC1 as it stands breaches a post-trade issuer limit of 60%."""
        from compliance.services import posttrade

        self.rule(when="post")
        [alert] = posttrade.posttrade_check(
            portfolio_ids=[self.book["accounts"][0].pk], source="nightly"
        )
        return alert

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
    from portfolios.services.models import model_create

    targets = [{"security": w.book["securities"]["AAA"], "weight": Decimal(1)}]
    return lambda: model_create(actor=w.pm, name="All AAA", targets=targets)


def _model_update(w, s):
    from portfolios.services.models import model_update

    targets = [
        {"security": "AAA", "weight": Decimal("0.6")},
        {"security": "BBB", "weight": Decimal("0.4")},
    ]
    return lambda: model_update(
        actor=w.pm, model_id=w.book["model"].pk, targets=targets, cash_weight=Decimal(0)
    )


def _model_import(w, s):
    from portfolios.services.models import model_targets_import

    text = "ticker,weight\nAAA,60%\nCASH,0.4\n"
    return lambda: model_targets_import(actor=w.pm, model_id=w.book["model"].pk, text=text)


def _model_copy(w, s):
    from portfolios.services.models import model_copy

    return lambda: model_copy(actor=w.pm, model_id=w.book["model"].pk, name="Core copy")


def _model_assign(w, s):
    from portfolios.models import ModelPortfolio
    from portfolios.services.models import model_assign

    other = ModelPortfolio.objects.create(name="Other", cash_weight=Decimal(1))
    ids = [a.pk for a in w.book["accounts"]]
    return lambda: model_assign(actor=w.pm, model_id=other.pk, portfolio_ids=ids)


def _orders(name):
    def prepare(w, s):
        from trading.services import orders as o

        if name == "order_create":
            return lambda: w.order()
        if name == "orders_approve":  # with a rule in force: the check stores its results
            w.rule(limit="0.90")
            order = w.order()
            return lambda: o.orders_approve(actor=w.pm, order_ids=[order.pk])
        if name == "orders_approve_held":
            w.rule()
            order = w.order(quantity="40")
            return lambda: o.orders_approve(actor=w.pm, order_ids=[order.pk])
        if name == "orders_release":
            order = w.order("approved")
            return lambda: o.orders_release(actor=w.pm, order_ids=[order.pk])
        if name == "orders_release_checked":  # checked again, results stored
            w.rule(limit="0.90")
            order = w.order("approved")
            return lambda: o.orders_release(actor=w.pm, order_ids=[order.pk])
        if name == "orders_release_overridden":  # the override in force lets it on
            from compliance.services import overrides

            override = w.override()
            overrides.override_approve(actor=w.compliance, override_id=override.pk)
            return lambda: o.orders_release(actor=w.pm, order_ids=[override.order_id])
        if name == "order_compliance_decided":
            override = w.override()
            return lambda: o.order_compliance_decided(
                actor=w.compliance,
                order_id=override.order_id,
                approved=True,
                override_id=override.pk,
            )
        order = w.order("released")
        return lambda: o.order_cancel(actor=w.pm, order_id=order.pk, reason="changed my mind")

    return prepare


def _routes(name):
    def prepare(w, s):
        from trading.services import routes as r

        if name == "route_create":
            block = w.block()
            return lambda: r.route_create(actor=w.trader, block_id=block.pk, broker=w.broker)
        if name == "routes_create":
            block = w.block()
            return lambda: r.routes_create(actor=w.trader, block_ids=[block.pk], broker=w.broker)
        if name == "route_create_fix":
            block, broker = w.block(), w.fix_broker
            return lambda: r.route_create(actor=w.trader, block_id=block.pk, broker=broker)
        if name == "routes_send_fix":
            # a route whose message could not be built when it was made: the worker's
            from unittest import mock

            from trading.brokers.fix import FixBroker

            with mock.patch.object(FixBroker, "new_orders", side_effect=KeyError("not now")):
                route = w.route(broker=w.fix_broker)
            return lambda: r.routes_send([route.pk])
        if name == "routes_send":
            route = w.route()
            return lambda: r.routes_send([route.pk])
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
        if name == "route_cancel_by_system":
            route = w.route(acknowledged=True)
            return lambda: r.route_cancel_by_system(route_id=route.pk, reason="after its close")
        if name == "route_cancel_by_system_unsent":
            route = w.route()
            return lambda: r.route_cancel_by_system(route_id=route.pk, reason="after its close")
        if name == "route_replace":
            route = w.route(acknowledged=True)
            return lambda: r.route_replace(actor=w.trader, route_id=route.pk, quantity=Decimal(5))
        if name == "route_replace_larger":
            route = w.route(acknowledged=True, quantity="5")  # of a block of 10
            return lambda: r.route_replace(actor=w.trader, route_id=route.pk, quantity=Decimal(8))
        if name == "route_replace_send":
            route = w.route(acknowledged=True)
            r.route_replace(actor=w.trader, route_id=route.pk, quantity=Decimal(5))
            return lambda: r.route_replace_send(route.pk)
        if name == "route_ask_status":
            route = w.route(acknowledged=True)
            return lambda: r.route_ask_status(route.pk, reason="where does it stand?")
        if name == "route_status_send":
            route = w.route(acknowledged=True)
            r.route_ask_status(route.pk, reason="where does it stand?")
            return lambda: r.route_status_send(route.pk)
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
        if name == "executions_apply":
            return lambda: e.executions_apply([report])
        return lambda: getattr(e, name)(report)

    return prepare


def _backfill(w, s):
    """A sale allocated as before closings were stored: its closings deleted."""
    from portfolios.models import LotClosing
    from trading.services import allocations
    from trading.services import orders as o
    from trading.services import routes as r

    order = o.order_create(
        actor=w.pm,
        portfolio=w.book["accounts"][0],
        security=w.book["securities"]["AAA"],
        side="sell",
        quantity=Decimal("10"),
    )
    o.orders_approve(actor=w.pm, order_ids=[order.pk])
    o.orders_release(actor=w.pm, order_ids=[order.pk])
    order.refresh_from_db()
    route = r.route_create(actor=w.trader, block_id=order.block_id, broker=w.broker)
    r.route_claim_for_sending(route.pk)
    w.apply(route, "new", "new")
    w.apply(route, "trade", "filled", last=route.quantity, cum=route.quantity)
    allocations.block_allocate(block_id=order.block_id)
    LotClosing.objects.all().delete()
    return lambda: allocations.allocations_backfill_closings(actor=w.ops)


def _blocks(name):
    def prepare(w, s):
        from trading.services import allocations, blocks

        if name == "block_allocate":
            block = w.filled_block()
            return lambda: allocations.block_allocate(block_id=block.pk)
        if name == "blocks_allocate":
            block = w.filled_block()
            return lambda: allocations.blocks_allocate(block_ids=[block.pk])
        block = w.filled_block(partly=True)
        return lambda: blocks.block_done_for_day(actor=w.trader, block_id=block.pk)

    return prepare


def _breaks(name):
    def prepare(w, s):
        from trading.services import allocations, breaks

        ops = w.ops
        if name in ("correction_apply", "correction_dismiss", "correction_apply_allocated"):
            # a fill over FIX, allocated; then the broker busts it (or corrects its price)
            route = w.route(acknowledged=True, broker=w.fix_broker)
            fill = w.apply(route, "trade", "filled", last=route.quantity, cum=route.quantity)
            allocations.block_allocate(block_id=route.block_id)
            if name == "correction_apply_allocated":
                terms = {150: "G", 19: fill.exec_id, 32: str(route.quantity), 31: "101"}
                inbox = w.kept(route, terms)
                return lambda: breaks.correction_apply(actor=ops, inbox_id=inbox.pk)
            inbox = w.kept(route, {150: "H", 19: fill.exec_id, 32: "10", 31: "100"})
            if name == "correction_dismiss":
                return lambda: breaks.correction_dismiss(
                    actor=ops, inbox_id=inbox.pk, reason="agreed by phone: it stands"
                )
            return lambda: breaks.correction_apply(actor=ops, inbox_id=inbox.pk)
        if name == "correction_apply_trading":
            # a fill on a block still trading, corrected to another price
            route = w.route(acknowledged=True, broker=w.fix_broker)
            fill = w.apply(route, "trade", "partially_filled", last=4, cum=4)
            inbox = w.kept(route, {150: "G", 19: fill.exec_id, 32: "4", 31: "101"})
            return lambda: breaks.correction_apply(actor=ops, inbox_id=inbox.pk)
        # ACC1 holds 600 AAA, 100 BBB, 500 EEE and 20,000 USD; the custodian says 90 BBB
        text = "account,security,currency,quantity\nACC1,AAA,,600\nACC1,BBB,,90\n"
        text += "ACC1,EEE,,500\nACC1,,USD,20000\n"
        day = timezone.now().date()

        def statement():
            return breaks.statement_import(actor=ops, text=text, source="Custodian", as_of=day)

        if name == "statement_import":
            return statement
        brk = statement().breaks.get()
        resolve = name == "statement_break_resolve"
        return lambda: breaks.statement_break_resolve(
            actor=ops, break_id=brk.pk, note="10 lent out: the custodian agrees", resolve=resolve
        )

    return prepare


def _day_end(name):
    def prepare(w, s):
        from trading.models import Route
        from trading.services import day_end
        from trading.services import routes as r

        if name == "routes_sweep_status":
            s.OMS_ROUTE_PENDING_SECONDS = 0
            overdue, silent = w.route(acknowledged=True), w.route(acknowledged=True)
            # the close has passed (as if the clock had moved on) ...
            Route.objects.filter(pk__in=[overdue.pk, silent.pk]).update(
                ends_at=timezone.now() - timedelta(minutes=5)
            )
            # ... and one of them was asked since, and its broker still works it
            r.route_ask_status(overdue.pk, reason="at the close")
            return lambda: day_end.routes_sweep_status()
        if name == "blocks_close_day":
            block = w.block()
            later = day_end.block_day_ends_at(block) + timedelta(seconds=1)
            return lambda: day_end.blocks_close_day(now=later)
        if name == "block_end_day":  # nothing filled: its orders expire
            block = w.block()
            return lambda: day_end.block_end_day(block_id=block.pk, now=timezone.now())
        if name == "block_end_day_filled":  # partly filled: allocated with what filled
            block = w.filled_block(partly=True)
            return lambda: day_end.block_end_day(block_id=block.pk, now=timezone.now())
        if name == "route_ask_again":
            route = w.route(acknowledged=True)
            for _ in range(3):
                r.route_ask_status(route.pk, reason="order status sweep")
            return lambda: day_end.route_ask_again(actor=w.trader, route_id=route.pk)
        route = w.route(sent=True)
        r.route_mark_unconfirmed(route.pk, "the connection dropped")
        return lambda: day_end.route_close_by_hand(
            actor=w.trader, route_id=route.pk, status="cancelled", reason="J. Smith, by phone"
        )

    return prepare


def _rules(name):
    def prepare(w, s):
        from compliance.services import rules

        if name == "rule_create":
            return lambda: w.rule()
        if name in ("rule_update", "rule_set_active", "rule_set_active_again"):
            rule = w.rule()
            if name == "rule_update":
                return lambda: rules.rule_update(
                    actor=w.compliance,
                    rule_id=rule.pk,
                    params={"group_by": "issuer", "limit": 0.65},
                    reason="the mandate changed",
                )
            if name == "rule_set_active_again":
                rules.rule_set_active(actor=w.compliance, rule_id=rule.pk, active=False)
            active = name == "rule_set_active_again"
            return lambda: rules.rule_set_active(
                actor=w.compliance, rule_id=rule.pk, active=active, reason="for the review"
            )

        def create():
            return rules.restricted_list_create(
                actor=w.compliance, name="Firm", tickers=["BBB"], reason="inside information"
            )

        if name == "restricted_list_create":
            return create
        rlist = create()
        return lambda: rules.restricted_list_update(
            actor=w.compliance, list_id=rlist.pk, tickers=["BBB", "EEE"], reason="a new deal"
        )

    return prepare


def _overrides(name):
    def prepare(w, s):
        from compliance.services import overrides

        if name == "override_request":
            order = w.held()
            return lambda: overrides.override_request(
                actor=w.pm, order_id=order.pk, justification="The client asked for it."
            )
        override = w.override()
        if name == "override_approve":
            return lambda: overrides.override_approve(
                actor=w.compliance, override_id=override.pk, note="Within the mandate."
            )
        return lambda: overrides.override_reject(
            actor=w.compliance, override_id=override.pk, note="Not within the mandate."
        )

    return prepare


def _alerts(name):
    def prepare(w, s):
        from compliance.services import posttrade

        if name == "posttrade_check":
            w.rule(when="post")
            return lambda: posttrade.posttrade_check(source="nightly")
        alert = w.alert()
        if name == "posttrade_check_again":  # the breach is still there: the alert refreshed
            return lambda: posttrade.posttrade_check(source="nightly")
        if name == "alert_assign":
            return lambda: posttrade.alert_assign(
                actor=w.compliance, alert_id=alert.pk, assignee=w.compliance
            )
        if name == "alert_comment":
            return lambda: posttrade.alert_comment(
                actor=w.compliance, alert_id=alert.pk, text="Asked the PM about it."
            )
        return lambda: posttrade.alert_resolve(
            actor=w.compliance, alert_id=alert.pk, resolution="Sold down the next day."
        )

    return prepare


def _runs(name):
    def prepare(w, s):
        from orchestration import services as runs

        if name == "rebalance_run_create":
            return lambda: w.run()
        if name == "rebalance_run_execute":
            run = w.draft_run(s)
            return lambda: runs.rebalance_run_execute(run_id=run.pk)
        if name == "rebalance_runs_recover":
            w.draft_run(s)  # its start task lost (never sent in the test's transaction)
            return lambda: runs.rebalance_runs_recover(stalled_for=0)
        run = w.run("approved" if name == "rebalance_run_release" else "proposed")
        return lambda: getattr(runs, name)(actor=w.pm, run_id=run.pk)

    return prepare


def _quotes(name):
    """Market data: the quote store in Django's cache, emptied, no bars left over."""

    def prepare(w, s):
        from django.core.cache import cache

        from portfolios.marketdata import Quote
        from portfolios.models import QuarantinedQuote
        from portfolios.services import quotes

        s.OMS_QUOTE_REDIS_URL = ""
        cache.clear()
        quotes.bars_discard()
        quotes.reference_forget()
        now = timezone.now()

        def tick(last):  # AAA's last stored price is 100; the jump limit 25%
            return Quote("AAA", "XNAS", now, last - 0.05, last + 0.05, last, 100.0)

        if name == "quotes_apply":  # one accepted, one beyond the limit: quarantined
            return lambda: quotes.quotes_apply([tick(101.0), tick(160.0)], source="test")
        if name == "bars_flush":  # a feed's quotes gathered: the flush writes the day's price
            quotes.quotes_apply([tick(101.0)], source="test")
            return lambda: quotes.bars_flush(source="test")
        if name == "quotes_post":
            return lambda: quotes.quotes_post(actor=w.ops, quotes=[tick(101.0), tick(160.0)])
        if name == "prices_import":
            text = f"symbol,as_of,price\nAAA,{now.date()},101\nBBB,{now.date()},-2\n"
            return lambda: quotes.prices_import(actor=w.ops, text=text, mode="good_rows")
        [held] = quotes.quotes_apply([tick(160.0)], source="test").quarantined
        quotes.bars_discard()
        assert held.status == QuarantinedQuote.Status.HELD
        return lambda: getattr(quotes, name)(
            actor=w.ops, quarantine_id=held.pk, reason="a takeover bid"
        )

    return prepare


def _lifecycle(name):
    """Life-cycle events: ACC1 holds a Treasury over its coupon date, or a call in the
    money at its expiry (the underlying's closing price loaded)."""

    def prepare(w, s):
        from datetime import date

        from portfolios.models import Position, Price, TaxLot
        from portfolios.services import lifecycle, reference

        account = w.book["accounts"][0]
        if name == "lifecycle_book":  # a Treasury coupon
            security = reference.security_create(
                actor=w.ops,
                ticker="T 8 09/01/29",
                name="Treasury",
                asset_class="bond",
                currency="USD",
                government=True,
                coupon_rate=Decimal("0.08"),
                coupon_frequency=2,
                day_count="ACT/ACT ICMA",
                issue_date=date(2019, 3, 1),
                maturity=date(2029, 9, 1),
                min_quantity=Decimal(100),
                round_lot=Decimal(100),
            )
            day, quantity, cost = date(2020, 9, 1), Decimal(1000), Decimal(100)
        else:  # a call on AAA in the money at expiry: exercised
            day, quantity, cost = date(2024, 6, 21), Decimal(1), Decimal(5)
            aaa = w.book["securities"]["AAA"]
            security = reference.security_create(
                actor=w.ops,
                ticker="AAA-C90",
                name="AAA call 90",
                asset_class="option",
                currency="USD",
                multiplier=Decimal(100),
                underlying=aaa,
                option_right="call",
                strike=Decimal(90),
                expiry=day,
            )
            Price.objects.create(security=aaa, as_of=day, price=Decimal(100))
        Position.objects.create(portfolio=account, security=security, quantity=quantity)
        TaxLot.objects.create(
            portfolio=account,
            security=security,
            quantity=quantity,
            original_quantity=quantity,
            unit_cost=cost,
            acquired_on=date(2020, 1, 2),
        )
        if name == "lifecycle_book":
            return lambda: lifecycle.lifecycle_book(on=day)
        [due] = lifecycle.lifecycle_due(on=day)
        return lambda: lifecycle.lifecycle_book_event(due=due)

    return prepare


def _run_order_drop(w, s):
    from orchestration import services as runs

    run = w.run("proposed")
    order = run.orders.filter(side="buy").order_by("pk").first()  # a sell may fund the buys
    return lambda: runs.rebalance_run_order_drop(actor=w.pm, run_id=run.pk, order_id=order.pk)


def _cash_flows(name):
    """Cash flows and the proposal edit (orchestration): from a book of two accounts."""

    def prepare(w, s):
        from orchestration import services as runs

        account = w.book["accounts"][0]
        if name == "cash_flow_create":
            return lambda: runs.cash_flow_create(
                actor=w.pm, portfolio=account, kind="deposit", currency="USD", amount="100"
            )
        if name == "cash_flows_import":
            text = "account,currency,amount,kind\nACC1,USD,100,deposit\n"
            return lambda: runs.cash_flows_import(actor=w.pm, text=text)
        if name == "cash_flow_cancel":
            flow = runs.cash_flow_create(
                actor=w.pm, portfolio=account, kind="deposit", currency="USD", amount="100"
            )
            return lambda: runs.cash_flow_cancel(actor=w.pm, cash_flow_id=flow.pk)
        if name == "rebalance_raise_cash":
            return lambda: runs.rebalance_raise_cash(actor=w.pm, portfolio=account, amount="25000")
        if name == "cash_flows_settle":
            # a withdrawal waiting for its released run's sells, which end unfilled
            from trading.services.orders import order_cancel

            runs.cash_flow_create(
                actor=w.pm, portfolio=account, kind="withdrawal", currency="USD", amount="30000"
            )
            run = runs.rebalance_run_create(actor=w.pm, portfolios=[account])
            runs.rebalance_run_approve(actor=w.pm, run_id=run.pk)
            runs.rebalance_run_release(actor=w.pm, run_id=run.pk)
            for order in run.orders.filter(status="released"):
                order_cancel(actor=w.trader, order_id=order.pk, reason="no longer wanted")
            return lambda: runs.cash_flows_settle(portfolio_ids=[account.pk])
        run = w.run("proposed")
        order = run.orders.filter(side="sell").order_by("pk").first()
        return lambda: runs.rebalance_run_order_edit(
            actor=w.pm, run_id=run.pk, order_id=order.pk, quantity=order.quantity - 1
        )

    return prepare


CALLS = {
    "portfolios.services.reference.security_create": call(_sec, "security.created"),
    "portfolios.services.reference.prices_create": call(_prices, "price.created"),
    "portfolios.services.models.model_create": call(_model, "model.created"),
    "portfolios.services.models.model_update": call(_model_update, "model.changed"),
    "portfolios.services.models.model_targets_import": call(_model_import, "model.changed"),
    "portfolios.services.models.model_copy": call(_model_copy, "model.copied"),
    "portfolios.services.models.model_assign": call(_model_assign, "portfolio.model_assigned"),
    "trading.services.orders.order_create": call(_orders("order_create"), "order.created"),
    "trading.services.orders.orders_approve": call(_orders("orders_approve"), "order.approved"),
    "trading.services.orders.orders_release": call(
        _orders("orders_release"), "order.released", "block.orders_added"
    ),
    "trading.services.orders.order_compliance_decided": call(
        _orders("order_compliance_decided"), "order.approved"
    ),
    "trading.services.orders.order_cancel": call(
        _orders("order_cancel"), "order.cancelled", "block.order_removed"
    ),
    "trading.services.routes.route_create": call(
        _routes("route_create"), "route.created", "block.routed", "order.status"
    ),
    "trading.services.routes.routes_create": call(
        _routes("routes_create"), "route.created", "block.routed", "order.status"
    ),
    # A FIX broker's routes are claimed and queued together; the others as route_send.
    "trading.services.routes.routes_send": call(
        _routes("routes_send"), "route.sent", "execution.new", "execution.trade"
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
    "trading.services.routes.route_cancel_by_system": call(
        _routes("route_cancel_by_system"), "route.cancel_requested"
    ),
    "trading.services.routes.route_replace": call(
        _routes("route_replace"), "route.replace_requested"
    ),
    "trading.services.routes.route_replace_send": call(
        _routes("route_replace_send"), "execution.replaced", "execution.trade"
    ),
    "trading.services.routes.route_ask_status": call(
        _routes("route_ask_status"), "route.status_requested"
    ),
    # The simulated broker answers within the call (and fills on a marketable order).
    "trading.services.routes.route_status_send": call(
        _routes("route_status_send"), "execution.order_status", "execution.trade"
    ),
    "trading.services.executions.execution_apply": call(
        _executions("execution_apply"), "execution.trade", "block.updated", "order.status"
    ),
    "trading.services.executions.executions_apply": call(
        _executions("executions_apply"), "execution.trade", "block.updated", "order.status"
    ),
    "trading.services.executions.apply_in_order": call(
        _executions("apply_in_order"), "execution.trade"
    ),
    "trading.services.allocations.block_allocate": call(
        _blocks("block_allocate"), "order.allocated", "block.allocated"
    ),
    "trading.services.allocations.blocks_allocate": call(
        _blocks("blocks_allocate"), "order.allocated", "block.allocated"
    ),
    "trading.services.allocations.allocations_backfill_closings": call(
        _backfill, "lots.closings_backfilled"
    ),
    "trading.services.blocks.block_done_for_day": call(
        _blocks("block_done_for_day"), "block.done_for_day"
    ),
    "trading.services.breaks.correction_apply": call(
        _breaks("correction_apply"),
        "execution.busted",
        "block.corrected",
        "allocation.reversed",
        "order.reallocated",
    ),
    "trading.services.breaks.correction_dismiss": call(
        _breaks("correction_dismiss"), "fix_message.dismissed"
    ),
    "trading.services.breaks.statement_import": call(
        _breaks("statement_import"), "statement.imported"
    ),
    "trading.services.breaks.statement_break_resolve": call(
        _breaks("statement_break_resolve"), "statement_break.resolved"
    ),
    "trading.services.day_end.routes_sweep_status": call(
        _day_end("routes_sweep_status"), "route.cancel_requested", "route.status_requested"
    ),
    "trading.services.day_end.blocks_close_day": call(
        _day_end("blocks_close_day"), "block.day_ended", "order.expired"
    ),
    "trading.services.day_end.block_end_day": call(
        _day_end("block_end_day"), "block.day_ended", "order.expired"
    ),
    "trading.services.day_end.route_ask_again": call(
        _day_end("route_ask_again"), "route.status_requested"
    ),
    "trading.services.day_end.route_close_by_hand": call(
        _day_end("route_close_by_hand"), "route.closed_by_hand", "block.updated", "order.status"
    ),
    "orchestration.services.rebalance_run_create": call(
        _runs("rebalance_run_create"),
        "rebalance.created",
        "rebalance.started",
        "rebalance.proposed",
        "orders.created",
    ),
    "orchestration.services.rebalance_run_execute": call(
        _runs("rebalance_run_execute"),
        "rebalance.started",
        "orders.created",
        "rebalance.proposed",
    ),
    "orchestration.services.rebalance_run_approve": call(
        _runs("rebalance_run_approve"), "rebalance.approved", "orders.approved"
    ),
    "orchestration.services.rebalance_run_release": call(
        _runs("rebalance_run_release"), "rebalance.released", "orders.released"
    ),
    "orchestration.services.rebalance_run_rerun": call(
        _runs("rebalance_run_rerun"),
        "rebalance.sent_back",
        "rebalance.cancelled",
        "orders.cancelled",
        "rebalance.created",
    ),
    "orchestration.services.rebalance_run_cancel": call(
        _runs("rebalance_run_cancel"), "rebalance.cancelled", "orders.cancelled"
    ),
    "orchestration.services.rebalance_runs_recover": call(
        _runs("rebalance_runs_recover"), "rebalance.reissued"
    ),
    "compliance.services.rules.rule_create": call(_rules("rule_create"), "rule.created"),
    "compliance.services.rules.rule_update": call(_rules("rule_update"), "rule.changed"),
    "compliance.services.rules.rule_set_active": call(
        _rules("rule_set_active"), "rule.deactivated"
    ),
    "compliance.services.rules.restricted_list_create": call(
        _rules("restricted_list_create"), "restricted_list.created"
    ),
    "compliance.services.rules.restricted_list_update": call(
        _rules("restricted_list_update"), "restricted_list.changed"
    ),
    "compliance.services.overrides.override_request": call(
        _overrides("override_request"), "override.requested"
    ),
    "compliance.services.overrides.override_approve": call(
        _overrides("override_approve"), "override.approved", "order.approved"
    ),
    "compliance.services.overrides.override_reject": call(
        _overrides("override_reject"), "override.rejected", "order.rejected"
    ),
    "compliance.services.posttrade.posttrade_check": call(
        _alerts("posttrade_check"), "alert.opened"
    ),
    "compliance.services.posttrade.alert_assign": call(_alerts("alert_assign"), "alert.assigned"),
    "compliance.services.posttrade.alert_comment": call(
        _alerts("alert_comment"), "alert.commented"
    ),
    "compliance.services.posttrade.alert_resolve": call(_alerts("alert_resolve"), "alert.resolved"),
    "orchestration.services.rebalance_run_order_drop": call(_run_order_drop, "orders.cancelled"),
    "orchestration.services.cash_flow_create": call(
        _cash_flows("cash_flow_create"), "cash_flow.created"
    ),
    "orchestration.services.cash_flows_import": call(
        _cash_flows("cash_flows_import"), "cash_flow.created"
    ),
    "orchestration.services.cash_flow_cancel": call(
        _cash_flows("cash_flow_cancel"), "cash_flow.cancelled"
    ),
    "orchestration.services.rebalance_raise_cash": call(
        _cash_flows("rebalance_raise_cash"),
        "cash_flow.created",
        "rebalance.created",
        "orders.created",
        "cash_flows.in_run",
    ),
    "orchestration.services.cash_flows_settle": call(
        _cash_flows("cash_flows_settle"), "cash_flows.returned"
    ),
    "orchestration.services.rebalance_run_order_edit": call(
        _cash_flows("rebalance_run_order_edit"), "orders.quantity_edited"
    ),
    "portfolios.services.lifecycle.lifecycle_book": call(
        _lifecycle("lifecycle_book"), "lifecycle.paid"
    ),
    "portfolios.services.lifecycle.lifecycle_book_event": call(
        _lifecycle("lifecycle_book_event"), "lifecycle.exercised"
    ),
    "portfolios.services.quotes.quotes_apply": call(_quotes("quotes_apply"), "quote.quarantined"),
    "portfolios.services.quotes.bars_flush": call(_quotes("bars_flush"), "prices.flushed"),
    "portfolios.services.quotes.quotes_post": call(
        _quotes("quotes_post"), "quote.quarantined", "prices.flushed", "quotes.posted"
    ),
    "portfolios.services.quotes.prices_import": call(
        _quotes("prices_import"), "quote.quarantined", "prices.flushed", "prices.imported"
    ),
    "portfolios.services.quotes.quarantine_release": call(
        _quotes("quarantine_release"), "quote.released", "prices.flushed"
    ),
    "portfolios.services.quotes.quarantine_discard": call(
        _quotes("quarantine_discard"), "quote.discarded"
    ),
}
#: A second call of route_cancel: a route not yet sent is cancelled here and now.
EXTRA_CALLS = {
    "route_create to a FIX broker claims and queues it in the same transaction": (
        "trading.services.routes.route_create",
        call(
            _routes("route_create_fix"),
            "route.created",
            "block.routed",
            "order.status",
            "route.sent",
        ),
    ),
    "routes_send of a FIX broker's routes claims and queues them together": (
        "trading.services.routes.routes_send",
        call(_routes("routes_send_fix"), "route.sent"),
    ),
    "route_cancel before it is sent": (
        "trading.services.routes.route_cancel",
        call(_routes("route_cancel_unsent"), "route.cancelled", "block.updated"),
    ),
    "route_cancel_by_system before it is sent": (
        "trading.services.routes.route_cancel_by_system",
        call(_routes("route_cancel_by_system_unsent"), "route.cancelled", "block.updated"),
    ),
    "route_replace to a larger quantity holds more of the block": (
        "trading.services.routes.route_replace",
        call(_routes("route_replace_larger"), "route.replace_requested", "block.routed"),
    ),
    "correction_apply on a block still trading": (
        "trading.services.breaks.correction_apply",
        call(_breaks("correction_apply_trading"), "execution.corrected", "block.updated"),
    ),
    "correction_apply of an allocated fill at another price books the accounts again": (
        "trading.services.breaks.correction_apply",
        call(
            _breaks("correction_apply_allocated"),
            "execution.corrected",
            "allocation.reversed",
            "order.reallocated",
        ),
    ),
    "statement_break_resolve annotating a break": (
        "trading.services.breaks.statement_break_resolve",
        call(_breaks("statement_break_annotate"), "statement_break.annotated"),
    ),
    "block_end_day of a block partly filled": (
        "trading.services.day_end.block_end_day",
        call(_day_end("block_end_day_filled"), "block.day_ended"),
    ),
    "orders_approve of an order that fails a soft rule holds it": (
        "trading.services.orders.orders_approve",
        call(_orders("orders_approve_held"), "order.needs_override"),
    ),
    "orders_release checks again and stores the results": (
        "trading.services.orders.orders_release",
        call(_orders("orders_release_checked"), "order.released", "block.orders_added"),
    ),
    "orders_release of an order an approved override lets on": (
        "trading.services.orders.orders_release",
        call(_orders("orders_release_overridden"), "order.released", "block.orders_added"),
    ),
    "rule_set_active bringing a rule back": (
        "compliance.services.rules.rule_set_active",
        call(_rules("rule_set_active_again"), "rule.activated"),
    ),
    "posttrade_check finding a breach that has an open alert": (
        "compliance.services.posttrade.posttrade_check",
        call(_alerts("posttrade_check_again"), "alert.refreshed"),
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


def _service_transaction(floor: int):
    """The outermost transaction opened below the test's own (the service's), or None."""
    blocks = connection.atomic_blocks
    return blocks[floor] if len(blocks) > floor else None


@pytest.fixture
def spied(monkeypatch):
    """Each event appended (by audit_record, or one per entry of audit_record_many or
    audit_record_each),
    with the transaction opened below the test's own (the service's) that it ran
    in, None outside one."""
    import audit.services

    seen: list[tuple[str, object]] = []
    real = audit.services.audit_record
    real_many = audit.services.audit_record_many
    real_each = audit.services.audit_record_each
    floor: list[int] = [len(connection.atomic_blocks)]

    def spy(**kwargs):
        seen.append((kwargs["kind"], _service_transaction(floor[0])))
        return real(**kwargs)

    def spy_many(**kwargs):
        events = real_many(**kwargs)
        inside = _service_transaction(floor[0])
        seen.extend((kwargs["kind"], inside) for _ in events)
        return events

    def spy_each(**kwargs):
        events = real_each(**kwargs)
        inside = _service_transaction(floor[0])
        seen.extend((event.kind, inside) for event in events)
        return events

    for module in services_modules():
        if getattr(module, "audit_record_each", None) is real_each:
            monkeypatch.setattr(module, "audit_record_each", spy_each)
        if getattr(module, "audit_record", None) is real:
            monkeypatch.setattr(module, "audit_record", spy)
        if getattr(module, "audit_record_many", None) is real_many:
            monkeypatch.setattr(module, "audit_record_many", spy_many)
    return seen, floor


_WRITES = ("INSERT", "UPDATE", "DELETE")


def _run(target: Call, personas, book, settings, spied, monkeypatch) -> set[str]:
    seen, floor = spied
    invoke = target.prepare(World(personas, book), settings)
    seen.clear()
    writes: list[tuple[str, object]] = []

    def watch(execute, sql, params, many, context):
        if sql.lstrip()[:6].upper() in _WRITES:
            writes.append((" ".join(sql.split()[:3]), _service_transaction(floor[0])))
        return execute(sql, params, many, context)

    before = AuditEvent.objects.count()
    floor[0] = len(connection.atomic_blocks)
    with connection.execute_wrapper(watch):
        invoke()
    kinds = {kind for kind, _ in seen}
    loose = [kind for kind, t in seen if t is None]
    assert not loose, f"recorded outside the service's transaction: {loose}"
    assert AuditEvent.objects.count() - before == len(seen)  # each call appended one event
    outside = [sql for sql, t in writes if t is None]
    assert not outside, f"written outside a transaction of the service's: {outside}"
    recorded = [t for _, t in seen]
    unrecorded = [sql for sql, t in writes if not any(t is r for r in recorded)]
    assert not unrecorded, f"written in a transaction that recorded no event: {unrecorded}"
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


def test_the_correction_records_what_the_holdings_booked_again(
    personas, book, settings, spied, monkeypatch
):
    """holdings_book_fill books each account's share of corrected fills inside
    correction_apply's transaction, whose order.reallocated names the figures."""
    case = "correction_apply of an allocated fill at another price books the accounts again"
    _run(EXTRA_CALLS[case][1], personas, book, settings, spied, monkeypatch)
    reallocated = AuditEvent.objects.filter(kind="order.reallocated").get()
    assert {"position", "cash", "cash_currency"} <= set(reallocated.after)
    assert reallocated.before["cash"] != reallocated.after["cash"]


@pytest.mark.parametrize(
    "name", ["trading.services.orders.orders_approve", "trading.services.orders.orders_release"]
)
def test_the_caller_records_what_the_check_stored(
    name, personas, book, settings, spied, monkeypatch
):
    """The pre-trade results are written in the transaction of the order service that
    asked for the check, which records the orders' moves (checked above): the calls here
    do write them, so that check covers the checker's writes."""
    from compliance.models import PretradeResult

    target = (
        CALLS[name]
        if name.endswith("approve")
        else EXTRA_CALLS["orders_release checks again and stores the results"][1]
    )
    _run(target, personas, book, settings, spied, monkeypatch)
    stage = "approve" if name.endswith("approve") else "release"
    assert PretradeResult.objects.filter(stage=stage, status="pass").exists()
