"""Speed of the rebalance engine on a seeded synthetic book.

    python bench/rebalance_engine.py [--accounts 10000] [--positions 50] [--repeat 3]

Prints the time of compute_drift and of a full rebalance (best of --repeat runs), the
peak memory traced during one rebalance, and ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portfolios.rebalance import Options, compute_drift, rebalance
from portfolios.rebalance.synthetic import synthetic_book


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=50)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--securities", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--options", default="{}", help="engine Options as JSON")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    book = synthetic_book(args.accounts, args.positions, args.models, args.securities, args.seed)
    build = time.perf_counter() - t0
    opts = Options(**json.loads(args.options))
    rows = len(book.holdings)
    print(f"book: {args.accounts} accounts, {rows} holdings, built in {build:.2f}s")

    drift_s = best_of(lambda: compute_drift(book, opts), args.repeat)
    print(f"compute_drift: {drift_s:.3f}s")
    result = {}

    def run():
        result["r"] = rebalance(book, opts)

    full_s = best_of(run, args.repeat)
    res = result["r"]
    print(f"rebalance:     {full_s:.3f}s")

    tracemalloc.start()
    rebalance(book, opts)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_mb = peak / 2**20
    print(f"peak traced memory during rebalance: {peak_mb:.0f} MiB")
    acc = res.accounts
    figures = {
        "bench": "rebalance_engine",
        "accounts": args.accounts,
        "positions": args.positions,
        "holdings": rows,
        "cpus": os.cpu_count(),
        "drift_s": round(drift_s, 4),
        "rebalance_s": round(full_s, 4),
        "peak_mib": round(peak_mb, 1),
        "trades": len(res.trades),
        "skipped": len(res.skipped),
        "mean_drift_before": round(float(acc["drift_before"].mean()), 5),
        "mean_drift_after": round(float(acc["drift_after"].mean()), 5),
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
