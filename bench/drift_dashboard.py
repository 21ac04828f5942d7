"""The drift dashboard's first page over a whole synthetic book, under concurrent clients.

    DATABASE_URL=postgres://.../oms_book [SECRET_KEY=...] \\
        python bench/drift_dashboard.py [--accounts 10000] [--clients 16] [--requests 40]

Builds the synthetic book of bench/rebalance_run.py (once, kept: --accounts accounts of
about --positions securities each, 5 models of about 100 securities), times the bulk
refresh of the stored drift of every account (`drift_refresh`), then starts the web
application under gunicorn (--workers processes) and has --clients threads ask for the
dashboard's first page (`/portfolios/drift/`, sorted by drift, totals and histogram
included) as the book's portfolio manager, --requests times each: first the same page
(what managers watching and the page's poll see: the rendered results are cached by
user, query and the figures' version), then cold (each request a query of its own, so
nothing is reused). Prints the latency percentiles and the rate (target: p95 <= 200 ms
for 10,000 accounts and 16 clients), and ends with one line of JSON. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the web server did not start")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=50)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=40, help="per client")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    args = ap.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        ap.error("set DATABASE_URL to a PostgreSQL database (the bench adds its book to it)")
    os.environ.setdefault("SECRET_KEY", "bench-drift-dashboard-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test import Client

    from bench.rebalance_run import PREFIX, ensure_book
    from portfolios.models import Portfolio
    from portfolios.services.drift import drift_refresh

    build_args = ["--accounts", str(args.accounts), "--positions", str(args.positions)]
    ensure_book(ap, args.accounts, build_args)
    accounts = Portfolio.objects.filter(code__startswith=PREFIX, is_active=True)
    ids = list(accounts.values_list("pk", flat=True))
    t0 = time.perf_counter()
    refreshed = drift_refresh(portfolio_ids=ids)
    refresh_s = time.perf_counter() - t0
    from django.db import connection

    with connection.cursor() as cursor:  # a book just COPYed in has no statistics yet
        cursor.execute("ANALYZE")
    manager = accounts.first().manager
    client = Client()
    client.force_login(manager)
    cookie = f"sessionid={client.cookies['sessionid'].value}"  # and csrftoken, below

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
        + ["--bind", f"127.0.0.1:{port}", "--workers", str(args.workers)]
        + ["--log-level", "warning"],
        cwd=ROOT,
        # The pages' assets by name (no collectstatic manifest needed for the HTML).
        env=os.environ.copy()
        | {"STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    )
    failures: list[str] = []
    counter = itertools.count()
    lock = threading.Lock()
    try:
        _wait(port)

        def one(conn, cold: bool = False) -> float:
            # cold: a query of its own each time (an ignored parameter), so that nothing
            # rendered or totalled for an earlier request is reused
            path = f"/portfolios/drift/?n={next(counter)}" if cold else "/portfolios/drift/"
            start = time.perf_counter()
            conn.request("GET", path, headers={"Cookie": cookie})
            response = conn.getresponse()
            body = response.read()
            took = time.perf_counter() - start
            if response.status != 200 or b"drift-table" not in body:
                with lock:
                    failures.append(str(response.status))
            return took

        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        warm.request("GET", "/portfolios/drift/", headers={"Cookie": cookie})
        first = warm.getresponse()
        first.read()
        # as a browser does: send back the CSRF cookie the first page set (the page
        # carries its token, so an answer is kept per browser: see drift_views)
        csrf = next(
            (
                value.split(";", 1)[0]
                for name, value in first.getheaders()
                if name.lower() == "set-cookie" and value.startswith("csrftoken=")
            ),
            None,
        )
        if csrf:
            cookie = f"{cookie}; {csrf}"
        for _ in range(args.workers * 2):
            one(warm)
        warm.close()

        def run(cold: bool) -> tuple[list[float], float]:
            seen: list[float] = []

            def client_loop() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                mine = [one(conn, cold) for _ in range(args.requests)]
                conn.close()
                with lock:
                    seen.extend(mine)

            threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return seen, time.perf_counter() - t0

        solo = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        serial = [one(solo) for _ in range(args.requests)]
        solo.close()
        latencies, wall = run(cold=False)
        cold, cold_wall = run(cold=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = {
        "accounts": len(ids),
        "refresh_s": round(refresh_s, 3),
        "refresh_chunks": refreshed.chunks,
        "clients": args.clients,
        "requests": len(latencies),
        "failures": len(failures),
        "workers": args.workers,
        "dashboard_p50_ms": round(_percentile(latencies, 50) * 1000, 1),
        "dashboard_p95_ms": round(_percentile(latencies, 95) * 1000, 1),
        "dashboard_max_ms": round(max(latencies) * 1000, 1),
        "requests_per_s": round(len(latencies) / wall, 1),
        "serial_p50_ms": round(_percentile(serial, 50) * 1000, 1),
        "load_average": round(os.getloadavg()[0], 1),
        "cold_p50_ms": round(_percentile(cold, 50) * 1000, 1),
        "cold_p95_ms": round(_percentile(cold, 95) * 1000, 1),
        "cold_requests_per_s": round(len(cold) / cold_wall, 1),
    }
    print(f"accounts {figures['accounts']}")
    print(f"  refresh   {figures['refresh_s']:8.3f} s  stored drift of every account, bulk")
    print(
        f"  dashboard p50 {figures['dashboard_p50_ms']} ms, p95 {figures['dashboard_p95_ms']} ms"
        f" (target <= 200), max {figures['dashboard_max_ms']} ms; {figures['requests_per_s']}"
        f" requests/s; {args.clients} clients, {args.workers} gunicorn workers,"
        f" {figures['failures']} failures"
    )
    print(
        f"  one client p50 {figures['serial_p50_ms']} ms (no concurrency);"
        f" load average {figures['load_average']} on {os.cpu_count()} cores"
    )
    print(
        f"  cold      p50 {figures['cold_p50_ms']} ms, p95 {figures['cold_p95_ms']} ms;"
        f" {figures['cold_requests_per_s']} requests/s (every request a query of its own:"
        " nothing rendered or totalled before is reused)"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
