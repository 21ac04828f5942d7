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

Service-level figures (the check through the Django service on PostgreSQL, audit appends
per second, chain verification speed) belong in further sections added here behind their
own names in SECTIONS; none is measured yet. Ends with one line of JSON.
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


# further sections (service on PostgreSQL, audit appends, chain verification) go here
SECTIONS = {"engine": engine}


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
