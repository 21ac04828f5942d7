"""Thin Celery tasks of rebalance runs: take ids, call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from oms.context import origin

from . import services


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def execute_rebalance_run(run_id: int) -> None:
    """Start a large run: one `execute_rebalance_chunk` task per chunk of accounts."""
    with origin("task", "execute_rebalance_run"):
        services.rebalance_run_start(run_id=run_id)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def execute_rebalance_chunk(run_id: int, chunk: int) -> None:
    """One chunk of a run; safe to run twice (the chunk claims its accounts)."""
    with origin("task", "execute_rebalance_chunk"):
        services.rebalance_chunk_execute(run_id=run_id, chunk=chunk)


@shared_task
def recover_rebalance_runs() -> dict[str, list[int]]:
    """Celery beat: send again the lost work of runs that made no progress."""
    with origin("task", "recover_rebalance_runs"):
        return services.rebalance_runs_recover()


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def settle_withdrawals(portfolio_ids: list[int] | None = None) -> dict[str, int]:
    """Book the withdrawals whose run's sells have ended (these accounts, or all)."""
    with origin("task", "settle_withdrawals"):
        return services.cash_flows_settle(portfolio_ids=portfolio_ids)
