"""Thin Celery tasks of rebalance runs: take ids, call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from oms.context import origin

from . import services


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def execute_rebalance_run(run_id: int) -> None:
    with origin("task", "execute_rebalance_run"):
        services.rebalance_run_execute(run_id=run_id)
