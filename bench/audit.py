"""Benchmark: audit appends per second with concurrent writers, and chain verification.

    python bench/audit.py [--writers 8] [--seconds 5] [--verify-events 200000]
                          [--database-url postgres://postgres@127.0.0.1:5432/postgres]

On a scratch PostgreSQL database (oms_bench_audit, dropped and made again), each of
``--writers`` processes runs business transactions for ``--seconds``: each
transaction updates one row of its writer's own and appends one audit event, then
commits. Two ways are measured in the same run:

- ``chain-lock``, the old trail (main before the sealer): the transaction first
  takes the one advisory lock of the whole chain, then reads the chain's head,
  hashes the event's Python values and appends the event with its link, so every
  audited write of the system commits one at a time;
- ``sealed``, the trail as it is: the event is appended unchained (no lock of the
  trail's), and the sealer process (`audit.sealer.run_sealer`, one round a
  second, as `manage.py seal_audit --loop` runs it) chains it after commit;
- ``ceiling``, the same transaction sent straight through psycopg without Django
  (nor a sealer): what the machine and the database can do at most, to read the
  other two against on a shared machine;
- ``unsealed``, the writers of ``sealed`` with no sealer running: ``sealed`` less
  this is what sealing costs the writers (the sealer's share of the machine), and
  this less ``ceiling`` what Django and ``audit_record`` cost them.

For ``sealed`` it also prints how long events waited for their seal (from being
recorded to being sealed). Then it tops the trail up to ``--verify-events`` sealed
events and times `verify_audit_chain` over all of them (best of 3). Prints the
machine's load, then one line of JSON with the figures. Targets (issue 10): at
least 3,000 appends/s with 8 writers, at least 100,000 events/s verified. Not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCRATCH = "oms_bench_audit"
OLD_CHAIN_LOCK = 7_340_001  # the key main's audited_transaction took


def _setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("OMS_AUDIT_SEAL_KEY", "bench-audit-seal-key")
    os.environ.setdefault("SECRET_KEY", "bench-only-key-signs-nothing")
    import django

    django.setup()


def _old_append(user, n: int) -> None:
    """What main's audit_record did, inside its transaction: the chain's lock first
    (audited_transaction took it before anything else), the head's hash, a hash of
    the Python values, the event and its link."""
    from django.core.serializers.json import DjangoJSONEncoder
    from django.db import connection
    from django.utils import timezone

    from audit.models import GENESIS_HASH, AuditEvent

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [OLD_CHAIN_LOCK])
        cursor.execute("SELECT position, hash FROM audit_auditseal ORDER BY position DESC LIMIT 1")
        position, previous = cursor.fetchone() or (0, GENESIS_HASH)
    _business_write(user)
    event = AuditEvent(
        occurred_at=timezone.now(),
        actor=user,
        actor_name=user.username,
        kind="bench.append",
        object_type="auth.user",
        object_id=str(user.pk),
        object_repr=user.username,
        before={},
        after=json.loads(json.dumps({"n": n, "quantity": "100.000000"}, cls=DjangoJSONEncoder)),
        origin="bench",
    )
    body = {
        "previous_hash": previous,
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor_id": user.pk,
        "actor_name": event.actor_name,
        "kind": event.kind,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "before": event.before,
        "after": event.after,
        "reason": "",
        "origin": event.origin,
    }
    digest = hashlib.sha256(
        json.dumps(body, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    ).hexdigest()
    AuditEvent.objects.bulk_create([event])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditseal (position, event_id, previous_hash, hash, sealed_at,"
            " horizon) VALUES (%s, %s, %s, %s, now(), 0)",
            [position + 1, event.pk, previous, digest],
        )


def _business_write(user) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE bench_business SET n = n + 1 WHERE id = %s", [user.pk])


#: The parts of a writer's transaction that ``--phases`` times (the first statement
#: sends the BEGIN: Django opens a transaction lazily).
PHASES = ("business_write", "audit_record", "commit")


def _writer(url: str, mode: str, user_id: int, ready, start, stop_at, results) -> None:
    _setup(url)
    from django.contrib.auth import get_user_model
    from django.db import connection

    from audit.services import audit_record, audited_transaction

    if mode.endswith("-ssb"):
        # psycopg's server-side binding (DATABASES OPTIONS server_side_binding), for this
        # process only: the project's settings are not changed by the bench
        connection.settings_dict.setdefault("OPTIONS", {})["server_side_binding"] = True
    user = get_user_model().objects.get(pk=user_id)
    connection.ensure_connection()
    if mode == "ceiling":
        _ceiling(url, user_id, ready, start, stop_at, results)
        return
    ready.put(user_id)
    start.wait()
    done = 0
    # per phase: wall and the process's CPU (what is left of wall is the wait for the
    # server, for locks, for the WAL's flush at commit, and for a core)
    spent = {p: [0.0, 0.0] for p in PHASES}
    clock, cpu = time.perf_counter, time.thread_time

    def mark(phase, w0, c0):
        spent[phase][0] += clock() - w0
        spent[phase][1] += cpu() - c0
        return clock(), cpu()

    while time.time() < stop_at.value:
        if mode == "chain-lock":
            with audited_transaction():
                _old_append(user, done)
        else:
            w, c = clock(), cpu()
            with audited_transaction():
                _business_write(user)
                w, c = mark("business_write", w, c)
                audit_record(
                    actor=user,
                    kind="bench.append",
                    obj=user,
                    after={"n": done, "quantity": "100.000000"},
                )
                w, c = mark("audit_record", w, c)
            mark("commit", w, c)
        done += 1
    results.put((done, spent))
    connection.close()


def _ceiling(url: str, user_id: int, ready, start, stop_at, results) -> None:
    """The same transaction straight through psycopg, without Django: what this machine
    and database can do at most, to read the other figures against."""
    import psycopg

    from audit.services import _EVENT_VALUES, _INSERT_EVENT

    with psycopg.connect(url) as conn:
        ready.put(user_id)
        start.wait()
        done = 0
        while time.time() < stop_at.value:
            with conn.transaction():
                conn.execute("UPDATE bench_business SET n = n + 1 WHERE id = %s", [user_id])
                conn.execute(
                    f"{_INSERT_EVENT} VALUES {_EVENT_VALUES}",
                    [
                        datetime.now(UTC),
                        user_id,
                        "writer",
                        "bench.ceiling",
                        "auth.user",
                        str(user_id),
                        "writer",
                        "{}",
                        json.dumps({"n": done, "quantity": "100.000000"}),
                        "",
                        "bench",
                    ],
                )
            done += 1
    results.put((done, None))


def _sealer(url: str, stop) -> None:
    _setup(url)
    import threading

    from audit.sealer import run_sealer

    flag = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), flag.set()), daemon=True).start()
    run_sealer(stop=flag, every=1.0, checkpoint_every=10.0)


def run_writers(url: str, mode: str, writers: int, seconds: float, users: list[int]) -> dict:
    ctx = mp.get_context("spawn")
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    stop_at = ctx.Value("d", 0.0)
    sealer_stop = ctx.Event()
    sealer = None
    if mode.startswith("sealed"):
        sealer = ctx.Process(target=_sealer, args=(url, sealer_stop))
        sealer.start()
    procs = [
        ctx.Process(target=_writer, args=(url, mode, users[i], ready, start, stop_at, results))
        for i in range(writers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=300)  # every writer set up, connected and waiting
    began = time.time()
    stop_at.value = began + seconds
    start.set()
    answers = [results.get(timeout=seconds + 120) for _ in procs]
    elapsed = time.time() - began
    for proc in procs:
        proc.join()
    counts = [done for done, _ in answers]
    figures = {"appends": sum(counts), "seconds": round(elapsed, 2)}
    figures["per_second"] = round(sum(counts) / elapsed)
    timed = [spent for _, spent in answers if spent]
    if timed and sum(counts):
        # microseconds per append, over every writer: wall, and the writer's own CPU
        figures["phases_us"] = {
            phase: {
                "wall": round(sum(t[phase][0] for t in timed) / sum(counts) * 1e6, 1),
                "cpu": round(sum(t[phase][1] for t in timed) / sum(counts) * 1e6, 1),
            }
            for phase in PHASES
        }
    if sealer is not None:
        from audit.models import AuditEvent

        deadline = time.time() + 60
        while AuditEvent.objects.filter(seal__isnull=True).exists() and time.time() < deadline:
            time.sleep(0.2)
        sealer_stop.set()
        sealer.join(30)
        figures |= _seal_delays()
    return figures


def _seal_delays() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM s.sealed_at - e.occurred_at) FROM audit_auditseal s"
            " JOIN compliance_auditevent e ON e.id = s.event_id WHERE e.kind = 'bench.append'"
        )
        delays = sorted(float(row[0]) for row in cursor.fetchall())
    if not delays:
        return {}
    return {
        "seal_delay_p50_s": round(statistics.median(delays), 3),
        "seal_delay_p99_s": round(delays[int(len(delays) * 0.99) - 1], 3),
        "seal_delay_max_s": round(delays[-1], 3),
    }


def empty_the_trail() -> None:
    """The bench is the database's superuser: it empties the scratch trail as the test
    suite does, past the triggers (which the application's role cannot do)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("TRUNCATE compliance_auditevent, audit_auditseal, audit_auditcheckpoint")


def top_up(total: int) -> int:
    """Append generated events until the trail holds ``total``, then seal them all."""
    from django.db import connection

    from audit.models import AuditEvent
    from audit.services import audit_seal

    missing = total - AuditEvent.objects.count()
    if missing > 0:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO compliance_auditevent (occurred_at, actor_name, kind, object_type,"
                " object_id, object_repr, before, after, reason, origin) SELECT"
                " now() - g * interval '1 millisecond', 'pm', 'order.approved', 'trading.order',"
                " g::text, 'Order #' || g || ' Buy 100 AAPL', '{\"status\": \"draft\"}',"
                " jsonb_build_object('status', 'approved', 'quantity', (g * 1.5)::text,"
                " 'block', g), '', 'web:10.0.0.1' FROM generate_series(1, %s) g",
                [missing],
            )
            cursor.execute("ANALYZE compliance_auditevent")
    began = time.perf_counter()
    sealed = 0
    while count := audit_seal():
        sealed += count
    rate = sealed / (time.perf_counter() - began) if sealed else 0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditseal")
    return round(rate)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--verify-events", type=int, default=200_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "OMS_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server (its maintenance database), as a superuser",
    )
    parser.add_argument(
        "--scratch-database", default=SCRATCH, help="the scratch database made on that server"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["chain-lock", "ceiling", "unsealed", "sealed"],
        choices=["chain-lock", "ceiling", "unsealed", "unsealed-ssb", "sealed", "sealed-ssb"],
        help="what to run, in this order; -ssb: with psycopg's server-side binding",
    )
    args = parser.parse_args()
    import psycopg

    scratch = args.scratch_database
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {scratch}")
        conn.execute(f"CREATE DATABASE {scratch}")
    url = args.database_url.rsplit("/", 1)[0] + f"/{scratch}"
    _setup(url)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    users = [get_user_model().objects.create(username=f"writer{i}").pk for i in range(args.writers)]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_business (id bigint PRIMARY KEY, n bigint NOT NULL)")
        for pk in users:
            cursor.execute("INSERT INTO bench_business VALUES (%s, 0)", [pk])
    connection.close()

    load_before = os.getloadavg()
    figures: dict = {"writers": args.writers, "cpus": os.cpu_count()}
    for mode in args.modes:
        result = run_writers(url, mode, args.writers, args.seconds, users)
        figures[mode] = result
        line = f"{mode:>10}: {result['per_second']:>6,} appends/s ({result['appends']:,} in {result['seconds']} s, {args.writers} writers)"
        if "seal_delay_p99_s" in result:
            line += (
                f"; sealed within p50 {result['seal_delay_p50_s']} s, p99 "
                f"{result['seal_delay_p99_s']} s, max {result['seal_delay_max_s']} s"
            )
        print(line, flush=True)
        if "phases_us" in result:
            print(
                "            per append, wall/CPU µs: "
                + ", ".join(
                    f"{p} {v['wall']:.0f}/{v['cpu']:.0f}" for p, v in result["phases_us"].items()
                ),
                flush=True,
            )
        if mode != args.modes[-1]:
            empty_the_trail()
    from audit.verification import verify_audit_chain

    figures["seal_rate_per_second"] = top_up(args.verify_events)
    best, report = float("inf"), None
    for _ in range(3):
        began = time.perf_counter()
        report = verify_audit_chain()
        best = min(best, time.perf_counter() - began)
    assert report.ok, report.breaks[:3]
    figures["verify"] = {
        "events": report.checked,
        "seconds": round(best, 3),
        "per_second": round(report.checked / best),
    }
    print(
        f"    verify: {figures['verify']['per_second']:>6,} events/s ({report.checked:,} events"
        f" in {best:.3f} s, best of 3); sealing a backlog: {figures['seal_rate_per_second']:,}"
        " events/s"
    )
    if "sealed" in figures and "chain-lock" in figures:
        figures["speedup"] = round(
            figures["sealed"]["per_second"] / figures["chain-lock"]["per_second"], 2
        )
    figures["targets"] = {"appends_per_second": 3000, "verify_per_second": 100_000}
    figures["load_average"] = [round(x, 2) for x in load_before + os.getloadavg()]
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {os.getloadavg()}")
    connection.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
