"""A rebalance run over a whole synthetic book in PostgreSQL, step by step.

    DATABASE_URL=postgres://.../oms_book SECRET_KEY=... \\
        python bench/rebalance_run.py [--accounts 10000] [--positions 50] [--chunk 0]

Builds (once, in a child process, kept for the next time) a synthetic book of
--accounts accounts holding about --positions securities each (one tax lot per
position), 5 models of about 100 securities, then times:

- the stages of the run, each measured inside it (wall time, and the bench process's
  CPU time beside it: the rest of a stage's wall time is PostgreSQL's, or waiting for a
  core): start (the run and its accounts written, `_run_open`), load (the projected
  book, `load_projected_book`), restrictions (restricted lists and wash sales), engine
  (`portfolios.rebalance.rebalance`), proposals (the engine's trades as proposed
  orders), persist (`run_orders_create`: COPY, the batch's terms checked, one audit
  event), check (the pre-trade check on the batch and its verdicts kept), summary (the
  run's what-if per account built and written), commit (the chunk's COMMIT: PostgreSQL
  checking the new rows' keys), and other (the rest: claims, cash flows, progress);
- run: the whole run, from `rebalance_run_create` to a proposed run with its orders
  in the database;
- approve: `rebalance_run_approve` of the whole proposal;
- naive: `order_create` one order at a time (each with its own audit event) on a
  sample of the run's trades, extrapolated to all of them, and its ratio to the run.

Peak memory is the process's peak resident set (the book was built in a child). The
drift dashboard's p95 over the same book is measured by `bench/drift_dashboard.py`.

With ``--workers N`` the run is not computed in this process but chunked on Celery as
production runs it: N real worker processes (``celery worker --concurrency 1`` each,
on PostgreSQL and the Redis of REDIS_URL) take the chunks from the `rebalance` queue,
this process only asks for the run and watches it, sampling each worker's resident
set (its pool process, which computes the chunks) as the chunks go by. It prints the
rate (accounts and orders a second, request to proposed) and each process's memory
after its first chunk, at its peak and at the end, and whether it stayed flat (the
peak of the run's last half no higher than that of its first half plus 10%, and under
2 GiB). When no chunk ends for ``--stall`` seconds (the chunks' tasks were lost: a
broker flushed or restarted, a worker killed), the bench recovers the run as Celery
beat's sweep would (`rebalance_runs_recover`: its pending chunks sent again), says so
and counts them (``chunks_reissued``). The approval and the naive way are not timed in
this mode:

    DATABASE_URL=postgres://.../oms_book100k REDIS_URL=redis://.../N SECRET_KEY=... \\
        python bench/rebalance_run.py --accounts 100000 --workers 2

Ends with one line of JSON. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PREFIX = "RB"  # the bench's accounts, models and securities are named with it
#: The run's stages, in the order a chunk goes through them.
STAGES = {
    "start": "the run and its accounts written",
    "load": "the projected book read",
    "restrictions": "restricted lists and wash sales",
    "engine": "the rebalance",
    "proposals": "the engine's trades as proposed orders",
    "persist": "COPY of the orders, their terms checked, one audit event",
    "check": "the pre-trade check on the batch + verdicts kept",
    "summary": "the what-if per account built and written on the run",
    "commit": "COMMIT (PostgreSQL checking the new rows' keys)",
    "other": "the rest (claims, cash flows, progress, reads of the run)",
}


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def build(accounts: int, positions: int, seed: int) -> None:
    """Write the synthetic book into the database with COPY (run in a child process)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from oms.roles import Role
    from portfolios.models import ModelPortfolio, Portfolio, Security
    from portfolios.rebalance.synthetic import synthetic_book

    call_command("migrate", verbosity=0)
    book = synthetic_book(accounts, positions, 5, 100, seed)
    today = timezone.now().date()
    user, _ = get_user_model().objects.get_or_create(username=f"{PREFIX.lower()}-pm")
    user.groups.add(Group.objects.get_or_create(name=Role.PORTFOLIO_MANAGER.value)[0])
    with transaction.atomic(), connection.cursor() as cursor:
        secs = book.securities
        for row in secs.itertuples(index=False):
            Security.objects.get_or_create(
                ticker=f"{PREFIX}{row.security}",
                defaults={
                    "name": f"Bench {row.security}",
                    "asset_class": "equity",
                    "currency": "USD",
                    "round_lot": row.lot,
                    "min_quantity": 0,
                    "fractional": bool(row.fractional),
                    "tick_size": "0.01",
                },
            )
        sec_pk = {
            t[len(PREFIX) :]: pk
            for t, pk in Security.objects.filter(ticker__startswith=PREFIX).values_list(
                "ticker", "pk"
            )
        }
        price_of = dict(zip(secs["security"], secs["price"], strict=True))
        cursor.execute(
            "DELETE FROM portfolios_price WHERE security_id = ANY(%s) AND as_of = %s",
            [list(sec_pk.values()), today],
        )
        _copy(
            cursor,
            "portfolios_price",
            ["security_id", "as_of", "price", "source"],
            [(sec_pk[s], today, f"{price_of[s]:.2f}", "bench") for s in secs["security"]],
        )
        cash_of = dict(zip(book.model_cash["model"], book.model_cash["cash"], strict=True))
        model_pk = {}
        for model in sorted(cash_of):
            obj, _ = ModelPortfolio.objects.get_or_create(
                name=f"{PREFIX} {model}",
                defaults={"cash_weight": f"{cash_of[model]:.6f}", "band_absolute": "0.01"},
            )
            model_pk[model] = obj.pk
            obj.targets.all().delete()
        _copy(
            cursor,
            "portfolios_modeltarget",
            ["model_id", "security_id", "weight"],
            [
                (model_pk[m], sec_pk[s], f"{w:.6f}")
                for m, s, w in book.models[["model", "security", "weight"]].itertuples(index=False)
            ],
        )
        now = timezone.now().isoformat()
        accts = book.accounts
        _copy(
            cursor,
            "portfolios_portfolio",
            [
                "code",
                "name",
                "base_currency",
                "manager_id",
                "model_id",
                "cash_floor",
                "long_only",
                "is_active",
                "created_at",
            ],
            [
                (
                    f"{PREFIX}{a}",
                    f"Bench {a}",
                    "USD",
                    user.pk,
                    model_pk[m],
                    f"{f:.2f}",
                    "t",
                    "t",
                    now,
                )
                for a, m, f in accts[["account", "model", "cash_floor"]].itertuples(index=False)
            ],
        )
        acct_pk = {
            c[len(PREFIX) :]: pk
            for c, pk in Portfolio.objects.filter(code__startswith=PREFIX).values_list("code", "pk")
        }
        _copy(
            cursor,
            "portfolios_cashbalance",
            ["portfolio_id", "currency", "amount"],
            [
                (acct_pk[a], "USD", f"{c:.2f}")
                for a, c in accts[["account", "cash"]].itertuples(index=False)
            ],
        )
        holdings = book.holdings.groupby(["account", "security"], as_index=False)["quantity"].sum()
        rows = list(holdings.itertuples(index=False))
        _copy(
            cursor,
            "portfolios_position",
            ["portfolio_id", "security_id", "quantity"],
            [(acct_pk[a], sec_pk[s], f"{q:.6f}") for a, s, q in rows],
        )
        acquired = today - timedelta(days=400)
        _copy(
            cursor,
            "portfolios_taxlot",
            [
                "portfolio_id",
                "security_id",
                "quantity",
                "original_quantity",
                "unit_cost",
                "acquired_on",
            ],
            [
                (
                    acct_pk[a],
                    sec_pk[s],
                    f"{q:.6f}",
                    f"{q:.6f}",
                    f"{price_of[s] * 0.9:.4f}",
                    acquired,
                )
                for a, s, q in rows
            ],
        )
    print(f"built: {len(acct_pk)} accounts, {len(rows)} positions and tax lots")


def ensure_book(ap: argparse.ArgumentParser, accounts: int, build_args: list[str]) -> None:
    """Migrate, then build the book of `accounts` accounts in a child process (its
    `build_args` are this script's) unless the database holds it already; a database
    that holds part of one is refused. The drift dashboard's bench builds it here too."""
    from django.core.management import call_command

    from portfolios.models import Portfolio

    call_command("migrate", verbosity=0)
    have = Portfolio.objects.filter(code__startswith=PREFIX).count()
    if have >= accounts:
        return
    if have:
        ap.error(f"the database holds {have} bench accounts: use a fresh database")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--build", *build_args], check=True)
    print(f"book built in {time.perf_counter() - t0:.1f}s (child process)")


def measure(args) -> dict:
    from django.conf import settings
    from django.db import connection

    from orchestration import services
    from portfolios.models import Portfolio, RebalanceRun
    from trading.models import Side
    from trading.services.orders import order_create

    settings.OMS_REBALANCE_INLINE_LIMIT = 10**9  # the whole run in this process
    from django.contrib.auth import get_user_model

    pm = get_user_model().objects.get(username=f"{PREFIX.lower()}-pm")
    accounts = list(
        Portfolio.objects.filter(code__startswith=PREFIX).order_by("pk")[: args.accounts]
    )
    # A run of an earlier bench still holds the accounts: cancel it.
    for run in RebalanceRun.objects.filter(
        status__in=RebalanceRun.OPEN_STATES, created_by=pm
    ).order_by("pk"):
        services.rebalance_run_cancel(actor=pm, run_id=run.pk)

    spent: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    inside: list[str] = []  # the stage being timed (a stage inside another counts once)

    def timed(name, fn):
        def wrapper(*a, **k):
            if inside:
                return fn(*a, **k)
            inside.append(name)
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0
                cpu[name] += time.process_time() - c0
                inside.pop()

        return wrapper

    services._run_open = timed("start", services._run_open)
    services.load_projected_book = timed("load", services.load_projected_book)
    services.rebalance_restrictions_for = timed("restrictions", services.rebalance_restrictions_for)
    services._wash_sale_restrictions = timed("restrictions", services._wash_sale_restrictions)
    services.rebalance = timed("engine", services.rebalance)
    services._proposals = timed("proposals", services._proposals)
    services.run_orders_create = timed("persist", services.run_orders_create)
    services.pretrade.check = timed("check", services.pretrade.check)
    services._store_verdicts = timed("check", services._store_verdicts)
    services._chunk_summary_store = timed("summary", services._chunk_summary_store)
    connection._commit = timed("commit", connection._commit)

    t0, c0 = time.perf_counter(), time.process_time()
    run = services.rebalance_run_create(
        actor=pm, portfolios=accounts, chunk_size=args.chunk or len(accounts)
    )
    whole, whole_cpu = time.perf_counter() - t0, time.process_time() - c0
    spent["other"] = whole - sum(spent.values())
    cpu["other"] = whole_cpu - sum(cpu.values())
    del connection._commit  # the approval and the naive way commit untimed
    if run.status != RebalanceRun.Status.PROPOSED:
        raise SystemExit(f"the run did not propose: {run.status} {run.error}")
    orders = run.orders_proposed

    t2 = time.perf_counter()
    services.rebalance_run_approve(actor=pm, run_id=run.pk)
    approve = time.perf_counter() - t2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # The naive way: one order_create per order (each its own transaction and event).
    sample = list(
        run.orders.select_related("portfolio", "security").filter(side=Side.BUY)[: args.naive]
    )
    t3 = time.perf_counter()
    for order in sample:
        order_create(
            actor=pm,
            portfolio=order.portfolio,
            security=order.security,
            side=Side.BUY,
            quantity=order.quantity,
            estimated_price=order.estimated_price,
            notes="bench: the naive way",
        )
    naive_each = (time.perf_counter() - t3) / max(len(sample), 1)
    naive = naive_each * orders
    services.rebalance_run_cancel(actor=pm, run_id=run.pk)  # free the accounts again
    return {
        "accounts": len(accounts),
        "orders": orders,
        "chunks": run.chunks_total,
        **{f"{stage}_s": round(spent[stage], 3) for stage in STAGES},
        "stages_cpu_s": {stage: round(cpu[stage], 3) for stage in STAGES},
        "run_s": round(whole, 3),
        "run_cpu_s": round(whole_cpu, 3),
        "loadavg": _loadavg(),
        "approve_s": round(approve, 3),
        "peak_rss_mib": round(peak, 1),
        "naive_per_order_ms": round(naive_each * 1000, 3),
        "naive_sample": len(sample),
        "naive_extrapolated_s": round(naive, 1),
        "ratio": round(naive / whole, 1),
    }


def _rss_mib(pid: int) -> float | None:
    """The resident set of a process now (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def measure_workers(args) -> dict:
    """The run chunked on `args.workers` real Celery worker processes (see the module's
    docstring): its rate and each worker process's memory as the chunks go by."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from config.celery import app, worker_command
    from orchestration import services
    from portfolios.models import Portfolio, RebalanceRun

    if not os.environ.get("REDIS_URL"):
        raise SystemExit("--workers needs REDIS_URL (the workers' broker)")
    pm = get_user_model().objects.get(username=f"{PREFIX.lower()}-pm")
    for run in RebalanceRun.objects.filter(
        status__in=RebalanceRun.OPEN_STATES, created_by=pm
    ).order_by("pk"):
        services.rebalance_run_cancel(actor=pm, run_id=run.pk)
    accounts = list(
        Portfolio.objects.filter(code__startswith=PREFIX).order_by("pk")[: args.accounts]
    )
    with app.connection_for_write() as conn:
        for queue in settings.OMS_QUEUES:
            conn.default_channel.queue_purge(queue)
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"rebalance-run-workers-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    workers = []
    for n in range(args.workers):
        out = (logs / f"worker{n}.log").open("ab")
        argv = worker_command(
            sys.executable, concurrency=1, hostname=f"rebalance{n}-{os.getpid()}@%h"
        )
        workers.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out))
        out.close()
    # stopped (SIGTERM), the bench still stops its workers (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # every pool process (the one that computes chunks) and its samples: (chunks done, MiB)
    samples: dict[int, list[tuple[int, float]]] = {}
    owner: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 120
        while len(app.control.ping(timeout=1.0)) < args.workers:
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise SystemExit(f"the workers did not start: see {logs}")
        settings.OMS_REBALANCE_INLINE_LIMIT = 0  # on the workers, however small
        size = args.chunk or services.DEFAULT_CHUNK_SIZE
        t0 = time.perf_counter()
        run = services.rebalance_run_create(actor=pm, portfolios=accounts, chunk_size=size)
        asked = time.perf_counter() - t0
        last_print = 0.0
        progress = (-1, 0.0)  # accounts done, when they last moved
        recovered = 0  # chunks the recovery sent to the workers again
        while True:
            run = RebalanceRun.objects.defer("summary", "skipped").get(pk=run.pk)
            if run.accounts_done != progress[0]:
                progress = (run.accounts_done, time.perf_counter())
            elif time.perf_counter() - progress[1] > args.stall:
                # the chunks' tasks were lost (a broker flushed or restarted, a worker
                # killed): the recovery the beat runs, at once, sends them again
                before = run.reissues.count()
                done = services.rebalance_runs_recover(stalled_for=args.stall)
                again = run.reissues.count() - before
                print(
                    f"  no chunk finished in {args.stall:.0f} s ({run.accounts_done} accounts "
                    f"done): recovered, {again} chunk(s) sent to the workers again "
                    f"{done}; see {logs}",
                    flush=True,
                )
                recovered += again
                progress = (run.accounts_done, time.perf_counter())
            chunks = run.accounts_done // size
            for n, worker in enumerate(workers):
                for pid in [worker.pid, *_children(worker.pid)]:
                    rss = _rss_mib(pid)
                    if rss is not None:
                        samples.setdefault(pid, []).append((chunks, rss))
                        owner[pid] = n
            elapsed = time.perf_counter() - t0
            if run.status not in (RebalanceRun.Status.DRAFT, RebalanceRun.Status.RUNNING):
                break
            if elapsed - last_print >= 10:
                last_print = elapsed
                print(
                    f"  {elapsed:6.1f} s: {run.accounts_done} accounts done, "
                    f"{run.orders_proposed} orders, load {_loadavg()}",
                    flush=True,
                )
            if elapsed > args.timeout:
                raise SystemExit(f"the run did not finish in {args.timeout} s")
            time.sleep(0.5)
        whole = time.perf_counter() - t0
        if run.status != RebalanceRun.Status.PROPOSED:
            raise SystemExit(f"the run did not propose: {run.status} {run.error}")
        computed = (run.finished_at - run.started_at).total_seconds()
        loadavg = _loadavg()
        services.rebalance_run_cancel(actor=pm, run_id=run.pk)  # free the accounts again
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    half = run.chunks_total / 2
    processes = []
    for pid, rows in sorted(samples.items()):
        after_first = [mib for chunks, mib in rows if chunks >= 1] or [rows[-1][1]]
        first_half = [mib for chunks, mib in rows if 1 <= chunks < half] or after_first
        second_half = [mib for chunks, mib in rows if chunks >= half] or after_first
        processes.append(
            {
                "worker": owner[pid],
                "pid": pid,
                "role": "main" if pid in {w.pid for w in workers} else "pool",
                "after_first_chunk_mib": round(after_first[0], 1),
                "peak_first_half_mib": round(max(first_half), 1),
                "peak_second_half_mib": round(max(second_half), 1),
                "peak_mib": round(max(mib for _, mib in rows), 1),
                "end_mib": round(rows[-1][1], 1),
                "flat": max(second_half) <= max(first_half) * 1.10
                and max(mib for _, mib in rows) <= 2048,
            }
        )
    return {
        "mode": "workers",
        "workers": args.workers,
        "accounts": len(accounts),
        "orders": run.orders_proposed,
        "skipped": run.accounts_skipped,
        "chunks": run.chunks_total,
        "chunk_size": size,
        "chunks_reissued": recovered,
        "request_s": round(asked, 3),
        "run_s": round(whole, 1),
        "computed_s": round(computed, 1),
        "accounts_per_s": round(len(accounts) / whole, 1),
        "orders_per_s": round(run.orders_proposed / whole, 1),
        "loadavg": loadavg,
        "processes": processes,
        "memory_flat": all(p["flat"] for p in processes),
        "logs": str(logs),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--chunk", type=int, default=0, help="accounts per chunk (0: one chunk)")
    ap.add_argument("--naive", type=int, default=200, help="orders created the naive way")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="chunk the run on this many real Celery worker processes (0: in this process)",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds the workers' run may take")
    ap.add_argument(
        "--stall",
        type=float,
        default=300,
        help="when no chunk ends for this long, send the run's pending chunks again "
        "(the recovery beat runs; a chunk sent again 3 times fails the run)",
    )
    ap.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        ap.error("set DATABASE_URL to a PostgreSQL database (the bench adds its book to it)")
    _setup()
    if args.build:
        build(args.accounts, args.positions, args.seed)
        return 0
    ensure_book(ap, args.accounts, argv or sys.argv[1:])
    before_load = _loadavg()
    if args.workers:
        figures = measure_workers(args)
        print(
            f"accounts {figures['accounts']}, orders proposed {figures['orders']}, "
            f"{figures['chunks']} chunks of {figures['chunk_size']} on {args.workers} workers"
        )
        print(f"  load average {figures['loadavg']} (before {before_load})")
        print(
            f"  run      {figures['run_s']:8.1f} s  request -> proposed "
            f"({figures['computed_s']:.1f} s from the first chunk's start)"
        )
        print(
            f"  rate     {figures['accounts_per_s']:8.1f} accounts/s, "
            f"{figures['orders_per_s']:.1f} orders/s"
        )
        for p in figures["processes"]:
            print(
                f"  worker {p['worker']} {p['role']:<4} pid {p['pid']}: "
                f"{p['after_first_chunk_mib']:.0f} MiB after its first chunk, peak "
                f"{p['peak_first_half_mib']:.0f} / {p['peak_second_half_mib']:.0f} MiB in "
                f"the run's first / second half, {p['end_mib']:.0f} MiB at the end"
                f" ({'flat' if p['flat'] else 'NOT flat'})"
            )
        print(json.dumps(figures))
        return 0
    figures = measure(args)
    print(f"accounts {figures['accounts']}, orders proposed {figures['orders']}")
    print(f"  load average {figures['loadavg']} (before {before_load})")
    for stage in STAGES:
        print(
            f"  {stage:<12} {figures[stage + '_s']:7.3f} s"
            f"  (CPU here {figures['stages_cpu_s'][stage]:6.3f} s)  {STAGES[stage]}"
        )
    print(
        f"  run          {figures['run_s']:7.3f} s  (CPU here {figures['run_cpu_s']:6.3f} s)"
        "  request -> proposed, orders in the database"
    )
    print(f"  approve  {figures['approve_s']:8.3f} s  the whole proposal, one action")
    print(f"  peak RSS {figures['peak_rss_mib']:8.1f} MiB")
    print(
        f"  naive    {figures['naive_per_order_ms']:.2f} ms/order on {figures['naive_sample']}"
        f" orders -> {figures['naive_extrapolated_s']:.0f} s for the run; ratio {figures['ratio']}x"
    )
    print("  drift dashboard p95: see bench/drift_dashboard.py (same book)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
