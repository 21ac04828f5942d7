"""Chaos for longer runs: `python bench/chaos.py --faults 1000 --orders 3000`.

The same harness as tests/chaos (real worker, gateway and FIX simulator on
PostgreSQL and Redis, kill -9 at random), on a database of its own that it
empties first: DATABASE_URL must name a database whose name contains "bench"
or "chaos". Prints the faults injected, what it checked and any problem (each
naming its order or route), and ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=1000)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not ("bench" in url or "chaos" in url):
        parser.error("set DATABASE_URL to a PostgreSQL database named *bench* or *chaos* (emptied)")
    if not os.environ.get("REDIS_URL"):
        parser.error("set REDIS_URL")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from config.celery import app
    from tests.chaos.harness import Chaos, simulator_keeps_its_book
    from tests.scratchdb import flush_past_the_trail_triggers

    if not simulator_keeps_its_book():
        parser.error("this checkout's FIX simulator has no --state: a broker must keep its book")
    call_command("migrate", verbosity=0)
    with flush_past_the_trail_triggers():  # the trail refuses TRUNCATE otherwise
        call_command("flush", interactive=False, verbosity=0)
    with app.connection_for_write() as conn:
        for queue in settings.OMS_QUEUES:
            conn.default_channel.queue_purge(queue)
    chaos = Chaos(
        Path(tempfile.mkdtemp(prefix="oms-chaos-")), url, os.environ["REDIS_URL"], args.seed
    )
    chaos.set_up(accounts=50, securities=20)
    # the faults take about 1.4 s each: release orders over the same span
    result = chaos.run(orders=args.orders, faults=args.faults, settle_timeout=600)
    summary = result.summary()
    print(f"faults injected: {summary['faults']} {summary['faults_by_process']}")
    print(f"orders: {summary['orders']}, routes: {summary['routes']}, {summary['seconds']} s")
    for check in summary["checks"]:
        print(f"checked: {check}")
    for problem in result.problems[:50]:
        print(f"PROBLEM: {problem}")
    print(json.dumps(summary | {"ok": not result.problems}))
    return 1 if result.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
