"""Speed of the compliance rule engine on seeded synthetic books.

    python bench/compliance.py [--samples 2000] [--accounts 10000] [--orders 100000]
                               [--positions 50] [--repeat 3]

Section ``engine`` (the only one so far; pick sections with --sections):

- single order: p50/p99 of ``check`` for one order against a 500-position account with
  the 25-rule synthetic rule book (all twelve kinds), the book given as column mappings
  (what a service builds from database rows), results taken as records; and the same
  with the book as DataFrames. Each as wall-clock time and as the thread's CPU time
  (which leaves out the time other processes of a shared machine held the core).
- batch: one ``check`` of --orders orders across --accounts accounts (best of --repeat),
  from DataFrames, and the time to turn its results into frames.

Section ``service`` (``--sections service``): the single-order check through the
registered Django service on PostgreSQL (a scratch database), 25 rules, a
``--single-positions`` account, ``--service-samples`` orders; p50/p99 wall and CPU, and
the queries per check. ``--profile FILE`` writes a cProfile of the timed checks;
``--explain`` prints each statement of one check with PostgreSQL's planning and
execution times (EXPLAIN ANALYZE, rolled back).

Section ``service-batch``: the same rule book, then ONE check through the service of
one draft order (``--batch-orders``) in each of ``--batch-accounts`` accounts of
``--positions`` positions (a rebalance run's proposal), best of ``--repeat``: wall and
CPU time, the statements and the time spent in them, the verdicts by status.

Audit appends per second are in ``bench/audit.py``. Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compliance.rules import Book, check
from compliance.rules.synthetic import one_account, synthetic_book, synthetic_rules


def _columns(frame: pd.DataFrame | None):
    if frame is None:
        return None
    return {c: frame[c].to_numpy() for c in frame.columns}


def _percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def single_order(args) -> dict:
    """One order at a time against one account of ``--single-positions`` positions."""
    book = synthetic_book(
        n_accounts=1,
        positions=args.single_positions,
        n_orders=4 * args.samples,
        n_securities=max(2 * args.single_positions, 1000),
        seed=args.seed,
        live_per_account=5,
        sales_per_account=20,
    )
    rules, lists = synthetic_rules(book)
    account = book.accounts["account"].iloc[0]
    framed = one_account(book, account, book.orders.iloc[:0])
    # orders in the securities held and in 25 others: the book carries those securities
    # only, as a service loading one account's check would
    held = set(framed.holdings["security"]) | set(framed.live_orders["security"])
    others = [s for s in pd.unique(book.orders["security"]) if s not in held][:25]
    orders = book.orders[book.orders["security"].isin(held | set(others))].iloc[: args.samples]
    securities = book.securities
    framed.securities = securities[securities["security"].isin(held | set(others))].reset_index(
        drop=True
    )
    mapped = Book(
        securities=_columns(framed.securities),
        accounts=_columns(framed.accounts),
        holdings=_columns(framed.holdings),
        cash=_columns(framed.cash),
        fx={"EUR": 1.08, "GBP": 1.27},
        live_orders=_columns(framed.live_orders),
        sales=_columns(framed.sales),
        as_of=book.as_of,
    )
    rows = [orders.iloc[[i]].reset_index(drop=True) for i in range(len(orders))]
    mapped_rows = [_columns(r) for r in rows]

    def run(form: str) -> tuple[list[float], list[float], dict]:
        times = []
        cpu = []
        statuses: dict = {}
        for i in range(len(rows)):
            if form == "mapped":
                mapped.orders = mapped_rows[i]
                b = mapped
            else:
                framed.orders = rows[i]
                b = framed
            c0 = time.thread_time()
            t0 = time.perf_counter()
            result = check(b, rules, lists)
            stored = (
                result.records("orders"),
                result.records("order_results"),
                result.records("account_results"),
            )
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            status = stored[0][0]["status"]
            statuses[status] = statuses.get(status, 0) + 1
        return times, cpu, statuses

    run("mapped")  # warm up: imports, caches, first allocations
    gc.collect()
    mapped_times, mapped_cpu, statuses = run("mapped")
    gc.collect()
    framed_times, framed_cpu, _ = run("frames")
    out = {
        "positions": int(len(framed.holdings)),
        "securities": int(len(framed.securities)),
        "rules": len(rules),
        "samples": len(rows),
        "mapped": _percentiles(mapped_times),
        "mapped_cpu": _percentiles(mapped_cpu),
        "frames": _percentiles(framed_times),
        "frames_cpu": _percentiles(framed_cpu),
        "statuses": statuses,
    }
    print(f"single order, {out['positions']} positions, {len(rules)} rules, {len(rows)} orders:")
    for label, key in (
        ("column mappings, wall", "mapped"),
        ("column mappings, CPU ", "mapped_cpu"),
        ("DataFrames, wall     ", "frames"),
        ("DataFrames, CPU      ", "frames_cpu"),
    ):
        f = out[key]
        print(
            f"  {label}: p50 {f['p50_ms']:.3f} ms  p99 {f['p99_ms']:.3f} ms  "
            f"max {f['max_ms']:.3f} ms"
        )
    print(f"  statuses: {statuses}")
    return out


def batch(args) -> dict:
    """All the orders of a large rebalance run in one check."""
    t0 = time.perf_counter()
    book = synthetic_book(args.accounts, args.positions, args.orders, seed=args.seed)
    built = time.perf_counter() - t0
    rules, lists = synthetic_rules(book)
    print(
        f"batch: {args.accounts} accounts, {len(book.holdings)} holdings, "
        f"{len(book.orders)} orders, {len(book.live_orders)} live orders "
        f"(built in {built:.2f}s)"
    )
    best = best_frames = float("inf")
    result = None
    for _ in range(args.repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = check(book, rules, lists)
        t1 = time.perf_counter()
        _ = (result.orders, result.order_results, result.account_results)
        t2 = time.perf_counter()
        best = min(best, t1 - t0)
        best_frames = min(best_frames, t2 - t1)
    statuses = result.orders["status"].value_counts().to_dict()
    out = {
        "accounts": args.accounts,
        "orders": int(len(book.orders)),
        "holdings": int(len(book.holdings)),
        "rules": len(rules),
        "check_s": round(best, 3),
        "frames_s": round(best_frames, 3),
        "account_results": int(len(result.account_results)),
        "order_results": int(len(result.order_results)),
        "statuses": {k: int(v) for k, v in statuses.items()},
    }
    print(
        f"  check (best of {args.repeat}): {best:.3f}s; results as frames: {best_frames:.3f}s\n"
        f"  {out['account_results']} account results, {out['order_results']} order results; "
        f"statuses: {out['statuses']}"
    )
    return out


def engine(args) -> dict:
    return {"single_order": single_order(args), "batch": batch(args)}


SERVICE_SCRATCH = "oms_bench_compliance"


def service(args, batch: bool = False) -> dict:
    """The pre-trade check of one order through the service on PostgreSQL: the
    registered checker (``trading.pretrade.check``) with 25 active rules on an account
    of ``--single-positions`` positions, inside the transaction that locked the order,
    as ``orders_approve`` calls it: rules, book, one engine check, the results stored.
    Each sample is rolled back, so that every order is checked from the same book. A
    scratch database ``oms_bench_compliance`` is made on the server of
    ``--database-url`` and dropped at the end. ``batch`` (section ``service-batch``):
    the same rule book, then one check of all the orders of ``--batch-accounts``
    accounts instead (`_service_batch`)."""
    import random
    from decimal import Decimal

    import psycopg

    scratch = args.scratch_database
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {scratch}")
        conn.execute(f"CREATE DATABASE {scratch}")
    os.environ["DATABASE_URL"] = args.database_url.rsplit("/", 1)[0] + f"/{scratch}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-key-signs-nothing")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from compliance.models import PretradeResult
    from compliance.services.rules import restricted_list_create, rule_create
    from oms.roles import Role
    from portfolios.models import CashBalance, Portfolio, Position, Price, Security
    from trading import locks, pretrade
    from trading.models import Order

    call_command("migrate", verbosity=0)
    rng = random.Random(args.seed)
    User = get_user_model()
    officer = User.objects.create(username="officer")
    officer.groups.add(Group.objects.get_or_create(name=Role.COMPLIANCE.value)[0])
    pm = User.objects.create(username="pm")
    n = args.single_positions
    sectors = ["Tech", "Health", "Energy", "Financials", "Staples", "Utilities", "Materials"]
    Security.objects.bulk_create(
        Security(
            ticker=f"S{i:04d}",
            name=f"Security {i}",
            asset_class="equity" if i % 10 else "etf",
            currency="USD" if i % 4 else "EUR",
            sector=sectors[i % len(sectors)],
            issuer=f"Issuer {i // 3}",
            country="US" if i % 4 else "DE",
        )
        for i in range(n)
    )
    securities = list(Security.objects.order_by("pk"))
    today = timezone.localdate()
    Price.objects.bulk_create(
        Price(security=s, as_of=today, price=Decimal(rng.randint(10, 500))) for s in securities
    )
    from portfolios.models import FxRate

    FxRate.objects.create(currency="EUR", quote="USD", as_of=today, rate=Decimal("1.08"))
    account = Portfolio.objects.create(code="BIG", name="Big account", manager=pm)
    Position.objects.bulk_create(
        Position(portfolio=account, security=s, quantity=Decimal(rng.randint(10, 1000)))
        for s in securities
    )
    CashBalance.objects.create(portfolio=account, currency="USD", amount=Decimal(500_000))
    CashBalance.objects.create(portfolio=account, currency="EUR", amount=Decimal(50_000))
    restricted_list_create(actor=officer, name="firm", tickers=[s.ticker for s in securities[:20]])
    restricted_list_create(
        actor=officer, name="no_sell", tickers=[s.ticker for s in securities[20:40]]
    )
    restricted_list_create(
        actor=officer, name="sanctions", issuers=[f"Issuer {i}" for i in range(20, 30)]
    )
    specs = [
        ("max_weight", "hard", {"group_by": "security", "limit": 0.10}),
        ("max_weight", "soft", {"group_by": "issuer", "limit": 0.10}),
        ("max_weight", "soft", {"group_by": "sector", "limit": 0.30}),
        ("max_weight", "warning", {"group_by": "country", "limit": 0.60}),
        ("max_weight", "soft", {"group_by": "asset_class", "limit": 0.90}),
        ("max_weight", "warning", {"group_by": "currency", "limit": 0.80}),
        ("max_weight", "warning", {"group_by": "issuer", "limit": 0.05}),
        ("max_weight", "hard", {"group_by": "sector", "limit": 0.25}),
        ("min_cash", "soft", {"limit": 0.01}),
        ("min_cash", "hard", {"limit": 0.005}),
        ("no_overdraft", "hard", {}),
        ("no_short", "hard", {}),
        ("max_order_notional", "hard", {"limit": 1_000_000.0}),
        ("max_order_notional", "soft", {"limit": 250_000.0}),
        ("price_collar", "soft", {"limit": 0.05}),
        ("price_collar", "hard", {"limit": 0.10}),
        ("ucits_5_10_40", "hard", {}),
        ("diversified_fund", "hard", {}),
        ("wash_sale", "warning", {"days": 30}),
        ("duplicate_order", "soft", {"minutes": 5}),
        ("restricted", "hard", {"list": ["firm"]}),
        ("restricted", "soft", {"list": ["no_sell"], "sides": ["sell", "sell_short"]}),
        ("restricted", "hard", {"list": ["sanctions", "firm"], "sides": ["buy", "sell_short"]}),
        ("max_weight", "warning", {"group_by": "security", "limit": 0.05}),
        ("min_cash", "warning", {"limit": 0.02}),
    ]
    for i, (kind, severity, params) in enumerate(specs, 1):
        rule_create(actor=officer, name=f"R{i:02d}", kind=kind, params=params, severity=severity)
    if batch:
        try:
            return _service_batch(args, rng, pm, securities, len(specs))
        finally:
            connection.close()
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {scratch}")
    samples = args.service_samples
    Order.objects.bulk_create(
        Order(
            portfolio=account,
            security=rng.choice(securities),
            side="buy" if i % 3 else "sell",
            quantity=Decimal(rng.randint(1, 10)),
            created_by=pm,
        )
        for i in range(samples)
    )
    order_ids = list(Order.objects.order_by("pk").values_list("pk", flat=True))
    wall, cpu, queries = [], [], []
    from django.test.utils import CaptureQueriesContext

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    gc.disable()
    for k, pk in enumerate(order_ids):
        with transaction.atomic():
            orders = locks.lock_orders([pk])
            if k < 2:
                # the first check loads the rule book (kept per process and stamp), the
                # second is what every later one costs
                with CaptureQueriesContext(connection) as captured:
                    pretrade.check(orders, stage="approve", actor=pm)
                queries.append(len(captured))
                if k == 1 and args.explain:
                    _explain(connection, captured.captured_queries)
            else:
                if profiler is not None:
                    profiler.enable()
                t0, c0 = time.perf_counter(), time.thread_time()
                pretrade.check(orders, stage="approve", actor=pm)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
                if profiler is not None:
                    profiler.disable()
            stored = PretradeResult.objects.filter(order_id=pk).count()
            transaction.set_rollback(True)
    gc.enable()
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile of the timed checks written to {args.profile}")
    connection.close()
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {scratch}")
    out = {
        "positions": n,
        "rules": len(specs),
        "other_live_orders": samples - 1,
        "samples": len(wall),
        "queries_per_check": queries[1],
        "queries_first_check": queries[0],
        "results_stored_per_order": stored,
        "wall": _percentiles(wall),
        "cpu": _percentiles(cpu),
    }
    print(
        f"service, {n} positions, {len(specs)} rules, {samples - 1} other live orders, "
        f"{len(wall)} checks, {queries[1]} queries each ({queries[0]} the first):\n"
        f"  wall: p50 {out['wall']['p50_ms']} ms  p99 {out['wall']['p99_ms']} ms  "
        f"max {out['wall']['max_ms']} ms\n"
        f"  cpu:  p50 {out['cpu']['p50_ms']} ms  p99 {out['cpu']['p99_ms']} ms",
        flush=True,
    )
    return out


def _service_batch(args, rng, pm, securities, n_rules: int) -> dict:
    """One pre-trade check of the orders of ``--batch-accounts`` accounts at once (a
    rebalance run's proposal: ``trading.pretrade.check`` with stage ``proposal``), each
    account holding ``--positions`` of the securities, with cash in USD and EUR and
    ``--batch-orders`` draft orders; best of ``--repeat``, each rolled back. Prints the
    wall and CPU time, the statements, and the time the database's answers took
    (the client's wait included)."""
    from decimal import Decimal

    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from portfolios.models import CashBalance, Portfolio, Position
    from trading import pretrade
    from trading.models import Order

    n, per = args.batch_accounts, args.positions
    t0 = time.perf_counter()
    accounts = Portfolio.objects.bulk_create(
        (Portfolio(code=f"B{i:05d}", name=f"Batch {i}", manager=pm) for i in range(n)),
        batch_size=5000,
    )
    Position.objects.bulk_create(
        (
            Position(portfolio=a, security=s, quantity=Decimal(rng.randint(10, 1000)))
            for a in accounts
            for s in rng.sample(securities, per)
        ),
        batch_size=5000,
    )
    CashBalance.objects.bulk_create(
        (
            CashBalance(portfolio=a, currency=c, amount=Decimal(amount))
            for a in accounts
            for c, amount in (("USD", 200_000), ("EUR", 20_000))
        ),
        batch_size=5000,
    )
    Order.objects.bulk_create(
        (
            Order(
                portfolio=a,
                security=rng.choice(securities),
                side="buy" if k % 3 else "sell",
                quantity=Decimal(rng.randint(1, 10)),
                created_by=pm,
            )
            for a in accounts
            for k in range(args.batch_orders)
        ),
        batch_size=5000,
    )
    built = time.perf_counter() - t0
    orders = list(Order.objects.filter(portfolio__code__startswith="B").order_by("pk"))
    best = best_cpu = float("inf")
    statements = 0
    sql_s = 0.0
    for _ in range(args.repeat):
        gc.collect()
        with transaction.atomic():
            with CaptureQueriesContext(connection) as captured:
                c0, w0 = time.thread_time(), time.perf_counter()
                verdicts = pretrade.check(orders, stage="proposal", actor=pm)
                wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
            transaction.set_rollback(True)
        if wall < best:
            best, best_cpu = wall, cpu
            statements = len(captured)
            sql_s = sum(float(q["time"]) for q in captured.captured_queries)
    statuses: dict = {}
    for v in verdicts.values():
        statuses[v.status] = statuses.get(v.status, 0) + 1
    out = {
        "accounts": n,
        "positions_per_account": per,
        "orders": len(orders),
        "rules": n_rules,
        "check_s": round(best, 3),
        "cpu_s": round(best_cpu, 3),
        "statements": statements,
        "statements_s": round(sql_s, 3),
        "statuses": statuses,
    }
    print(
        f"service batch, {n} accounts of {per} positions, {len(orders)} orders, {n_rules} rules"
        f" (built in {built:.1f}s):\n  check (best of {args.repeat}): {best:.3f}s wall,"
        f" {best_cpu:.3f}s CPU; {statements} statements, {sql_s:.3f}s in them;"
        f" statuses {statuses}",
        flush=True,
    )
    return out


def _explain(connection, captured: list[dict]) -> None:
    """Each statement of one check, with the database's own time for it (EXPLAIN
    ANALYZE, run again on the same rows in a savepoint that is rolled back)."""
    from django.db import transaction

    print("statements of one check (EXPLAIN ANALYZE: planning + execution):")
    # a round trip of several statements (oms.bulk.read_together) is explained one by one
    for sql in (part for q in captured for part in q["sql"].split("; ")):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            [plan] = cursor.fetchone()[0]
            transaction.set_rollback(True)
        print(f"  {plan['Planning Time']:.3f} + {plan['Execution Time']:.3f} ms: {sql[:150]}")


# further sections (audit appends, chain verification) go here
SECTIONS = {
    "engine": engine,
    "service": service,
    "service-batch": lambda args: service(args, batch=True),
}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", nargs="+", default=["engine"], choices=sorted(SECTIONS))
    ap.add_argument("--samples", type=int, default=2000, help="single orders timed")
    ap.add_argument("--single-positions", type=int, default=500)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--positions", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--batch-accounts", type=int, default=10_000, help="accounts checked (service-batch)"
    )
    ap.add_argument(
        "--batch-orders", type=int, default=1, help="orders per account (service-batch)"
    )
    ap.add_argument("--service-samples", type=int, default=300, help="orders checked (service)")
    ap.add_argument(
        "--scratch-database",
        default=SERVICE_SCRATCH,
        help="service section: the scratch database made and dropped on that server",
    )
    ap.add_argument(
        "--database-url",
        default=os.environ.get(
            "OMS_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="service section: a PostgreSQL server (its maintenance database), as a superuser",
    )
    ap.add_argument(
        "--profile", metavar="FILE", help="service section: cProfile the timed checks into FILE"
    )
    ap.add_argument(
        "--explain",
        action="store_true",
        help="service section: print each statement of one check with EXPLAIN ANALYZE's times",
    )
    args = ap.parse_args(argv)
    figures: dict = {
        "bench": "compliance",
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    for name in args.sections:
        figures[name] = SECTIONS[name](args)
    figures["load_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
