"""The audit trail through the API: events with their place in the chain, the chain's
status, verification, and the filters pages and API share."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import audit_checkpoint, audit_record, audit_seal, audited_transaction

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def api(compliance_officer):
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=compliance_officer).key}"
    )
    return client


def _events(actor, count):
    with audited_transaction():
        for i in range(count):
            audit_record(actor=actor, kind="test.event", obj=actor, after={"i": i})


def test_an_event_shows_its_seal_once_the_sealer_has_been(api, pm):
    _events(pm, 2)
    [newest, oldest] = api.get(f"{API}/audit-events/").json()["results"]
    assert (newest["position"], newest["hash"], newest["sealed_at"]) == (None, None, None)
    assert newest["object_kind"] == "User"
    audit_seal()
    newest = api.get(f"{API}/audit-events/{newest['id']}/").json()
    oldest = api.get(f"{API}/audit-events/{oldest['id']}/").json()
    assert (oldest["position"], newest["position"]) == (1, 2)
    assert newest["previous_hash"] == oldest["hash"] and len(newest["hash"]) == 64


def test_the_chain_s_status(api, pm):
    _events(pm, 3)
    audit_seal()
    checkpoint = audit_checkpoint()
    _events(pm, 1)
    status = api.get(f"{API}/audit-events/chain/").json()
    assert status["last_position"] == 3 and status["awaiting"] == 1
    assert status["checkpoint_position"] == checkpoint.position
    assert status["last_event_id"] == AuditEvent.objects.order_by("pk")[2].pk


def test_verification_names_every_finding(api, pm):
    _events(pm, 3)
    audit_seal()
    assert api.post(f"{API}/audit-events/verify/").json()["ok"] is True
    ids = list(AuditEvent.objects.order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE compliance_auditevent SET reason = 'x' WHERE id <> %s", [ids[1]])
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")
    report = api.post(f"{API}/audit-events/verify/").json()
    assert (report["ok"], report["broken"], report["checked"]) == (False, 2, 3)
    assert [b["event_id"] for b in report["breaks"]] == [ids[0], ids[2]]


def test_filters_take_names(api, pm):
    pm.first_name, pm.last_name = "Pat", "Morgan"
    pm.save(update_fields=["first_name", "last_name"])
    _events(pm, 2)
    by_name = api.get(f"{API}/audit-events/", {"actor": "pat mor", "object": f"User {pm.pk}"})
    assert len(by_name.json()["results"]) == 2
    assert api.get(f"{API}/audit-events/", {"actor": "Casey"}).json()["results"] == []


@pytest.mark.parametrize("role", ["pm", "trader", "outsider"])
def test_only_compliance_and_operations_see_the_chain(personas, role):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=personas[role]).key}")
    assert client.get(f"{API}/audit-events/chain/").status_code == 403
    assert client.post(f"{API}/audit-events/verify/").status_code == 403


def test_operations_see_the_chain(personas):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=personas['ops']).key}")
    assert client.get(f"{API}/audit-events/chain/").status_code == 200
