"""A large run computed by a real Celery worker: its chunks on the `rebalance` queue,
two worker processes side by side, nothing written twice."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from orchestration import services as run_services
from portfolios.models import RebalanceRun
from tests.orchestration.test_run_at_scale import clone_accounts

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_worker_computes_a_chunked_run(celery_worker_process, wait_for, pm, book, settings):
    settings.OMS_REBALANCE_INLINE_LIMIT = 1
    accounts = [*book["accounts"], *clone_accounts(book, pm, 4)]
    run = run_services.rebalance_run_create(actor=pm, portfolios=accounts, chunk_size=2)
    assert run.chunks_total == 3

    def proposed():
        run.refresh_from_db()
        return run.status in (RebalanceRun.Status.PROPOSED, RebalanceRun.Status.FAILED)

    assert wait_for(proposed, 120), f"still {run.status}: {run.accounts_done} accounts done"
    assert run.status == RebalanceRun.Status.PROPOSED, run.error
    assert run.accounts_done == 6 and run.orders_proposed == run.orders.count() > 0
    pairs = list(run.orders.values_list("portfolio_id", "security_id"))
    assert len(pairs) == len(set(pairs))
    assert AuditEvent.objects.filter(kind="orders.created", object_id=str(run.pk)).count() == 3
