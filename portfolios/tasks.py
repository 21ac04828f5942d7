"""Thin tasks of the portfolios app: stored drift kept current (portfolios.services.drift)."""

from __future__ import annotations

from celery import shared_task

from .models import Portfolio


@shared_task
def drift_refresh_accounts(portfolio_ids: list[int], model_ids: list[int] | None = None) -> int:
    """Refresh the stored drift of these accounts and of the accounts of these models
    (asked for on commit by the services that changed their holdings, cash or model)."""
    from .services.drift import drift_refresh

    ids = set(portfolio_ids)
    if model_ids:
        ids |= set(Portfolio.objects.filter(model_id__in=model_ids).values_list("pk", flat=True))
    return drift_refresh(portfolio_ids=ids).accounts


@shared_task
def drift_refresh_stale() -> int:
    """The periodic refresh (Celery beat): every active account whose stored figures are
    older than their inputs (prices and FX moved, a mark nobody refreshed), were
    computed for another model than the account's, or were never computed; in chunks."""
    from .selectors import drift_stale_ids
    from .services.drift import drift_refresh

    return drift_refresh(portfolio_ids=drift_stale_ids()).accounts


@shared_task
def book_lifecycle_events() -> int:
    """The daily booking of coupons, maturities and expiries (Celery beat, after the
    close): today's events and those of the days before that a run missed
    (``OMS_LIFECYCLE_CATCH_UP_DAYS``); a run books nothing twice."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from .services.lifecycle import lifecycle_book

    today = timezone.now().date()
    since = today - timedelta(days=settings.OMS_LIFECYCLE_CATCH_UP_DAYS)
    return len(lifecycle_book(on=today, since=since).booked)
