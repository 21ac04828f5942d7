"""Nothing lost, nothing twice: orders flow to the FIX simulator through the
gateway while the Celery worker, the gateway and the simulator are killed
(kill -9) at random and restarted; afterwards every route is settled and agrees
with the broker (asked by status request), no ClOrdID went out twice as a new
order, no fill was booked twice, positions and cash are the start plus the
allocations, and the audit chain verifies.

Used by tests/chaos/test_chaos.py (CI: 20+ faults) and bench/chaos.py (1,000+).
The processes read and write the database Django is configured with, so the
caller sets up Django first (the test's database, or the bench's own).

Relies on the FIX simulator keeping its order book across restarts
(``--state PATH``), as a broker keeps its orders.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def simulator_keeps_its_book() -> bool:
    """Whether this checkout's FIX simulator takes --state (a book kept in a file)."""
    out = subprocess.run(
        [sys.executable, "-m", "trading.fix.simulator", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return "--state" in out.stdout


@dataclass
class Process:
    """One of the chain's processes, which the harness kills and starts again."""

    name: str
    argv: list[str]
    env: dict
    log: Path
    popen: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        out = self.log.open("ab")
        out.write(f"\n===== start {self.starts} =====\n".encode())
        out.flush()
        self.popen = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )
        out.close()

    def kill(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class ChaosResult:
    orders: int
    routes: int
    faults: Counter = field(default_factory=Counter)
    checks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        return {
            "orders": self.orders,
            "routes": self.routes,
            "faults": sum(self.faults.values()),
            "faults_by_process": dict(self.faults),
            "checks": self.checks,
            "problems": self.problems[:20],
            "seconds": round(self.seconds, 1),
        }


class Chaos:
    """The chain on real processes, with faults."""

    def __init__(self, workdir: Path, database_url: str, redis_url: str, seed: int = 11):
        from config.celery import worker_command

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(seed)
        self.port = free_port()
        env = os.environ | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PYTHONUNBUFFERED": "1",
            "OMS_CELERY_VISIBILITY_TIMEOUT": "20",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        prices = self.workdir / "prices.json"
        self.prices = prices
        python = sys.executable
        self.processes = {
            "worker": Process(
                "worker",
                worker_command(python, hostname=f"chaos-{os.getpid()}@%h"),
                env,
                self.workdir / "worker.log",
            ),
            "gateway": Process(
                "gateway",
                [python, "manage.py", "fix_gateway", "CHAOS", "--poll", "0.05"],
                env,
                self.workdir / "gateway.log",
            ),
            "simulator": Process(
                "simulator",
                [
                    python,
                    "-m",
                    "trading.fix.simulator",
                    "--port",
                    str(self.port),
                    "--session",
                    "FIX.4.4:OMS",
                    "--no-reset-on-logon",
                    "--store-dir",
                    str(self.workdir / "sim-store"),
                    "--state",
                    str(self.workdir / "sim-book.json"),
                    "--prices",
                    str(prices),
                    "--prices-reload",
                    "0.5",
                    "--partial-fills",
                    "2",
                    "--fill-interval-ms",
                    "100",
                ],
                env,
                self.workdir / "simulator.log",
            ),
        }

    # --- the book ------------------------------------------------------------------

    def set_up(self, accounts: int = 20, securities: int = 10):
        """Accounts with cash, securities with prices, the FIX broker CHAOS."""
        from django.contrib.auth.models import Group, User
        from django.utils import timezone

        from oms.roles import Role
        from portfolios.models import CashBalance, Portfolio, Price, Security
        from trading.models import Broker, FixSession

        pm = User.objects.create_user("chaos-pm")
        trader = User.objects.create_user("chaos-trader")
        pm.groups.add(Group.objects.get_or_create(name=Role.PORTFOLIO_MANAGER.value)[0])
        trader.groups.add(Group.objects.get_or_create(name=Role.TRADER.value)[0])
        self.pm, self.trader = pm, trader
        today = timezone.now().date()
        self.securities = []
        prices = {}
        for n in range(securities):
            security = Security.objects.create(
                ticker=f"CH{n:02d}", name=f"Chaos {n}", asset_class="equity", currency="USD"
            )
            Price.objects.create(security=security, as_of=today, price=Decimal(20 + n))
            prices[security.ticker] = str(20 + n)
            self.securities.append(security)
        self.prices.write_text(json.dumps(prices))
        self.accounts = []
        for n in range(accounts):
            account = Portfolio.objects.create(code=f"CHA{n:03d}", name=f"Chaos {n}", manager=pm)
            CashBalance.objects.create(portfolio=account, currency="USD", amount=Decimal(10**7))
            self.accounts.append(account)
        broker = Broker.objects.create(code="CHAOS", name="Chaos FIX broker", adapter="fix")
        FixSession.objects.create(
            broker=broker,
            sender_comp_id="OMS",
            target_comp_id="BROKER",
            port=self.port,
            heartbeat_interval=2,
        )
        self.broker = broker

    def release_and_route(self, orders: int, over_seconds: float = 0.0) -> int:
        """One order per account and security in turn, released in waves (each wave
        makes new blocks) and routed whole to CHAOS. Returns orders made."""
        from trading.models import Block
        from trading.services import orders as order_services
        from trading.services import routes as route_services

        made = 0
        waves = max(1, -(-orders // len(self.securities)))
        pause = over_seconds / waves if over_seconds else None
        while made < orders:
            wave = []
            for security in self.securities:
                if made >= orders:
                    break
                account = self.accounts[made % len(self.accounts)]
                order = order_services.order_create(
                    actor=self.pm,
                    portfolio=account,
                    security=security,
                    side="buy",
                    quantity=Decimal(self.rng.randint(1, 20) * 10),
                    time_in_force="gtc",  # the chaos runs across any close
                )
                wave.append(order.pk)
                made += 1
            order_services.orders_approve(actor=self.pm, order_ids=wave)
            order_services.orders_release(actor=self.pm, order_ids=wave)
            for block in Block.objects.filter(orders__pk__in=wave).distinct():
                route_services.route_create(
                    actor=self.trader, block_id=block.pk, broker=self.broker
                )
            # orders keep flowing while the faults are injected
            time.sleep(pause if pause is not None else self.rng.uniform(0.05, 0.3))
        return made

    # --- faults --------------------------------------------------------------------

    def start_all(self) -> None:
        self.processes["simulator"].start()
        time.sleep(1.0)
        self.processes["worker"].start()
        self.processes["gateway"].start()

    def inject(self, faults: int, result: ChaosResult, stop: threading.Event) -> None:
        """kill -9 a process chosen at random, start it again, repeat."""
        for _ in range(faults):
            if stop.is_set():
                return
            time.sleep(self.rng.uniform(0.5, 2.0))
            name = self.rng.choice(sorted(self.processes))
            process = self.processes[name]
            process.kill()
            result.faults[name] += 1
            time.sleep(self.rng.uniform(0.2, 1.5))
            process.start()

    # --- settling and checking ---------------------------------------------------------

    def settle(self, timeout: float) -> bool:
        """Sweep until every route has ended and every filled block is allocated."""
        from django.conf import settings

        from trading.models import Block, Route
        from trading.services import day_end
        from trading.services.routes import routes_resend_unsent

        settings.OMS_ROUTE_PENDING_SECONDS = 3.0
        settings.OMS_ROUTE_QUIET_SECONDS = 8.0
        settings.OMS_ROUTE_STATUS_TRIES = 1000
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            routes_resend_unsent(older_than_seconds=3)
            day_end.routes_sweep_status()
            open_routes = Route.objects.exclude(status__in=Route.TERMINAL_STATES).count()
            unallocated = Block.objects.exclude(status=Block.Status.ALLOCATED).count()
            if open_routes == 0 and unallocated == 0:
                return True
            time.sleep(1.0)
        return False

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop()

    def check(self, result: ChaosResult, start_cash: Decimal) -> None:
        """Every check, each problem naming its order or route."""
        from django.db.models import Count, Sum

        from audit.models import AuditEvent
        from audit.services import audit_seal, verify_audit_chain
        from portfolios.models import CashBalance, Position
        from trading.fix.codec import decode
        from trading.models import Allocation, Block, Execution, FixMessage, FixOutbox, Order, Route

        problems = result.problems
        routes = list(Route.objects.select_related("block"))
        result.routes = len(routes)
        for route in routes:
            if route.status not in Route.TERMINAL_STATES:
                problems.append(
                    f"route {route.cl_ord_id} (block #{route.block_id}) is {route.status}"
                )
        result.checks.append(f"{len(routes)} routes ended")

        # consistent with the broker: its last status answer says what we booked
        answers = {}
        fresh = Execution.objects.filter(exec_type="order_status", pk__gt=self.asked_after)
        for e in fresh.order_by("pk"):
            answers[e.route_id] = e
        for route in routes:
            if route.pk not in answers:
                problems.append(f"route {route.cl_ord_id}: the broker did not answer its status")
        for route in routes:
            answer = answers.get(route.pk)
            if answer is not None and answer.cumulative_quantity != route.filled_quantity:
                problems.append(
                    f"route {route.cl_ord_id}: broker says {answer.cumulative_quantity} filled, "
                    f"we booked {route.filled_quantity}"
                )
        result.checks.append(f"{len(answers)} routes agree with the broker's status answer")

        # no ClOrdID sent twice as a new order
        queued = Counter(FixOutbox.objects.filter(msg_type="D").values_list("route_id", flat=True))
        for route_id, n in queued.items():
            if n > 1:
                problems.append(f"route #{route_id} queued as a new order {n} times")
        sent = Counter()
        for raw in FixMessage.objects.values_list("raw", flat=True):
            msg = decode(bytes(raw))
            if msg.msg_type == "D":
                sent[msg.get(11)] += 1
        for cl_ord_id, n in sent.items():
            if n > 1:
                problems.append(f"ClOrdID {cl_ord_id} sent {n} times as a new order")
        result.checks.append(f"{sum(sent.values())} new orders sent, none twice")

        # no fill booked twice: each route's fills add up to what it filled
        fills = dict(
            Execution.objects.filter(exec_type="trade")
            .values("route_id")
            .annotate(q=Sum("last_quantity"), n=Count("id"))
            .values_list("route_id", "q")
        )
        for route in routes:
            if fills.get(route.pk, Decimal(0)) != route.filled_quantity:
                problems.append(
                    f"route {route.cl_ord_id}: fills add to {fills.get(route.pk)}, "
                    f"filled {route.filled_quantity}"
                )
            if route.filled_quantity > route.quantity:
                problems.append(f"route {route.cl_ord_id} overfilled")
        for block in Block.objects.all():
            total = sum((r.filled_quantity for r in routes if r.block_id == block.pk), Decimal(0))
            if total != block.filled_quantity or block.filled_quantity > block.quantity:
                problems.append(
                    f"block #{block.pk}: filled {block.filled_quantity}, routes {total}"
                )
            if block.status != Block.Status.ALLOCATED:
                problems.append(f"block #{block.pk} is {block.status}, not allocated")
        result.checks.append("no fill booked twice; block fills = route fills <= block")

        # positions and cash: the start plus the allocations
        booked = {}
        cash_out = {}
        for a in Allocation.objects.select_related("order"):
            key = (a.order.portfolio_id, a.order.security_id)
            booked[key] = booked.get(key, Decimal(0)) + a.quantity
            cash_out[a.order.portfolio_id] = (
                cash_out.get(a.order.portfolio_id, Decimal(0)) + a.net_amount
            )
        for p in Position.objects.all():
            if p.quantity != booked.get((p.portfolio_id, p.security_id), Decimal(0)):
                problems.append(f"account #{p.portfolio_id} {p.security_id}: position {p.quantity}")
        for c in CashBalance.objects.filter(currency="USD"):
            expected = start_cash - cash_out.get(c.portfolio_id, Decimal(0))
            if c.amount != expected:
                problems.append(f"account #{c.portfolio_id}: cash {c.amount}, expected {expected}")
        for order in Order.objects.exclude(status=Order.Status.ALLOCATED):
            problems.append(f"order #{order.pk} is {order.status}")
        result.checks.append("positions = start + allocations; cash = start - allocations (net)")

        # Seal what the run appended (no sealer process runs beside it), then verify the
        # whole trail: a chain of no events would verify vacuously.
        while audit_seal():
            pass
        report = verify_audit_chain()
        if not report.ok:
            problems.append(f"audit chain broken at event #{report.first_broken_id}")
        appended = AuditEvent.objects.count()
        if report.checked != appended or not appended:
            problems.append(
                f"audit chain covers {report.checked} of {appended} events "
                f"({report.awaiting} awaiting their seal)"
            )
        result.checks.append(f"audit chain of {report.checked} events verifies")

    def ask_everything(self, timeout: float) -> None:
        """Ask the broker the status of every route once more, and wait for answers."""
        from trading.brokers.fix import FixBroker
        from trading.models import Execution, FixSession, Route
        from trading.services.routes import route_ticket

        session = FixSession.objects.get(broker=self.broker)
        adapter = FixBroker(lambda r: None, session=session)
        routes = list(Route.objects.select_related("broker", "block__security"))
        # only answers to these requests count: earlier ones may be stale
        self.asked_after = (
            Execution.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        )
        for route in routes:
            adapter.status(route_ticket(route))

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answered = (
                Execution.objects.filter(exec_type="order_status", pk__gt=self.asked_after)
                .values("route_id")
                .distinct()
                .count()
            )
            if answered >= len(routes):
                return
            time.sleep(0.5)

    def run(self, *, orders: int, faults: int, settle_timeout: float = 240) -> ChaosResult:
        from django.db import connection

        started = time.monotonic()
        start_cash = Decimal(10**7)
        result = ChaosResult(orders=0, routes=0)
        self.start_all()
        stop = threading.Event()
        injector = threading.Thread(target=self.inject, args=(faults, result, stop))
        try:
            injector.start()
            # a fault takes about 1.6 s (0.5-2 s apart, 0.2-1.5 s down)
            result.orders = self.release_and_route(orders, over_seconds=faults * 1.6)
            injector.join()
            for process in self.processes.values():  # every one up again
                if process.popen is None or process.popen.poll() is not None:
                    process.start()
            if not self.settle(settle_timeout):
                result.problems.append("not settled in time")
            self.ask_everything(timeout=60)
            self.check(result, start_cash)
        finally:
            stop.set()
            injector.join()
            self.stop_all()
            connection.close()
            result.seconds = time.monotonic() - started
        return result
