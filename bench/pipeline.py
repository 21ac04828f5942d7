"""The chain end to end, measured: `python bench/pipeline.py [--orders 10000 --accounts 2000]`.

On PostgreSQL and Redis with the real processes (a Celery worker, the FIX
gateway, the FIX simulator on localhost), on a database of its own that it
empties first (DATABASE_URL must name a database with "bench" in its name):

1. **Throughput.** N approved orders (written in bulk beforehand, not timed)
   across the accounts and securities are released (blocks form per security),
   every block is routed to the FIX simulator through the gateway (together, as
   the desk routes a selection: `routes_create`), and the
   clock stops when every block is filled and allocated. Prints orders per
   second end to end and the time spent in each stage.
2. **Acknowledgement latency** at a steady rate (default 200 routes a second,
   one order each, every route its own `route_create` call from one of
   `--clients` processes): from the request to its broker acknowledgement
   applied in the database, p50 and p99, and the time spent in each hop
   (committed, claimed for sending, sent by the gateway, acknowledged).
3. **Peak memory** of each process (VmHWM).

Ends with one line of JSON. Audited writes append their events unchained in
their own transaction; the sealer process chains them after commit
(docs/architecture.md, decision 1), so writers no longer queue behind one lock.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_peak_mib(pid: int) -> float:
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split()
    return round(sum(_peak_kib(p) for p in [pid, *map(int, children)]) / 1024, 1)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _tree_cpu_seconds(pid: int) -> float:
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split()
    return sum(_cpu_seconds(p) for p in [pid, *map(int, children)])


def _task_times(log: Path) -> dict:
    """From a worker's INFO log: per task name, how many succeeded and their seconds."""
    import re

    done = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded in ([0-9.]+)s")
    totals: dict[str, list] = {}
    for match in done.finditer(log.read_text(errors="replace")):
        entry = totals.setdefault(match[1].rsplit(".", 1)[-1], [0, 0.0])
        entry[0] += 1
        entry[1] += float(match[2])
    return {name: [n, round(seconds, 1)] for name, (n, seconds) in sorted(totals.items())}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _flush_past_the_trail_triggers() -> None:
    """The audit trail refuses TRUNCATE (docs/audit.md). The bench is the scratch
    database's superuser: its flush runs with triggers off for its own transaction,
    as the test suite's does (tests/conftest.py)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, **options):
        statements = flush(self, style, tables, **options)
        return ["SET LOCAL session_replication_role = replica", *statements] if statements else []

    DatabaseOperations.sql_flush = sql_flush


def _route_client(block_ids, began, rate, first, step, *, trader_id, broker_id, results) -> None:
    """One of the steady section's clients: block ``first + k * step`` of the run is
    routed (one `route_create`, a request of its own) at ``began + (first + k * step) /
    rate``; puts back each route's request and commit times (wall clock, as the
    database's timestamps) and how late each request started."""
    from django.contrib.auth.models import User

    from trading.models import Broker
    from trading.services import routes as route_services

    trader = User.objects.get(pk=trader_id)
    broker = Broker.objects.select_related("fix_session").get(pk=broker_id)
    times, late = {}, []
    for k, block_id in enumerate(block_ids):
        due = began + (first + k * step) / rate
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)
        asked_at = time.time()
        late.append(max(asked_at - due, 0.0) * 1000)
        route = route_services.route_create(actor=trader, block_id=block_id, broker=broker)
        times[route.pk] = (asked_at, time.time())
    results.put((times, late, _cpu_seconds(os.getpid())))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--securities", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200.0, help="routes a second (latency)")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument(
        "--task-times",
        action="store_true",
        help="run the worker at INFO and sum its tasks' times by name from its log",
    )
    parser.add_argument(
        "--clients", type=int, default=4, help="processes routing at the steady rate (4)"
    )
    parser.add_argument(
        "--gateway-poll",
        type=float,
        default=0.2,
        help="the gateway's --poll, seconds between outbox reads (production's 0.2)",
    )
    parser.add_argument(
        "--gateway-gather",
        type=float,
        default=None,
        help="the gateway's --gather, seconds a wake-up waits for more rows (its default)",
    )
    parser.add_argument(
        "--profile-gateway",
        metavar="PATH",
        help="run the gateway under cProfile, its statistics written to PATH when it stops",
    )
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or "bench" not in url:
        parser.error("set DATABASE_URL to a PostgreSQL database named *bench* (it is emptied)")
    if not os.environ.get("REDIS_URL"):
        parser.error("set REDIS_URL")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # a scratch database that the bench empties: a key of its own unless one is given
    os.environ.setdefault("SECRET_KEY", "pipeline-bench-" + os.urandom(24).hex())
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connections
    from django.db.models import Max, Min
    from django.utils import timezone

    from config.celery import app, worker_command
    from oms.roles import Role
    from portfolios.models import CashBalance, Portfolio, Price, Security
    from tests.chaos.harness import Process, free_port
    from trading.models import Block, Broker, Execution, FixOutbox, FixSession, Order, Route
    from trading.services import orders as order_services
    from trading.services import routes as route_services

    call_command("migrate", verbosity=0)
    _flush_past_the_trail_triggers()
    call_command("flush", interactive=False, verbosity=0)
    with app.connection_for_write() as conn:
        for queue in settings.OMS_QUEUES:
            conn.default_channel.queue_purge(queue)
    work = Path(tempfile.mkdtemp(prefix="oms-pipeline-"))

    # --- the book: accounts, securities, the FIX broker -----------------------------
    pm = User.objects.create_user("bench-pm")
    trader = User.objects.create_user("bench-trader")
    pm.groups.add(Group.objects.get_or_create(name=Role.PORTFOLIO_MANAGER.value)[0])
    trader.groups.add(Group.objects.get_or_create(name=Role.TRADER.value)[0])
    today = timezone.now().date()
    securities = Security.objects.bulk_create(
        Security(ticker=f"B{n:04d}", name=f"Bench {n}", asset_class="equity", currency="USD")
        for n in range(args.securities)
    )
    Price.objects.bulk_create(
        Price(security=s, as_of=today, price=Decimal(10 + n % 90)) for n, s in enumerate(securities)
    )
    prices = {s.ticker: str(10 + n % 90) for n, s in enumerate(securities)}
    (work / "prices.json").write_text(json.dumps(prices))
    accounts = Portfolio.objects.bulk_create(
        Portfolio(code=f"BA{n:05d}", name=f"Bench {n}", manager=pm) for n in range(args.accounts)
    )
    CashBalance.objects.bulk_create(
        CashBalance(portfolio=a, currency="USD", amount=Decimal(10**8)) for a in accounts
    )
    port = free_port()
    broker = Broker.objects.create(code="BENCH", name="Bench FIX broker", adapter="fix")
    FixSession.objects.create(
        broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=port
    )

    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    python = sys.executable
    processes = {
        "simulator": Process(
            "simulator",
            [
                python,
                "-m",
                "trading.fix.simulator",
                "--port",
                str(port),
                "--session",
                "FIX.4.4:OMS",
                "--no-reset-on-logon",
                "--prices",
                str(work / "prices.json"),
            ],
            env,
            work / "simulator.log",
        ),
        "worker": Process(
            "worker",
            worker_command(python, loglevel="INFO" if args.task_times else "WARNING"),
            env,
            work / "worker.log",
        ),
        # production's sealer (Procfile): chains the audit events after commit
        "sealer": Process(
            "sealer", [python, "manage.py", "seal_audit", "--loop"], env, work / "sealer.log"
        ),
        "gateway": Process(
            "gateway",
            [
                python,
                *(["-m", "cProfile", "-o", args.profile_gateway] if args.profile_gateway else []),
                "manage.py",
                "fix_gateway",
                "BENCH",
                "--poll",
                str(args.gateway_poll),
                *([] if args.gateway_gather is None else ["--gather", str(args.gateway_gather)]),
            ],
            env,
            work / "gateway.log",
        ),
    }
    for process in processes.values():
        process.start()
        time.sleep(1.0)
    deadline = time.monotonic() + 60
    while not FixSession.objects.get(broker=broker).logged_on and time.monotonic() < deadline:
        time.sleep(0.2)

    figures: dict = {"orders": args.orders, "accounts": args.accounts}
    try:
        # --- 1. throughput ---------------------------------------------------------
        orders = Order.objects.bulk_create(
            Order(
                portfolio=accounts[n % len(accounts)],
                security=securities[n % len(securities)],
                side="buy",
                quantity=Decimal(10 * (1 + n % 5)),
                status=Order.Status.APPROVED,
                created_by=pm,
                approved_by=pm,
                time_in_force="gtc",
            )
            for n in range(args.orders)
        )
        ids = [o.pk for o in orders]
        cpu_before = {name: _tree_cpu_seconds(p.popen.pid) for name, p in processes.items()}
        cpu_before["bench"] = _cpu_seconds(os.getpid())
        t0 = time.monotonic()
        for start in range(0, len(ids), 1000):
            order_services.orders_release(actor=pm, order_ids=ids[start : start + 1000])
        t_released = time.monotonic()
        blocks = list(Block.objects.values_list("pk", flat=True))
        # the desk routes the blocks together (the blotter's "route selected"): one
        # transaction, the routes sent SEND_BATCH to a task
        route_services.routes_create(actor=trader, block_ids=blocks, broker=broker)
        t_routed = time.monotonic()
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            left = Block.objects.exclude(status=Block.Status.ALLOCATED).count()
            if left == 0:
                break
            time.sleep(0.2)
        t_done = time.monotonic()
        cpu_throughput = {
            name: round(_tree_cpu_seconds(p.popen.pid) - cpu_before[name], 1)
            for name, p in processes.items()
        } | {"bench": round(_cpu_seconds(os.getpid()) - cpu_before["bench"], 1)}
        allocated = Order.objects.filter(status=Order.Status.ALLOCATED).count()
        routes = Route.objects.aggregate(
            created=Min("created_at"), sent=Max("sent_at"), last=Max("updated_at")
        )
        # the last new order the gateway sent (a route's own sent_at is its claim)
        on_wire = FixOutbox.objects.filter(msg_type="D").aggregate(last=Max("sent_at"))["last"]
        acks = Execution.objects.filter(exec_type="new").aggregate(last=Max("received_at"))
        fills = Execution.objects.filter(exec_type="trade").aggregate(last=Max("received_at"))
        allocated_at = Block.objects.aggregate(last=Max("updated_at"))["last"]
        first = routes["created"]
        figures |= {
            "blocks": len(blocks),
            "allocated_orders": allocated,
            "end_to_end_seconds": round(t_done - t0, 2),
            "orders_per_second": round(allocated / (t_done - t0), 1),
            "stages_seconds": {
                "release": round(t_released - t0, 2),
                "route_create": round(t_routed - t_released, 2),
                "last_sent_after_first_route": round((on_wire - first).total_seconds(), 2),
                "last_ack_after_first_route": round((acks["last"] - first).total_seconds(), 2),
                "last_fill_after_first_route": round((fills["last"] - first).total_seconds(), 2),
                "last_allocation_after_first_route": round(
                    (allocated_at - first).total_seconds(), 2
                ),
            },
        }

        # --- 2. acknowledgement latency at a steady rate -----------------------------
        count = int(args.rate * args.latency_seconds)
        single = Order.objects.bulk_create(
            Order(
                portfolio=accounts[n % len(accounts)],
                security=securities[n % len(securities)],
                side="buy",
                quantity=Decimal(10),
                order_type="limit",
                # a price of its own makes a block of its own; above the market: fills
                limit_price=Decimal(200) + Decimal(n) / 100,
                status=Order.Status.APPROVED,
                created_by=pm,
                approved_by=pm,
                time_in_force="gtc",
            )
            for n in range(count)
        )
        single_ids = [o.pk for o in single]
        for start in range(0, count, 1000):
            order_services.orders_release(actor=pm, order_ids=single_ids[start : start + 1000])
        latency_blocks = list(
            Block.objects.filter(orders__pk__in=single_ids).values_list("pk", flat=True)
        )
        # every route its own service call, as a desk's requests arrive: `--clients`
        # processes (a web server's workers), route k due at k / rate, each process
        # taking every clients-th one, so that the asked rate is kept even where one
        # call takes longer than 1 / rate
        connections.close_all()  # the clients open their own
        cpu_before = {name: _tree_cpu_seconds(p.popen.pid) for name, p in processes.items()}
        schedule = multiprocessing.get_context("fork")
        results = schedule.Queue()
        began = time.time() + 0.5
        clients = [
            schedule.Process(
                target=_route_client,
                args=(latency_blocks[n :: args.clients], began, args.rate, n, args.clients),
                kwargs={"trader_id": trader.pk, "broker_id": broker.pk, "results": results},
            )
            for n in range(args.clients)
        ]
        for client in clients:
            client.start()
        requested: dict[int, tuple[float, float]] = {}  # route: (requested, committed)
        late = []
        parts = [results.get(timeout=args.latency_seconds * 10 + 120) for _ in clients]
        for part, part_late, _ in parts:
            requested |= part
            late += part_late
        for client in clients:
            client.join()
        # what the steady section cost each process (the clients: their own, summed)
        cpu_steady = {
            name: round(_tree_cpu_seconds(p.popen.pid) - cpu_before[name], 1)
            for name, p in processes.items()
        } | {"clients": round(sum(part[2] for part in parts), 1)}
        latency_routes = list(requested)
        last_committed = max((done for _, done in requested.values()), default=began)
        achieved = len(latency_routes) / max(last_committed - began, 1e-9)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            acked = Execution.objects.filter(route_id__in=latency_routes, exec_type="new").count()
            if acked >= len(latency_routes):
                break
            time.sleep(0.2)
        # each hop, per route: requested (the client, before the call) -> committed
        # (the call returned) -> claimed for sending (`sent_at`: the routing worker's
        # task, or the creating transaction itself) -> sent by the gateway (the outbox
        # row's `sent_at`) -> the acknowledgement applied (the execution's `received_at`,
        # in the gateway's transaction)
        claimed = {
            pk: sent_at.timestamp() if sent_at else None
            for pk, sent_at in Route.objects.filter(pk__in=latency_routes).values_list(
                "pk", "sent_at"
            )
        }
        on_wire = {
            route_id: sent_at.timestamp()
            for route_id, sent_at in FixOutbox.objects.filter(
                route_id__in=latency_routes, msg_type="D", sent_at__isnull=False
            ).values_list("route_id", "sent_at")
        }
        acked_at = {
            route_id: received.timestamp()
            for route_id, received in Execution.objects.filter(
                route_id__in=latency_routes, exec_type="new"
            ).values_list("route_id", "received_at")
        }
        hops: dict[str, list[float]] = {
            "request_to_committed": [],
            "committed_to_claimed": [],
            "claimed_to_sent": [],
            "sent_to_acked": [],
        }
        latencies = []
        for pk, (asked_at, done) in requested.items():
            hops["request_to_committed"].append((done - asked_at) * 1000)
            if pk in acked_at:
                latencies.append((acked_at[pk] - asked_at) * 1000)
            if claimed.get(pk) is not None:
                hops["committed_to_claimed"].append(max(claimed[pk] - done, 0.0) * 1000)
                if pk in on_wire:
                    hops["claimed_to_sent"].append((on_wire[pk] - max(claimed[pk], done)) * 1000)
            if pk in on_wire and pk in acked_at:
                hops["sent_to_acked"].append((acked_at[pk] - on_wire[pk]) * 1000)

        def _spread(values: list[float]) -> dict:
            return {
                "p50": round(_percentile(values, 0.50), 1),
                "p99": round(_percentile(values, 0.99), 1),
                "max": round(max(values), 1) if values else None,
            }

        figures |= {
            "latency_routes": len(latency_routes),
            "latency_clients": args.clients,
            "gateway_poll": args.gateway_poll,
            "latency_rate_asked": args.rate,
            "latency_rate_achieved": round(achieved, 1),
            "latency_requests_late_ms": _spread(late),
            "ack_latency_ms": {
                "p50": round(_percentile(latencies, 0.50), 1),
                "p99": round(_percentile(latencies, 0.99), 1),
                "mean": round(statistics.fmean(latencies), 1) if latencies else None,
                "acked": len(latencies),
            },
            "ack_hops_ms": {name: _spread(values) for name, values in hops.items()},
            "cpu_seconds": {"throughput": cpu_throughput, "steady": cpu_steady},
        }

        # --- 3. memory -------------------------------------------------------------------
        figures["peak_memory_mib"] = {
            name: _tree_peak_mib(p.popen.pid) for name, p in processes.items()
        } | {"bench": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    finally:
        for process in processes.values():
            process.stop()
    if args.task_times:
        figures["worker_tasks"] = _task_times(work / "worker.log")
        print(f"worker tasks (count, seconds): {figures['worker_tasks']}")
    figures["cpus"] = os.cpu_count()
    figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"{figures['allocated_orders']} of {args.orders} orders allocated in "
        f"{figures['end_to_end_seconds']} s: {figures['orders_per_second']} orders/s end to end"
    )
    for stage, seconds in figures["stages_seconds"].items():
        print(f"  {stage}: {seconds} s")
    lat = figures["ack_latency_ms"]
    print(
        f"ack latency at {figures['latency_rate_achieved']} routes/s "
        f"(asked {args.rate}, {args.clients} clients): "
        f"p50 {lat['p50']} ms, p99 {lat['p99']} ms ({lat['acked']} acked)"
    )
    for hop, spread in figures["ack_hops_ms"].items():
        print(f"  {hop}: p50 {spread['p50']} ms, p99 {spread['p99']} ms, max {spread['max']} ms")
    late = figures["latency_requests_late_ms"]
    print(f"  requests started late: p50 {late['p50']} ms, p99 {late['p99']} ms")
    print(f"CPU seconds by process: {figures['cpu_seconds']}")
    print(f"peak memory (MiB): {figures['peak_memory_mib']}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
