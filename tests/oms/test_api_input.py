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


@pytest.mark.parametrize("depth", [100, 5_000, 100_000])
@pytest.mark.parametrize("opener, closer", [("[", "]"), ('{"a":', "}")])
def test_a_deeply_nested_json_body_is_a_400(depth, opener, closer, pm, book):
    """Python's JSON decoder recurses per level: a deep enough body was a RecursionError
    (a 500). Bodies of the API nest three levels at most (a model's targets)."""
    from trading.models import Order

    body = opener * depth + "1" + closer * depth
    response = _client(pm).post("/api/v1/orders/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "nested" in response.json()["detail"]
    assert not Order.objects.exists()


def test_brackets_inside_strings_do_not_count_as_nesting(pm, book):
    response = _client(pm).post(
        "/api/v1/orders/",
        {
            "portfolio": "ACC1",
            "security": "AAA",
            "side": "buy",
            "quantity": "1",
            "notes": "[[[[" * 40 + '\\"{{{{' * 40,
        },
        format="json",
    )
    assert response.status_code == 201, response.content


def test_a_body_larger_than_the_limit_is_a_400(pm, book, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    notes = "x" * 20_000
    response = _client(pm).post(
        "/api/v1/orders/",
        {"portfolio": "ACC1", "security": "AAA", "side": "buy", "quantity": "1", "notes": notes},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "10,000 bytes" in response.json()["detail"]


def test_the_parser_reads_no_more_than_the_limit(settings):
    """Served by gunicorn, the body reaches the parser unread: it stops at the limit."""
    import io

    from rest_framework.exceptions import ParseError

    from oms.api.parsers import JSONParser

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    stream = io.BytesIO(b'{"notes": "' + b"x" * 5_000 + b'"}')
    with pytest.raises(ParseError, match="larger than 1,000 bytes"):
        JSONParser().parse(stream)
    assert stream.tell() == 1_001
    assert JSONParser().parse(io.BytesIO(b'{"a": [[1]]}')) == {"a": [[1]]}
