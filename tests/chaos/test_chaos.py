"""The chaos test (CI: 20+ faults, a few minutes): see tests/chaos/harness.py."""

from __future__ import annotations

import json
import os

import pytest
from django.conf import settings

from tests.chaos.harness import Chaos, simulator_keeps_its_book
from tests.conftest import service_missing
from tests.integration.conftest import _database_url, real_services  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_nothing_lost_nothing_twice_while_processes_are_killed(real_services, tmp_path):  # noqa: F811
    if not simulator_keeps_its_book():
        service_missing("the FIX simulator's --state (a broker keeps its orders across restarts)")
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in settings.OMS_QUEUES:  # nothing left over from an earlier run
            conn.default_channel.queue_purge(queue)
    chaos = Chaos(
        tmp_path,
        _database_url(),
        settings.REDIS_URL,
        seed=int(os.environ.get("OMS_CHAOS_SEED", "11")),
    )
    chaos.set_up(accounts=20, securities=10)
    result = chaos.run(
        orders=int(os.environ.get("OMS_CHAOS_ORDERS", "200")),
        faults=int(os.environ.get("OMS_CHAOS_FAULTS", "22")),
    )
    print(json.dumps(result.summary(), indent=1))
    assert sum(result.faults.values()) >= 20
    assert result.problems == [], "\n".join(result.problems[:30])
