"""Editing a FIX session in the admin (where the broker is, who we are to it) never
writes back the sequence numbers, generation or status that its running gateway
keeps on the same row."""

from __future__ import annotations

import pytest
from django.db.models import F

from audit.admin import AuditedModelAdmin
from audit.models import AuditEvent
from trading.models import Broker, FixSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def session():
    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    return FixSession.objects.create(
        broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=9878
    )


def test_an_admin_edit_keeps_what_the_gateway_wrote_meanwhile(
    superuser_client, session, monkeypatch
):
    url = f"/admin/trading/fixsession/{session.pk}/change/"
    data = {
        "broker": session.broker_id,
        "begin_string": session.begin_string,
        "sender_comp_id": "OMS",
        "target_comp_id": "BROKER",
        "host": "10.0.0.7",
        "port": 9878,
        "heartbeat_interval": 30,
        "day_ends_at": "17:00:00",
        "time_zone": "America/New_York",
    }
    read = AuditedModelAdmin.get_object

    def gateway_sends_while_the_admin_saves(self, request, object_id, from_field=None):
        obj = read(self, request, object_id, from_field)
        # The gateway, meanwhile, numbers and sends five messages and logs on.
        FixSession.objects.filter(pk=session.pk).update(
            next_sender_seq=F("next_sender_seq") + 5, logged_on=True
        )
        return obj

    monkeypatch.setattr(AuditedModelAdmin, "get_object", gateway_sends_while_the_admin_saves)
    response = superuser_client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    session.refresh_from_db()
    assert session.host == "10.0.0.7"
    assert session.next_sender_seq == 6  # not put back to 1 by the admin's save
    assert session.logged_on
    event = AuditEvent.objects.get(kind="fixsession.changed")
    assert (event.before["host"], event.after["host"]) == ("127.0.0.1", "10.0.0.7")
    # what the gateway changed is not the admin user's change
    assert "next_sender_seq" not in event.after and "logged_on" not in event.after


def test_an_unknown_time_zone_is_a_form_error(superuser_client, session):
    url = f"/admin/trading/fixsession/{session.pk}/change/"
    data = {
        "broker": session.broker_id,
        "begin_string": session.begin_string,
        "sender_comp_id": "OMS",
        "target_comp_id": "BROKER",
        "host": "127.0.0.1",
        "port": 9878,
        "heartbeat_interval": 30,
        "day_ends_at": "17:00:00",
        "time_zone": "Mars/Olympus_Mons",
    }
    response = superuser_client.post(url, data)
    assert response.status_code == 200
    assert b"is not a time zone" in response.content
    session.refresh_from_db()
    assert session.time_zone == "America/New_York"
