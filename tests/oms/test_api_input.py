"""Input the database would refuse is refused by the API first, as a 400."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize(
    "moment",
    [
        "0324-01-29T03:50:07+18:47",  # PostgreSQL allows offsets up to ±15:59 only
        "2495-04-23T20:50:52-23:51",
        "0001-01-01T00:10:00+05:00",  # leaves the calendar when brought to UTC
    ],
)
def test_odd_time_offsets_are_brought_to_utc_or_refused(compliance_officer, moment):
    response = _client(compliance_officer).get("/api/v1/audit-events/", {"occurred_from": moment})
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert "occurred_from" in response.json()


def test_a_far_offset_filters_by_the_same_instant(compliance_officer, pm, book):
    from trading.services.orders import order_create

    order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["AAA"],
        side="buy",
        quantity=1,
    )
    client = _client(compliance_officer)
    later = client.get("/api/v1/audit-events/", {"occurred_from": "2999-01-01T00:00:00+23:00"})
    earlier = client.get("/api/v1/audit-events/", {"occurred_from": "2000-01-01T00:00:00-23:00"})
    assert later.status_code == earlier.status_code == 200
    assert later.json()["count"] == 0
    assert earlier.json()["count"] >= 1


def test_null_characters_in_a_json_body_are_refused(pm, book):
    response = _client(pm).post(
        "/api/v1/orders/",
        {"portfolio": "ACC\u00001", "security": "AAA", "side": "buy", "quantity": "1"},
        format="json",
    )
    assert response.status_code == 400
    assert "Null characters" in response.json()["detail"]
    from trading.models import Order

    assert not Order.objects.exists()
