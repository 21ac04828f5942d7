from datetime import timedelta

import pytest
from django.utils import timezone

from oms.models import IdempotencyKey
from oms.tasks import purge_idempotency_keys

pytestmark = pytest.mark.django_db


def test_old_idempotency_keys_are_forgotten_and_recent_ones_kept(pm, settings):
    settings.OMS_IDEMPOTENCY_KEY_DAYS = 7
    common = {
        "user": pm,
        "method": "POST",
        "path": "/api/v1/orders/",
        "fingerprint": "f",
        "status_code": 201,
    }
    old = IdempotencyKey.objects.create(key="old", **common)
    recent = IdempotencyKey.objects.create(key="recent", **common)
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    assert purge_idempotency_keys() == 1
    assert list(IdempotencyKey.objects.values_list("pk", flat=True)) == [recent.pk]
