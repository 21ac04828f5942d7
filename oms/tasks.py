"""Housekeeping tasks of what the apps share."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .models import IdempotencyKey


@shared_task
def purge_idempotency_keys(days: int | None = None) -> int:
    """Forget idempotency keys older than OMS_IDEMPOTENCY_KEY_DAYS: a client retries
    within minutes, not weeks. Returns how many were deleted."""
    days = settings.OMS_IDEMPOTENCY_KEY_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
