"""A run whose chunks' tasks were lost (a broker flushed or restarted, a worker killed
with its message unacknowledged) is recovered by the sweep: its pending chunks are sent
again once it made no progress for the stall time, each reissue recorded; a reissued
chunk that meets its original writes nothing twice; after `MAX_REISSUES` the run fails
with the reason. In these tests' transaction no task is ever sent: what a service
enqueues on commit is lost unless a test runs it (`django_capture_on_commit_callbacks`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from config.celery import app
from orchestration import services as run_services
from orchestration.models import ChunkReissue, RunAccount
from portfolios.models import RebalanceRun
from tests.orchestration.test_run_at_scale import clone_accounts
from trading.models import Order

pytestmark = pytest.mark.django_db


def lost_run(pm, book, settings, *, clones: int = 4, chunk_size: int = 2) -> RebalanceRun:
    """A running run of 2 + `clones` accounts whose chunks' tasks were all lost."""
    settings.OMS_REBALANCE_INLINE_LIMIT = 1
    accounts = [*book["accounts"], *clone_accounts(book, pm, clones)]
    run = run_services.rebalance_run_create(actor=pm, portfolios=accounts, chunk_size=chunk_size)
    assert run.status == RebalanceRun.Status.DRAFT  # its start task: lost
    run_services.rebalance_run_start(run_id=run.pk)  # its chunks' tasks: lost
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.RUNNING
    return run


def stall(run: RebalanceRun, seconds: float = 301) -> None:
    """The run made no progress for `seconds` (its heartbeat moved back)."""
    RebalanceRun.objects.filter(pk=run.pk).update(
        updated_at=timezone.now() - timedelta(seconds=seconds)
    )


def assert_each_order_written_once(run: RebalanceRun) -> None:
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.PROPOSED, run.error
    pairs = list(run.orders.values_list("portfolio_id", "security_id"))
    assert pairs and len(pairs) == len(set(pairs))
    assert run.orders_proposed == len(pairs)
    assert run.accounts_done == run.accounts_total
    created = AuditEvent.objects.filter(kind="orders.created", object_id=str(run.pk))
    assert created.count() == run.chunks_total


def test_a_chunk_commit_is_the_runs_heartbeat(pm, book, settings):
    run = lost_run(pm, book, settings)
    stall(run)
    before = RebalanceRun.objects.get(pk=run.pk).updated_at
    run_services.rebalance_chunk_execute(run_id=run.pk, chunk=0)
    assert RebalanceRun.objects.get(pk=run.pk).updated_at > before + timedelta(seconds=300)
    assert run_services.rebalance_runs_recover(stalled_for=300) == {
        "reissued": [],
        "proposed": [],
        "failed": [],
    }


def test_a_run_whose_chunks_were_lost_gets_them_again_and_finishes(
    pm, book, settings, eager_celery, django_capture_on_commit_callbacks
):
    run = lost_run(pm, book, settings)
    run_services.rebalance_chunk_execute(run_id=run.pk, chunk=0)  # one got through
    stall(run)
    with django_capture_on_commit_callbacks(execute=True) as sent:
        done = run_services.rebalance_runs_recover()  # OMS_REBALANCE_STALL_SECONDS: 300
    assert done == {"reissued": [run.pk], "proposed": [], "failed": []}
    assert len(sent) >= 2  # chunks 1 and 2, computed by the (eager) workers
    assert list(run.reissues.values_list("chunk", "attempt", "pending")) == [(1, 1, 2), (2, 1, 2)]
    event = AuditEvent.objects.get(kind="rebalance.reissued", object_id=str(run.pk))
    assert event.actor_name == "system" and event.reason == "no progress for 300 s"
    assert event.after["chunks"] == [1, 2] and event.after["pending"] == 4
    assert_each_order_written_once(run)


def test_a_reissued_chunk_that_meets_its_original_writes_nothing_twice(
    pm, book, settings, eager_celery, django_capture_on_commit_callbacks
):
    run = lost_run(pm, book, settings)
    stall(run)
    with django_capture_on_commit_callbacks(execute=False) as reissued:
        assert run_services.rebalance_runs_recover(stalled_for=300)["reissued"] == [run.pk]
    assert len(reissued) == 3
    # the originals were not lost after all (a worker that came back, a message
    # delivered again after the visibility timeout): they run, then the reissues do
    for chunk in range(run.chunks_total):
        run_services.rebalance_chunk_execute(run_id=run.pk, chunk=chunk)
    orders = set(run.orders.values_list("pk", flat=True))
    for callback in reissued:
        callback()  # the reissued tasks, on the (eager) workers
    assert set(run.orders.values_list("pk", flat=True)) == orders
    assert_each_order_written_once(run)


def test_a_run_making_progress_is_left_alone(pm, book, settings, django_assert_num_queries):
    run = lost_run(pm, book, settings)
    stall(run, seconds=100)
    with django_assert_num_queries(1):  # the stalled runs: none
        assert run_services.rebalance_runs_recover(stalled_for=300)["reissued"] == []
    assert not ChunkReissue.objects.exists()
    assert not AuditEvent.objects.filter(kind="rebalance.reissued").exists()
    stall(run, seconds=400)
    # one run: find it, lock it, its pending chunks, their reissues, the reissues
    # written, the run's heartbeat, its audit event (and the savepoint around the lock)
    with django_assert_num_queries(9):
        assert run_services.rebalance_runs_recover(stalled_for=300)["reissued"] == [run.pk]


def test_a_chunk_sent_again_too_often_fails_the_run_with_the_reason(pm, book, settings):
    run = lost_run(pm, book, settings)
    run_services.rebalance_chunk_execute(run_id=run.pk, chunk=0)
    proposed = set(run.orders.values_list("pk", flat=True))
    assert proposed
    for attempt in range(1, run_services.MAX_REISSUES + 1):
        stall(run)
        assert run_services.rebalance_runs_recover()["reissued"] == [run.pk]  # lost again
        assert set(run.reissues.filter(attempt=attempt).values_list("chunk", flat=True)) == {1, 2}
    stall(run)
    assert run_services.rebalance_runs_recover()["failed"] == [run.pk]
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.FAILED
    assert run.error.startswith(
        "Chunks 2, 3 of 3 made no progress after being sent to the workers again 3 times "
        "(300 s without progress each time)"
    )
    assert "4 accounts were not computed; send the run back for a re-run." in run.error
    # the orders chunk 0 proposed are cancelled, the accounts free for another run
    assert (
        set(run.orders.filter(status=Order.Status.CANCELLED).values_list("pk", flat=True))
        == proposed
    )
    assert not RunAccount.objects.filter(run=run, is_open=True).exists()
    assert AuditEvent.objects.filter(kind="rebalance.failed", object_id=str(run.pk)).exists()
    assert run_services.rebalance_runs_recover(stalled_for=0)["failed"] == []  # ended


def test_a_run_whose_proposal_step_was_lost_is_proposed(pm, book, settings):
    run = lost_run(pm, book, settings, clones=0)
    pending = list(RunAccount.objects.filter(run=run).values_list("portfolio_id", flat=True))
    # the chunk committed, its worker died before the step that proposes the run
    run_services._compute_chunk(run, 0, pending)
    stall(run)
    assert run_services.rebalance_runs_recover()["proposed"] == [run.pk]
    assert_each_order_written_once(run)
    assert not ChunkReissue.objects.exists()


def test_a_draft_whose_start_was_lost_is_started_again(
    pm, book, settings, eager_celery, django_capture_on_commit_callbacks
):
    settings.OMS_REBALANCE_INLINE_LIMIT = 0
    run = run_services.rebalance_run_create(actor=pm, portfolios=book["accounts"])
    assert run.status == RebalanceRun.Status.DRAFT
    stall(run)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_services.rebalance_runs_recover()["reissued"] == [run.pk]
    assert list(run.reissues.values_list("chunk", "attempt")) == [(None, 1)]
    assert AuditEvent.objects.get(kind="rebalance.reissued").after["start"] is True
    assert_each_order_written_once(run)


def test_a_draft_whose_start_never_comes_fails(pm, book, settings):
    settings.OMS_REBALANCE_INLINE_LIMIT = 0
    run = run_services.rebalance_run_create(actor=pm, portfolios=book["accounts"])
    for _ in range(run_services.MAX_REISSUES):
        stall(run)
        run_services.rebalance_runs_recover()
    stall(run)
    assert run_services.rebalance_runs_recover()["failed"] == [run.pk]
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.FAILED
    assert run.error.startswith("Its start made no progress after being sent to the workers")


def test_the_run_page_and_the_api_show_the_reissues(pm, book, settings):
    run = lost_run(pm, book, settings)
    stall(run)
    run_services.rebalance_runs_recover()
    client = Client()
    client.force_login(pm)
    page = client.get(f"/portfolios/runs/{run.pk}/").content.decode()
    assert 'id="run-reissues"' in page
    assert "Chunk 2 of 3 sent to the workers again (1st time): no progress for 300 s" in page
    progress = client.get(f"/portfolios/runs/{run.pk}/?progress=1", HTTP_HX_REQUEST="true")
    assert "3 chunks sent to the workers again" in progress.content.decode()
    api = APIClient()
    api.force_authenticate(pm)
    body = api.get(f"/api/v1/rebalance-runs/{run.pk}/").json()
    assert [(r["chunk"], r["attempt"], r["pending"]) for r in body["reissues"]] == [
        (0, 1, 2),
        (1, 1, 2),
        (2, 1, 2),
    ]
    assert body["reissues"][0]["reason"] == "no progress for 300 s"


def test_the_command_recovers_at_once(pm, book, settings, capsys):
    run = lost_run(pm, book, settings)
    call_command("recover_rebalance_runs", "--stalled-for", "0")
    assert f"Rebalance #{run.pk}: reissued" in capsys.readouterr().out
    call_command("recover_rebalance_runs")
    assert "No stalled run." in capsys.readouterr().out


def test_beat_runs_the_sweep(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["recover-rebalance-runs"]
    assert entry["task"] in app.tasks
