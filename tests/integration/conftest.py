"""Integration tests talk to real services: PostgreSQL, Redis and a Celery worker
process started here against the test database.

Without DATABASE_URL (PostgreSQL) and REDIS_URL they skip, and fail instead
under OMS_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import service_missing

ROOT = Path(__file__).resolve().parents[2]


def _redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def real_services():
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: set DATABASE_URL to a PostgreSQL database")
    if not settings.REDIS_URL:
        service_missing("Redis: set REDIS_URL")
    if not _redis_ping(settings.REDIS_URL):
        service_missing(f"Redis does not answer at {settings.REDIS_URL}")


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture(scope="package")
def celery_worker_process(real_services, django_db_setup, tmp_path_factory):
    """A real `celery worker` process on Redis, reading and writing the test database.

    One for the integration tests: each test's transactional database is flushed
    between tests while the worker stays. It stops when they end, so that the
    tasks the rest of the suite sends (to nobody, outside `eager_celery`) are not
    run by it against the test database while a later test flushes it: a
    `route_send` the worker ran during such a flush deadlocked the flush's
    TRUNCATE and failed the test that had sent it."""
    from config.celery import app, worker_command

    with app.connection_for_write() as conn:
        for queue in settings.OMS_QUEUES:  # nothing left over from an earlier run
            conn.default_channel.queue_purge(queue)
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = os.environ | {
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "OMS_SIMULATED_BROKER_LATENCY": "0.05",
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            worker_command(sys.executable, loglevel="INFO", hostname=f"test-{os.getpid()}@%h"),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(lambda: b"ready." in log_path.read_bytes() or process.poll() is not None, 60)
        if process.poll() is not None:
            pytest.fail(f"the Celery worker exited at start:\n{log_path.read_text()}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        connection.close()
        # The worker's log is the first thing to read when an integration test fails.
        sys.stdout.write(log_path.read_text()[-4000:])


def _wait_for(condition, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def wait_for():
    return _wait_for
