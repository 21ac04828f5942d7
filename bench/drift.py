"""Benchmark: drift for a whole book, and loading that book from PostgreSQL.

    python bench/drift.py [--accounts 10000] [--positions 50] [--models 5]
                          [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Prints the time to compute drift for every account from frames already in memory
(target: at most 0.5 s for 10,000 accounts x 50 positions), then, with a PostgreSQL
server, writes the same book into a scratch database (oms_bench, dropped and made
again), and prints the time `portfolios.selectors.load_book` takes to read it back
as frames. Ends with one line of JSON holding the figures. Not a test.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portfolios.rebalance import compute_drift  # noqa: E402
from portfolios.rebalance.synthetic import synthetic_book  # noqa: E402


def best_of(runs: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def load_into_postgres(book, server_url: str) -> list[int]:
    """Make the scratch database, migrate it, and COPY the book in. Returns account ids."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS oms_bench")
        conn.execute("CREATE DATABASE oms_bench")
    bench_url = server_url.rsplit("/", 1)[0] + "/oms_bench"
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.contrib.auth import get_user_model

    manager = get_user_model().objects.create(username="bench-pm")
    secs = book.securities.reset_index(drop=True)
    with psycopg.connect(bench_url) as conn, conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")

        def copy(table: str, columns: str, rows) -> None:
            buffer = io.StringIO()
            for row in rows:
                buffer.write("\t".join(str(v) for v in row) + "\n")
            buffer.seek(0)
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy_:
                copy_.write(buffer.read())

        sec_pk = {sid: i + 1 for i, sid in enumerate(secs["security"])}
        copy(
            "portfolios_security",
            "id, ticker, name, asset_class, currency, isin, cusip, figi, sector, issuer, country, "
            "round_lot, min_quantity, tick_size, multiplier, fractional, is_active",
            (
                (
                    sec_pk[s],
                    s,
                    s,
                    "equity",
                    "USD",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    lot,
                    0,
                    "0.01",
                    1,
                    frac,
                    True,
                )
                for s, lot, frac in zip(
                    secs["security"], secs["lot"], secs["fractional"], strict=True
                )
            ),
        )
        today = time.strftime("%Y-%m-%d")
        copy(
            "portfolios_price",
            "security_id, as_of, price, source",
            (
                (sec_pk[s], today, p, "bench")
                for s, p in zip(secs["security"], secs["price"], strict=True)
            ),
        )
        cash_by_model = dict(zip(book.model_cash["model"], book.model_cash["cash"], strict=True))
        model_pk = {m: i + 1 for i, m in enumerate(cash_by_model)}
        copy(
            "portfolios_modelportfolio",
            "id, name, description, cash_weight, band_absolute, band_relative, created_at",
            ((pk, m, "", cash_by_model[m], 0.02, 0, "now()") for m, pk in model_pk.items()),
        )
        copy(
            "portfolios_modeltarget",
            "model_id, security_id, weight",
            (
                (model_pk[m], sec_pk[s], w)
                for m, s, w in zip(
                    book.models["model"],
                    book.models["security"],
                    book.models["weight"],
                    strict=True,
                )
            ),
        )
        accounts = book.accounts.reset_index(drop=True)
        acc_pk = {a: i + 1 for i, a in enumerate(accounts["account"])}
        copy(
            "portfolios_portfolio",
            "id, code, name, base_currency, manager_id, model_id, cash_floor, long_only, is_active, created_at",
            (
                (acc_pk[a], a, a, "USD", manager.pk, model_pk[m], 0, True, True, "now()")
                for a, m in zip(accounts["account"], accounts["model"], strict=True)
            ),
        )
        copy(
            "portfolios_cashbalance",
            "portfolio_id, currency, amount",
            (
                (acc_pk[a], "USD", round(c, 4))
                for a, c in zip(accounts["account"], accounts["cash"], strict=True)
            ),
        )
        holdings = book.holdings.groupby(["account", "security"], as_index=False)["quantity"].sum()
        copy(
            "portfolios_position",
            "portfolio_id, security_id, quantity",
            (
                (acc_pk[a], sec_pk[s], q)
                for a, s, q in zip(
                    holdings["account"], holdings["security"], holdings["quantity"], strict=True
                )
            ),
        )
        for table in ("portfolios_security", "portfolios_modelportfolio", "portfolios_portfolio"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        cur.execute("ANALYZE")
    return list(acc_pk.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--positions", type=int, default=50)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "OMS_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server (its maintenance database); 'none' skips the load figure",
    )
    args = parser.parse_args()

    book = synthetic_book(args.accounts, args.positions, args.models)
    compute_drift(book)  # warm-up: imports, allocator
    drift_s, result = best_of(args.runs, lambda: compute_drift(book))
    figures = {
        "accounts": args.accounts,
        "positions_per_account": args.positions,
        "models": args.models,
        "holdings_rows": len(book.holdings),
        "drift_seconds": round(drift_s, 4),
        "drift_target_seconds": 0.5,
        "accounts_out_of_band": int(result.accounts["out_of_band"].sum()),
    }
    print(
        f"drift for {args.accounts} accounts x {args.positions} positions: {drift_s * 1000:.1f} ms (best of {args.runs})"
    )

    if args.database_url.lower() != "none":
        try:
            start = time.perf_counter()
            account_ids = load_into_postgres(book, args.database_url)
            figures["postgres_setup_seconds"] = round(time.perf_counter() - start, 2)
        except Exception as exc:  # no server: say so, keep the in-memory figure
            print(f"PostgreSQL part skipped: {exc}")
        else:
            from portfolios.selectors import load_book

            load_s, loaded = best_of(3, lambda: load_book(account_ids).book)
            drift_loaded_s, _ = best_of(3, lambda: compute_drift(loaded))
            figures["load_from_postgres_seconds"] = round(load_s, 4)
            figures["drift_on_loaded_seconds"] = round(drift_loaded_s, 4)
            print(
                f"load_book from PostgreSQL ({len(loaded.holdings)} positions): {load_s:.3f} s (best of 3)"
            )
            print(f"drift on the loaded book: {drift_loaded_s * 1000:.1f} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
