"""A large run computed by a real Celery worker: its chunks on the `rebalance` queue,
two worker processes side by side, nothing written twice."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from orchestration import services as run_services
from portfolios.models import RebalanceRun
from tests.orchestration.test_run_at_scale import clone_accounts

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def assert_proposed_once(run: RebalanceRun, wait_for) -> None:
    """The worker proposes the run of six accounts in three chunks, each order once."""

    def proposed():
        run.refresh_from_db()
        return run.status in (RebalanceRun.Status.PROPOSED, RebalanceRun.Status.FAILED)

    assert wait_for(proposed, 120), f"still {run.status}: {run.accounts_done} accounts done"
    assert run.status == RebalanceRun.Status.PROPOSED, run.error
    assert run.accounts_done == 6 and run.orders_proposed == run.orders.count() > 0
    pairs = list(run.orders.values_list("portfolio_id", "security_id"))
    assert len(pairs) == len(set(pairs))
    assert AuditEvent.objects.filter(kind="orders.created", object_id=str(run.pk)).count() == 3


def test_the_worker_computes_a_chunked_run(celery_worker_process, wait_for, pm, book, settings):
    settings.OMS_REBALANCE_INLINE_LIMIT = 1
    accounts = [*book["accounts"], *clone_accounts(book, pm, 4)]
    run = run_services.rebalance_run_create(actor=pm, portfolios=accounts, chunk_size=2)
    assert run.chunks_total == 3

    assert_proposed_once(run, wait_for)


def test_a_run_whose_chunks_the_broker_lost_is_recovered_by_the_worker(
    celery_worker_process, wait_for, pm, book, settings
):
    """The broker loses the run's tasks (its queue purged while the worker does not
    consume it); the sweep sends the chunks again and the messages come back too (a
    redelivery after the visibility timeout): the worker runs both, two processes side
    by side, and no order is written twice."""
    import os

    from django.conf import settings as live

    from config.celery import app
    from oms.tasking import enqueue
    from orchestration.models import ChunkReissue

    settings.OMS_REBALANCE_INLINE_LIMIT = 1
    [worker] = [
        name
        for reply in app.control.ping(timeout=2.0)
        for name in reply
        if name.startswith(f"test-{os.getpid()}@")
    ]

    def purge_rebalance_queue():
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("rebalance")

    accounts = [*book["accounts"], *clone_accounts(book, pm, 4)]
    app.control.cancel_consumer("rebalance", destination=[worker], reply=True)
    try:
        run = run_services.rebalance_run_create(actor=pm, portfolios=accounts, chunk_size=2)
        purge_rebalance_queue()  # the start, lost
        run_services.rebalance_run_start(run_id=run.pk)
        purge_rebalance_queue()  # the chunks, lost
        run.refresh_from_db()
        assert run.status == RebalanceRun.Status.RUNNING and run.accounts_done == 0
        assert run_services.rebalance_runs_recover(stalled_for=0)["reissued"] == [run.pk]
        for chunk in range(run.chunks_total):  # and the originals, delivered again
            enqueue("orchestration.tasks.execute_rebalance_chunk", run.pk, chunk)
    finally:
        app.control.add_consumer("rebalance", destination=[worker], reply=True)

    assert_proposed_once(run, wait_for)
    assert ChunkReissue.objects.filter(run=run).count() == 3
    assert AuditEvent.objects.filter(kind="rebalance.reissued", object_id=str(run.pk)).count() == 1
    assert live.CELERY_BEAT_SCHEDULE["recover-rebalance-runs"]["schedule"] <= 60
