"""Thin Celery tasks of compliance: the post-trade check after an allocation and
every night. Only a database briefly unavailable (OperationalError) is retried; the
check is idempotent (one open alert per account and rule)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from oms.context import origin

from .services import posttrade

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 8}


@shared_task(**RETRY)
def posttrade_check(portfolio_ids: list[int]) -> int:
    with origin("task", "posttrade_check"):
        return len(posttrade.posttrade_check(portfolio_ids=portfolio_ids, source="allocation"))


@shared_task(**RETRY)
def posttrade_nightly() -> int:
    with origin("task", "posttrade_nightly"):
        return len(posttrade.posttrade_check(portfolio_ids=None, source="nightly"))
