"""The chain's per-block steps are set-based: what they cost in statements does not grow
with the number of account orders in the block (bench/pipeline.py, docs/trading.md
"Speed"). Each test runs the same step on a block of few orders and on one of many, and
pins the count; the results are checked too, since a cheap step that books the wrong
thing is no use."""

from __future__ import annotations

import functools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record, audit_record_many, audit_seal, verify_audit_chain
from portfolios.models import CashBalance, LotClosing, Portfolio, Position, TaxLot
from trading.brokers import ExecutionReport
from trading.models import Allocation, Block, Broker, Order, Route
from trading.services import allocations as allocation_services
from trading.services import executions as execution_services
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db

#: Statements of each step, whatever the number of orders in the block (PostgreSQL).
ROUTE_CREATE = 11
FILL_APPLY = 15
#: Allocating: with the one UPDATE that marks the accounts' stored drift stale, the one
#: INSERT of the fills' cash movements (the settlement ledger) and the SELECT of the
#: fills' trading day.
ALLOCATE = 19
#: Allocating sells: no INSERT of new lots, but the open lots locked (one SELECT) and
#: written (one UPDATE), and one INSERT of the lot closings (what each sale realised),
#: whatever the number of orders and lots; and the cash movements' INSERT.
ALLOCATE_SELLS = 21


def _block(pm, book, *, orders: int, accounts: int, prefix: str = "X") -> Block:
    """A released block of ``orders`` orders of AAA spread over ``accounts`` accounts
    (so that some accounts have two orders in it), half of them without a position."""
    security = book["securities"]["AAA"]
    portfolios = list(book["accounts"]) + [
        Portfolio.objects.create(code=f"{prefix}{n:03d}", name=f"Extra {n}", manager=pm)
        for n in range(max(0, accounts - len(book["accounts"])))
    ]
    made = Order.objects.bulk_create(
        Order(
            portfolio=portfolios[n % accounts],
            security=security,
            side="buy",
            quantity=Decimal(100 * (1 + n % 3)),
            status=Order.Status.APPROVED,
            created_by=pm,
            approved_by=pm,
            time_in_force="gtc",
        )
        for n in range(orders)
    )
    order_services.orders_release(actor=pm, order_ids=[o.pk for o in made])
    return Block.objects.get(orders__pk=made[0].pk)


def _report(route: Route, exec_id: str, exec_type: str, status: str, last=Decimal(0), px=None):

    return ExecutionReport(
        broker=route.broker.code,
        cl_ord_id=route.cl_ord_id,
        exec_id=exec_id,
        exec_type=exec_type,
        ord_status=status,
        transact_time=timezone.now(),
        last_quantity=last,
        last_price=px,
        cumulative_quantity=last,
        average_price=px,
        leaves_quantity=route.quantity - last,
        order_id="B-" + route.cl_ord_id,
    )


def _counted(fn):
    with CaptureQueriesContext(connection) as queries:
        result = fn()
    return result, len(queries)


def _holdings() -> dict:
    return {
        "position": dict(
            Position.objects.filter(security__ticker="AAA").values_list("portfolio_id", "quantity")
        ),
        "cash": dict(
            CashBalance.objects.filter(currency="USD").values_list("portfolio_id", "amount")
        ),
        "lots": TaxLot.objects.filter(security__ticker="AAA").count(),
    }


def _held(portfolios, security, lots) -> list[TaxLot]:
    """Each account holds 1,000 of ``security`` in ``lots``: (quantity, unit cost, days
    ago it was bought) each."""
    today = timezone.now().date()
    Position.objects.bulk_create(
        Position(portfolio=p, security=security, quantity=Decimal(1000)) for p in portfolios
    )
    return TaxLot.objects.bulk_create(
        TaxLot(
            portfolio=p,
            security=security,
            quantity=Decimal(q),
            original_quantity=Decimal(q),
            unit_cost=Decimal(cost),
            acquired_on=today - timedelta(days=days),
        )
        for p in portfolios
        for q, cost, days in lots
    )


def _sell_block(pm, book, *, orders: int, accounts: int, prefix: str = "X") -> Block:
    """A released block of ``orders`` sells of AAA over ``accounts`` new accounts, each
    holding 1,000 in three lots (at 30, 120 and 80); the orders' lot methods cycle
    through fifo, hifo and min_tax, and every fourth names a specific lot first."""
    security = book["securities"]["AAA"]
    portfolios = [
        Portfolio.objects.create(code=f"{prefix}{n:03d}", name=f"Seller {n}", manager=pm)
        for n in range(accounts)
    ]
    lots = _held(portfolios, security, ((400, 30, 700), (300, 120, 200), (300, 80, 90)))
    last_lot = {lot.portfolio_id: lot.pk for lot in lots}
    made = Order.objects.bulk_create(
        Order(
            portfolio=portfolios[n % accounts],
            security=security,
            side="sell",
            quantity=Decimal(100 * (1 + n % 3)),
            status=Order.Status.APPROVED,
            created_by=pm,
            approved_by=pm,
            time_in_force="gtc",
            lot_method=("fifo", "hifo", "min_tax")[n % 3],
            lots=[[last_lot[portfolios[n % accounts].pk], "50"]] if n % 4 == 0 else [],
        )
        for n in range(orders)
    )
    order_services.orders_release(actor=pm, order_ids=[o.pk for o in made])
    return Block.objects.get(orders__pk=made[0].pk)


def _chain(
    pm, trader, book, broker, *, orders: int, accounts: int, prefix: str, make=_block
) -> dict:
    block = make(pm, book, orders=orders, accounts=accounts, prefix=prefix)
    route, routed = _counted(
        lambda: route_services.route_create(actor=trader, block_id=block.pk, broker=broker)
    )
    route = Route.objects.select_related("broker").get(pk=route.pk)
    _, filled = _counted(
        lambda: execution_services.execution_apply(
            _report(route, "F1", "trade", "filled", route.quantity, Decimal(100))
        )
    )
    held = _holdings()
    _, allocated = _counted(lambda: allocation_services.block_allocate(block_id=block.pk))
    return {
        "block": block,
        "held": held,
        "route_create": routed,
        "fill": filled,
        "allocate": allocated,
    }


@pytest.fixture
def quiet_broker(book):
    # a FIX broker: route_create writes nothing to a socket, the send task is after commit
    return Broker.objects.create(code="QB", name="Quiet", adapter=Broker.Adapter.FIX)


def test_routing_filling_and_allocating_cost_the_same_for_3_or_40_orders(
    pm, trader, book, quiet_broker
):
    _chain(pm, trader, book, quiet_broker, orders=2, accounts=2, prefix="W")  # warms caches
    small = _chain(pm, trader, book, quiet_broker, orders=3, accounts=2, prefix="S")
    large = _chain(pm, trader, book, quiet_broker, orders=40, accounts=25, prefix="L")
    for step, pin in (("route_create", ROUTE_CREATE), ("fill", FILL_APPLY), ("allocate", ALLOCATE)):
        assert small[step] == large[step], f"{step}: {small[step]} vs {large[step]} statements"
        assert large[step] <= pin, f"{step} takes {large[step]} statements (pinned {pin})"
    # and the results are those of booking order by order
    block = large["block"]
    block.refresh_from_db()
    assert block.status == Block.Status.ALLOCATED
    orders = list(block.orders.order_by("pk"))
    assert {o.status for o in orders} == {Order.Status.ALLOCATED}
    assert all(o.filled_quantity == o.quantity and o.average_price == 100 for o in orders)
    assert Allocation.objects.filter(block=block).count() == 40
    held, now = large["held"], _holdings()
    for account in {o.portfolio_id for o in orders}:
        bought = sum((o.quantity for o in orders if o.portfolio_id == account), Decimal(0))
        assert now["position"][account] == held["position"].get(account, 0) + bought
        assert now["cash"][account] == held["cash"].get(account, 0) - bought * 100
    assert now["lots"] == held["lots"] + 40  # one lot per buy (no short position to cover)
    events = AuditEvent.objects.filter(
        kind="order.allocated", object_id__in=[str(o.pk) for o in orders]
    )
    assert events.count() == 40
    # two orders of one account: the second one's "before" is the first one's "after"
    twice = [o for o in orders if o.portfolio_id == orders[0].portfolio_id]
    first, second = (events.get(object_id=str(o.pk)) for o in twice[:2])
    assert second.before["position"] == first.after["position"]
    assert AuditEvent.objects.filter(kind="order.status").count() >= 40


def test_allocating_sells_costs_the_same_for_3_or_40_orders_and_closes_their_lots(
    pm, trader, book, quiet_broker
):
    chain = functools.partial(_chain, pm, trader, book, quiet_broker, make=_sell_block)
    chain(orders=2, accounts=2, prefix="W")  # warms caches
    small = chain(orders=3, accounts=2, prefix="S")
    large = chain(orders=40, accounts=25, prefix="L")
    assert small["allocate"] == large["allocate"]
    assert large["allocate"] <= ALLOCATE_SELLS, f"allocation takes {large['allocate']}"
    # and each order closed its lots by its own method, the named lot first
    for order in large["block"].orders.select_related("allocation"):
        closings = LotClosing.objects.filter(allocation_id=order.allocation.pk).order_by("pk")
        assert sum(c.quantity for c in closings) == order.quantity
        costs = [c.unit_cost for c in closings]
        if order.lots:
            assert closings[0].lot_id == order.lots[0][0] and closings[0].quantity == 50
            costs = costs[1:]
        first = {"fifo": 30, "hifo": 120, "min_tax": 120}[order.lot_method]
        assert costs[0] == first, (order.lot_method, costs)


def test_orders_follow_their_block_in_one_update_with_one_event_each(
    pm, trader, book, quiet_broker
):
    block = _block(pm, book, orders=12, accounts=6)
    before = AuditEvent.objects.count()
    route_services.route_create(actor=trader, block_id=block.pk, broker=quiet_broker)
    working = AuditEvent.objects.filter(pk__gt=0, kind="order.status").order_by("pk")
    assert working.count() == 12
    assert {(e.before["status"], e.after["status"]) for e in working} == {("released", "working")}
    assert AuditEvent.objects.count() - before == 12 + 2  # and route.created, block.routed
    assert set(block.orders.values_list("status", flat=True)) == {Order.Status.WORKING}


def test_many_events_in_one_statement_are_the_events_of_one_by_one(pm):
    with transaction.atomic():
        one = audit_record(actor=pm, kind="t.one", obj=pm, before={"a": 1}, after={"a": 2})
        with CaptureQueriesContext(connection) as queries:
            many = audit_record_many(
                actor=pm,
                kind="t.many",
                entries=[(pm, {"a": n}, {"a": n + 1}) for n in range(1500)],
                reason="why",
            )
    assert len(queries) == 2  # a thousand events per INSERT
    assert [e.pk for e in many] == sorted(e.pk for e in many) and many[0].pk > one.pk
    stored = AuditEvent.objects.get(pk=many[7].pk)
    assert (stored.kind, stored.before, stored.after, stored.reason) == (
        "t.many",
        {"a": 7},
        {"a": 8},
        "why",
    )
    assert (stored.actor_id, stored.actor_name, stored.object_type, stored.object_id) == (
        one.actor_id,
        one.actor_name,
        one.object_type,
        one.object_id,
    )
    while audit_seal():
        pass
    assert verify_audit_chain().ok


#: Releasing orders: the orders locked, the pre-trade check, the blocks locked and the
#: missing ones created, the orders and the blocks written, their events, whatever the
#: number of orders and of the blocks they join.
RELEASE = 16


def _approved(pm, book, *, orders: int, accounts: int, tickers: list[str], prefix: str):
    portfolios = [
        Portfolio.objects.create(code=f"{prefix}{n:03d}", name=f"Extra {n}", manager=pm)
        for n in range(accounts)
    ]
    return Order.objects.bulk_create(
        Order(
            portfolio=portfolios[n % accounts],
            security=book["securities"][tickers[n % len(tickers)]],
            side="buy",
            quantity=Decimal(10 * (1 + n % 3)),
            status=Order.Status.APPROVED,
            created_by=pm,
            approved_by=pm,
            time_in_force="gtc",
        )
        for n in range(orders)
    )


def test_releasing_costs_the_same_for_17_or_60_orders_into_1_or_3_blocks(pm, book):
    def release(made):
        return _counted(
            lambda: order_services.orders_release(actor=pm, order_ids=[o.pk for o in made])
        )[1]

    # (more than 16 accounts each time: the pre-trade check keeps no rule book for so
    # many, so that it costs the same each time)
    release(_approved(pm, book, orders=17, accounts=17, tickers=["EEE"], prefix="W"))  # warms
    # one of the large release's blocks is open already (the warm-up's): it grows
    small = release(_approved(pm, book, orders=17, accounts=17, tickers=["AAA"], prefix="S"))
    large_orders = _approved(
        pm, book, orders=60, accounts=30, tickers=["BBB", "EEE", "DDD"], prefix="L"
    )
    large = release(large_orders)
    assert small == large, f"{small} vs {large} statements"
    assert large <= RELEASE, f"releasing takes {large} statements (pinned {RELEASE})"
    # and the results are those of releasing order by order
    blocks = {b.security.ticker: b for b in Block.objects.select_related("security")}
    assert set(blocks) == {"AAA", "BBB", "DDD", "EEE"}
    for block in blocks.values():
        orders = list(block.orders.all())
        assert {o.status for o in orders} == {Order.Status.RELEASED}
        assert {o.released_by_id for o in orders} == {pm.pk}
        assert block.quantity == sum(o.quantity for o in orders)
        assert block.status == Block.Status.OPEN
    eee = [o for o in large_orders if o.security_id == blocks["EEE"].security_id]
    assert blocks["EEE"].orders.count() == 17 + len(eee)
    released = AuditEvent.objects.filter(
        kind="order.released", object_id__in=[str(o.pk) for o in large_orders]
    )
    assert released.count() == 60
    event = released.get(object_id=str(large_orders[0].pk))
    assert (event.before, event.after, event.actor_id) == (
        {"status": "approved"},
        {"status": "released", "block": blocks["BBB"].pk},
        pm.pk,
    )
    warm = sum(Decimal(10 * (1 + n % 3)) for n in range(17))
    grown = AuditEvent.objects.filter(kind="block.orders_added", object_id=str(blocks["EEE"].pk))
    assert [
        (Decimal(e.before["quantity"]), Decimal(e.after["quantity"]), e.after["orders"])
        for e in grown.order_by("pk")
    ] == [
        (0, warm, [o.pk for o in blocks["EEE"].orders.order_by("pk")][:17]),
        (warm, warm + sum(o.quantity for o in eee), [o.pk for o in eee]),
    ]


# --- Many blocks, routes and reports at once -------------------------------------------

#: `routes_create`, whatever the number of blocks: the blocks locked, the routes
#: inserted, the blocks written, their orders locked and written, three INSERTs of
#: events, and the transaction.
ROUTES_CREATE = 11
#: `routes_create` to a FIX broker: the same, and the routes' outbox rows and their
#: `route.sent` events inserted in the same transaction (one INSERT each): no task.
ROUTES_CREATE_FIX = ROUTES_CREATE + 2
#: `routes_send` of a FIX broker's routes, whatever their number: the routes read, the
#: broker's session, the claim (lock, UPDATE), the events, the outbox INSERT, and the
#: transaction.
ROUTES_SEND = 8
#: `executions_apply`, whatever the number of reports: the routes found, blocks and
#: routes locked, ExecIDs and the blocks' routes read, the executions inserted, routes
#: and blocks written, the events, the orders locked and written, and the transaction.
EXECUTIONS_APPLY = 14


def _blocks(
    pm, book, count: int, *, orders: int = 3, start: int = 0, tif: str = "gtc"
) -> list[Block]:
    """``count`` released blocks of AAA (a limit price each), ``orders`` orders each."""
    security = book["securities"]["AAA"]
    made = Order.objects.bulk_create(
        Order(
            portfolio=book["accounts"][n % len(book["accounts"])],
            security=security,
            side="buy",
            quantity=Decimal(100),
            order_type="limit",
            limit_price=Decimal(200 + start + b),
            status=Order.Status.APPROVED,
            created_by=pm,
            approved_by=pm,
            time_in_force=tif,
        )
        for b in range(count)
        for n in range(orders)
    )
    order_services.orders_release(actor=pm, order_ids=[o.pk for o in made])
    return list(Block.objects.filter(orders__pk__in=[o.pk for o in made]).distinct().order_by("pk"))


@pytest.fixture
def session_broker(book):
    from trading.models import FixSession

    broker = Broker.objects.create(code="SB", name="Session", adapter=Broker.Adapter.FIX)
    FixSession.objects.create(broker=broker, sender_comp_id="OMS", target_comp_id="SB", port=1)
    return Broker.objects.select_related("fix_session").get(pk=broker.pk)


def test_routing_many_blocks_at_once_costs_the_same_for_1_or_6(pm, trader, book, quiet_broker):
    route_services.routes_create(
        actor=trader, block_ids=[b.pk for b in _blocks(pm, book, 1)], broker=quiet_broker
    )  # warms caches
    one = _blocks(pm, book, 1, start=10)
    six = _blocks(pm, book, 6, start=20)
    _, n_one = _counted(
        lambda: route_services.routes_create(
            actor=trader, block_ids=[b.pk for b in one], broker=quiet_broker
        )
    )
    before = AuditEvent.objects.count()
    routes, n_six = _counted(
        lambda: route_services.routes_create(
            actor=trader, block_ids=[b.pk for b in six], broker=quiet_broker
        )
    )
    assert n_one == n_six <= ROUTES_CREATE, (n_one, n_six)
    # as route_create one by one: the whole of each block routed, its orders working
    assert sorted(r.block_id for r in routes) == [b.pk for b in six]
    for block in six:
        block.refresh_from_db()
        assert block.status == Block.Status.WORKING and block.routed_quantity == block.quantity
        assert {o.status for o in block.orders.all()} == {Order.Status.WORKING}
    kinds = list(AuditEvent.objects.filter(pk__gt=0).order_by("pk").values_list("kind", flat=True))
    new = kinds[before:]
    assert new.count("route.created") == 6 and new.count("block.routed") == 6
    assert new.count("order.status") == 18


def test_routing_many_blocks_refuses_them_all_when_one_cannot_go(pm, trader, book, quiet_broker):
    from django.core.exceptions import ValidationError

    blocks = _blocks(pm, book, 3)
    route_services.route_create(actor=trader, block_id=blocks[1].pk, broker=quiet_broker)
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match=f"Block #{blocks[1].pk}"):
        route_services.routes_create(
            actor=trader, block_ids=[b.pk for b in blocks], broker=quiet_broker
        )
    assert Route.objects.filter(block__in=[blocks[0], blocks[2]]).count() == 0
    assert AuditEvent.objects.count() == events
    assert Block.objects.get(pk=blocks[0].pk).status == Block.Status.OPEN


def test_routing_many_blocks_to_a_fix_broker_queues_their_orders_as_it_commits(
    pm, trader, book, session_broker, django_capture_on_commit_callbacks
):
    """The routes' new orders are in the session's outbox, claimed, in the transaction
    that made them: the gateway sends them once it commits, with no task between."""
    from trading.models import FixOutbox

    def routed(count, start):
        blocks = _blocks(pm, book, count, start=start)
        return _counted(
            lambda: route_services.routes_create(
                actor=trader, block_ids=[b.pk for b in blocks], broker=session_broker
            )
        )

    routed(1, 0)  # warms caches
    _, n_one = routed(1, 10)
    with django_capture_on_commit_callbacks() as callbacks:
        six, n_six = routed(6, 20)
    assert n_one == n_six <= ROUTES_CREATE_FIX, (n_one, n_six)
    rows = {row.route_id: row for row in FixOutbox.objects.filter(route__in=six)}
    for route in six:
        route.refresh_from_db()
        assert route.sent_at is not None and route.status == Route.Status.PENDING_NEW
        assert rows[route.pk].msg_type == "D" and rows[route.pk].status == "pending"
        assert ["11", route.cl_ord_id] in [[str(t), v] for t, v in rows[route.pk].fields]
    assert (
        AuditEvent.objects.filter(kind="route.sent", object_id__in=[str(r.pk) for r in six]).count()
        == 6
    )
    for callback in callbacks:  # what runs after commit is the blotter's push, no send
        callback()
    assert FixOutbox.objects.filter(route__in=six).count() == 6


def _left_to_the_worker(monkeypatch):
    """Routes to a FIX broker made while their messages cannot be built go to the
    routing worker (`routes_send`), which builds them (or says why not)."""

    def cannot_build(self, routes_and_tickets):
        raise KeyError("not now")

    from trading.brokers.fix import FixBroker

    monkeypatch.setattr(FixBroker, "new_orders", cannot_build)


def test_sending_many_routes_to_a_fix_broker_costs_the_same_for_1_or_5(
    pm, trader, book, session_broker, monkeypatch
):
    from trading.models import FixOutbox

    def routed(count, start):
        blocks = _blocks(pm, book, count, start=start)
        with monkeypatch.context() as patch:
            _left_to_the_worker(patch)
            routes = route_services.routes_create(
                actor=trader, block_ids=[b.pk for b in blocks], broker=session_broker
            )
        assert not FixOutbox.objects.filter(route__in=routes).exists()
        return routes

    route_services.routes_send([r.pk for r in routed(1, 0)])  # warms caches
    one, five = routed(1, 10), routed(5, 20)
    _, n_one = _counted(lambda: route_services.routes_send([r.pk for r in one]))
    _, n_five = _counted(lambda: route_services.routes_send([r.pk for r in five]))
    assert n_one == n_five <= ROUTES_SEND, (n_one, n_five)
    for route in five:
        route.refresh_from_db()
        assert route.sent_at is not None
        [row] = FixOutbox.objects.filter(route=route)
        assert row.msg_type == "D" and ["11", route.cl_ord_id] in [
            [str(t), v] for t, v in row.fields
        ]
    assert AuditEvent.objects.filter(kind="route.sent").count() == 7
    # a second delivery of the task sends nothing again
    route_services.routes_send([r.pk for r in five])
    assert FixOutbox.objects.filter(route__in=five).count() == 5
    assert AuditEvent.objects.filter(kind="route.sent").count() == 7


def _acked_and_filled(routes, prefix="") -> list[ExecutionReport]:
    reports = []
    for route in routes:
        reports.append(_report(route, f"{prefix}A{route.pk}", "new", "new"))
        half = route.quantity / 2
        fill = _report(route, f"{prefix}F{route.pk}", "trade", "partially_filled", half, 100)
        reports.append(fill)
        rest = _report(route, f"{prefix}G{route.pk}", "trade", "filled", half, Decimal(102))
        reports.append(ExecutionReport(**{**rest.__dict__, "cumulative_quantity": route.quantity}))
    return reports


def test_applying_many_reports_at_once_costs_the_same_and_books_as_one_by_one(
    pm, trader, book, quiet_broker
):
    def routed(count, start):
        routes = route_services.routes_create(
            actor=trader,
            block_ids=[b.pk for b in _blocks(pm, book, count, start=start)],
            broker=quiet_broker,
        )
        return list(Route.objects.select_related("broker").filter(pk__in=[r.pk for r in routes]))

    execution_services.executions_apply(_acked_and_filled(routed(1, 0)))  # warms caches
    two, six, alone = routed(2, 10), routed(6, 20), routed(6, 40)
    _, n_two = _counted(lambda: execution_services.executions_apply(_acked_and_filled(two)))
    _, n_six = _counted(lambda: execution_services.executions_apply(_acked_and_filled(six)))
    assert n_two == n_six <= EXECUTIONS_APPLY, (n_two, n_six)
    for report in _acked_and_filled(alone):
        execution_services.execution_apply(report)

    def figures(routes):
        out = []
        for route in routes:
            route.refresh_from_db()
            block = Block.objects.get(pk=route.block_id)
            out.append(
                (
                    route.status,
                    route.filled_quantity,
                    route.average_price,
                    block.status,
                    block.filled_quantity,
                    block.average_price,
                    block.routed_quantity,
                    sorted(block.orders.values_list("status", flat=True)),
                    route.executions.count(),
                    sorted(
                        AuditEvent.objects.filter(
                            object_type="trading.route", object_id=str(route.pk)
                        ).values_list("kind", flat=True)
                    ),
                    sorted(
                        AuditEvent.objects.filter(
                            object_type="trading.block", object_id=str(block.pk)
                        ).values_list("kind", flat=True)
                    ),
                )
            )
        return out

    assert figures(six) == figures(alone)
    assert {f[3] for f in figures(six)} == {Block.Status.FILLED}
    # applied again: nothing changes, each reported as already applied
    events = AuditEvent.objects.count()
    assert execution_services.executions_apply(_acked_and_filled(six)) == [None] * 18
    assert AuditEvent.objects.count() == events


def test_applying_many_reports_refuses_them_all_when_one_would_overfill(
    pm, trader, book, quiet_broker
):
    routes = route_services.routes_create(
        actor=trader, block_ids=[b.pk for b in _blocks(pm, book, 2)], broker=quiet_broker
    )
    routes = list(Route.objects.select_related("broker").filter(pk__in=[r.pk for r in routes]))
    good = _report(routes[0], "OK1", "trade", "filled", routes[0].quantity, Decimal(100))
    # the second fill takes the route past its quantity
    over = [
        _report(routes[1], f"O{n}", "trade", "partially_filled", routes[1].quantity, 100)
        for n in range(2)
    ]
    events = AuditEvent.objects.count()
    with pytest.raises(execution_services.BookingRefused):
        execution_services.executions_apply([good, *over])
    assert AuditEvent.objects.count() == events
    assert not Route.objects.get(pk=routes[0].pk).executions.exists()
    assert Block.objects.get(pk=routes[0].block_id).filled_quantity == 0


def test_the_blocks_one_read_fills_are_allocated_by_one_task(
    pm, trader, book, quiet_broker, django_capture_on_commit_callbacks, eager_celery
):
    from oms import tasking

    queued = []
    real = tasking.enqueue

    def spy(name, *args, **kwargs):
        queued.append(name)
        return real(name, *args, **kwargs)

    routes = route_services.routes_create(
        actor=trader, block_ids=[b.pk for b in _blocks(pm, book, 3)], broker=quiet_broker
    )
    routes = list(Route.objects.select_related("broker").filter(pk__in=[r.pk for r in routes]))
    fills = [_report(r, f"F{r.pk}", "trade", "filled", r.quantity, Decimal(100)) for r in routes]
    tasking.enqueue = spy
    try:
        with django_capture_on_commit_callbacks(execute=True):
            execution_services.executions_apply(fills)
    finally:
        tasking.enqueue = real
    assert queued.count("trading.tasks.allocate_blocks") == 1
    assert "trading.tasks.allocate_block" not in queued
    for route in routes:
        block = Block.objects.get(pk=route.block_id)
        assert block.status == Block.Status.ALLOCATED
        assert Allocation.objects.filter(block=block).count() == 3


def test_allocating_several_blocks_tries_them_all_and_raises_what_failed(
    pm, trader, book, quiet_broker
):
    from django.core.exceptions import ValidationError

    working, filled = route_services.routes_create(
        actor=trader, block_ids=[b.pk for b in _blocks(pm, book, 2)], broker=quiet_broker
    )
    filled = Route.objects.select_related("broker").get(pk=filled.pk)
    working = Route.objects.select_related("broker").get(pk=working.pk)
    execution_services.executions_apply(
        [
            _report(working, "P1", "trade", "partially_filled", Decimal(10), Decimal(100)),
            _report(filled, "F1", "trade", "filled", filled.quantity, Decimal(100)),
        ]
    )
    # the first is still trading: it is raised, once the second has been allocated
    with pytest.raises(ValidationError, match="still partially filled"):
        allocation_services.blocks_allocate(block_ids=[working.block_id, filled.block_id])
    assert Block.objects.get(pk=filled.block_id).status == Block.Status.ALLOCATED
    assert Block.objects.get(pk=working.block_id).status == Block.Status.PARTIALLY_FILLED


def test_a_day_block_partly_filled_then_ended_in_one_read_leaves_its_orders_as_one_by_one(
    pm, trader, book, quiet_broker
):
    """Fill, then the broker ends the day: the block is done for the day, and its orders
    show the fill (partially filled) as when each report is applied alone."""

    def routed(start):
        [route] = route_services.routes_create(
            actor=trader,
            block_ids=[b.pk for b in _blocks(pm, book, 1, start=start, tif="day")],
            broker=quiet_broker,
        )
        return Route.objects.select_related("broker").get(pk=route.pk)

    def reports(route):
        return [
            _report(route, f"F{route.pk}", "trade", "partially_filled", Decimal(30), 100),
            ExecutionReport(
                **{
                    **_report(route, f"E{route.pk}", "expired", "expired").__dict__,
                    "cumulative_quantity": Decimal(30),
                    "leaves_quantity": Decimal(0),
                }
            ),
        ]

    together, alone = routed(0), routed(10)
    execution_services.executions_apply(reports(together))
    for report in reports(alone):
        execution_services.execution_apply(report)
    for route in (together, alone):
        block = Block.objects.get(pk=route.block_id)
        assert block.status == Block.Status.DONE_FOR_DAY
        assert set(block.orders.values_list("status", flat=True)) == {Order.Status.PARTIALLY_FILLED}


# --- Many blocks allocated at once ------------------------------------------------------

#: `blocks_allocate`, whatever the number of blocks and orders: the blocks locked, their
#: orders locked, their last fills read, the allocations inserted, the accounts' drift
#: marked stale, positions and cash created and locked (two statements each), the
#: sellers' open lots locked, positions, cash and lots written, the new lots, the lot
#: closings and the cash movements inserted, the orders and the blocks written, every
#: event in one INSERT, and the transaction.
BLOCKS_ALLOCATE = 21


def _desk(pm, trader, book, broker, *, pairs: int, prefix: str) -> list[Block]:
    """``pairs`` pairs of blocks over three accounts of their own, each account in every
    block (the first with two orders in each): a buy of AAA, filled 150 at 100 then 250
    at 101 (every second pair's a day order filled 35 of 400, then expired by the broker:
    done for the day), and a sale of BBB filled at 55, which each account holds 1,000 of
    in two lots (the orders close them first in, first out or highest cost first).
    Routed and reported on; returns the blocks, not yet allocated."""
    aaa, bbb = book["securities"]["AAA"], book["securities"]["BBB"]
    accounts = [
        Portfolio.objects.create(code=f"{prefix}{n}", name=f"Desk {prefix}{n}", manager=pm)
        for n in range(3)
    ]
    CashBalance.objects.bulk_create(
        CashBalance(portfolio=a, currency="USD", amount=Decimal(1_000_000)) for a in accounts
    )
    _held(accounts, bbb, ((400, 30, 700), (600, 60, 30)))
    made = []
    for k in range(pairs):
        for security, side, tif in ((aaa, "buy", ("gtc", "day")[k % 2]), (bbb, "sell", "gtc")):
            made += Order.objects.bulk_create(
                Order(
                    portfolio=accounts[n % 3],
                    security=security,
                    side=side,
                    quantity=Decimal(100),
                    order_type="limit",
                    limit_price=Decimal(200 + k) if side == "buy" else Decimal(1 + k),
                    status=Order.Status.APPROVED,
                    created_by=pm,
                    approved_by=pm,
                    time_in_force=tif,
                    lot_method=("fifo", "hifo")[n % 2],
                )
                for n in range(4)
            )
    order_services.orders_release(actor=pm, order_ids=[o.pk for o in made])
    blocks = list(Block.objects.filter(orders__pk__in=[o.pk for o in made]).distinct())
    routes = route_services.routes_create(
        actor=trader, block_ids=[b.pk for b in blocks], broker=broker
    )
    reports = []
    for route in Route.objects.select_related("broker", "block").filter(
        pk__in=[r.pk for r in routes]
    ):
        if route.block.side == "sell":
            fills = [(route.quantity, Decimal(55))]
        elif route.time_in_force == "day":
            fills = [(Decimal(35), Decimal(100))]
        else:
            fills = [(Decimal(150), Decimal(100)), (route.quantity - 150, Decimal(101))]
        done = Decimal(0)
        for n, (quantity, px) in enumerate(fills):
            done += quantity
            status = "filled" if done == route.quantity else "partially_filled"
            report = _report(route, f"F{n}-{route.pk}", "trade", status, quantity, px)
            reports.append(
                ExecutionReport(
                    **{
                        **report.__dict__,
                        "cumulative_quantity": done,
                        "leaves_quantity": route.quantity - done,
                    }
                )
            )
        if done < route.quantity:
            ended = _report(route, f"E-{route.pk}", "expired", "expired")
            reports.append(
                ExecutionReport(
                    **{**ended.__dict__, "cumulative_quantity": done, "leaves_quantity": 0}
                )
            )
    execution_services.executions_apply(reports)
    blocks = list(Block.objects.filter(pk__in=[b.pk for b in blocks]).order_by("pk"))
    assert {b.status for b in blocks} <= {Block.Status.FILLED, Block.Status.DONE_FOR_DAY}
    return blocks


def _books(blocks: list[Block]) -> dict:
    """What allocating ``blocks`` booked, named by place (the accounts by code, orders
    and blocks in pk order), so that two desks made alike compare equal."""
    orders = list(Order.objects.filter(block__in=blocks).select_related("portfolio").order_by("pk"))
    accounts = sorted({o.portfolio for o in orders}, key=lambda a: a.code)
    place = {a.pk: n for n, a in enumerate(accounts)}
    lot_place = {}
    for lot in TaxLot.objects.filter(portfolio__in=accounts).order_by("portfolio__code", "pk"):
        lot_place[lot.pk] = (place[lot.portfolio_id], len(lot_place))
    events = AuditEvent.objects.filter(
        kind="order.allocated", object_id__in=[str(o.pk) for o in orders]
    ).order_by("pk")
    order_place = {str(o.pk): n for n, o in enumerate(orders)}

    def figures(side: dict) -> tuple:
        closed = [(lot_place[int(pk)], q) for pk, q in side.get("lots_closed", [])]
        return (side.get("status"), side.get("position"), side.get("cash"), closed)

    return {
        "blocks": [
            (b.status, b.filled_quantity)
            for b in Block.objects.filter(pk__in=[b.pk for b in blocks]).order_by("pk")
        ],
        "orders": [(o.status, o.filled_quantity, o.average_price) for o in orders],
        "allocations": [
            (
                order_place[str(a.order_id)],
                a.quantity,
                a.price,
                a.gross_amount,
                a.commission,
                a.net_amount,
                a.trade_date,
            )
            for a in Allocation.objects.filter(block__in=blocks).order_by("order_id")
        ],
        "positions": sorted(
            (place[p.portfolio_id], p.security.ticker, p.quantity)
            for p in Position.objects.filter(portfolio__in=accounts).select_related("security")
        ),
        "cash": sorted(
            (place[c.portfolio_id], c.currency, c.amount)
            for c in CashBalance.objects.filter(portfolio__in=accounts)
        ),
        "lots": [
            (lot_place[lot.pk], lot.security_id, lot.quantity, lot.unit_cost, lot.acquired_on)
            for lot in TaxLot.objects.filter(portfolio__in=accounts).order_by("pk")
        ],
        "closings": [
            (lot_place[c.lot_id], c.quantity, c.unit_cost, c.realised_gain, c.term)
            for c in LotClosing.objects.filter(portfolio__in=accounts).order_by("pk")
        ],
        "events": [(order_place[e.object_id], figures(e.before), figures(e.after)) for e in events],
    }


def test_allocating_many_blocks_costs_the_same_for_2_or_6(pm, trader, book, quiet_broker):
    desk = functools.partial(_desk, pm, trader, book, quiet_broker)
    allocation_services.blocks_allocate(
        block_ids=[b.pk for b in desk(pairs=1, prefix="W")]
    )  # warms caches
    two, six = desk(pairs=1, prefix="S"), desk(pairs=3, prefix="L")
    done, n_two = _counted(
        lambda: allocation_services.blocks_allocate(block_ids=[b.pk for b in two])
    )
    assert done == 2
    done, n_six = _counted(
        lambda: allocation_services.blocks_allocate(block_ids=[b.pk for b in six])
    )
    assert done == 6
    assert n_two == n_six <= BLOCKS_ALLOCATE, (n_two, n_six)
    assert {b.status for b in Block.objects.filter(pk__in=[b.pk for b in six])} == {
        Block.Status.ALLOCATED
    }


def test_many_blocks_allocated_at_once_book_what_one_by_one_books(pm, trader, book, quiet_broker):
    desk = functools.partial(_desk, pm, trader, book, quiet_broker, pairs=2)
    together, alone = desk(prefix="T"), desk(prefix="A")
    assert allocation_services.blocks_allocate(block_ids=[b.pk for b in together]) == 4
    for block in alone:
        allocation_services.block_allocate(block_id=block.pk)
    booked = _books(together)
    assert booked == _books(alone)

    # and what it books is the allocation rule's, to the share and the cent
    mine = Block.objects.filter(pk__in=[b.pk for b in together], side="buy")
    partly, filled = mine.get(time_in_force="day"), mine.get(time_in_force="gtc")
    assert (partly.filled_quantity, filled.average_price) == (35, Decimal("100.625"))
    split = sorted(Allocation.objects.filter(block=partly).values_list("order_id", "quantity"))
    assert [q for _, q in split] == [9, 9, 9, 8]  # 35 in whole shares, the residual in order
    assert set(partly.orders.values_list("status", flat=True)) == {Order.Status.ALLOCATED}
    bought = Allocation.objects.filter(block=filled)
    assert {(a.quantity, a.gross_amount, a.net_amount) for a in bought} == {
        (100, Decimal("10062.50"), Decimal("10062.50"))
    }
    first = Portfolio.objects.get(code="T0")
    allocated = Allocation.objects.filter(order__portfolio=first, block__in=together)
    assert CashBalance.objects.get(portfolio=first, currency="USD").amount == Decimal(
        1_000_000
    ) - sum(a.net_amount for a in allocated if a.order.side == "buy") + sum(
        a.net_amount for a in allocated if a.order.side == "sell"
    )
    # the account in every block: each booking's "before" is the one before's "after"
    events = AuditEvent.objects.filter(
        kind="order.allocated",
        object_id__in=[str(a.order_id) for a in allocated],
    ).order_by("pk")
    assert len(events) == 8
    for earlier, later in zip(events, events[1:], strict=False):
        assert later.before["cash"] == earlier.after["cash"]
    # the sells closed lots first in, first out (fifo) or dearest first (hifo)
    for allocation in allocated.filter(order__side="sell").select_related("order"):
        costs = list(
            LotClosing.objects.filter(allocation_id=allocation.pk)
            .order_by("pk")
            .values_list("unit_cost", flat=True)
        )
        assert costs[0] == {"fifo": 30, "hifo": 60}[allocation.order.lot_method]
