"""`manage.py issue_token`: integrators' tokens, printed, rotated, audited without the key."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from audit.models import AuditEvent

from .utils import API

pytestmark = pytest.mark.django_db


def _issue(*args) -> str:
    out = io.StringIO()
    call_command("issue_token", *args, stdout=out)
    return out.getvalue().strip()


def test_a_token_is_issued_once_and_then_printed_again(pm, client):
    key = _issue("pm")
    assert _issue("pm") == key
    assert Token.objects.get(user=pm).key == key
    response = client.get(f"{API}/orders/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    [event] = AuditEvent.objects.filter(kind="token.issued")
    assert event.object_repr == "pm"
    assert key not in str(event.after) and key not in event.object_id


def test_rotation_retires_the_old_token(pm, client):
    old = _issue("pm")
    new = _issue("pm", "--rotate")
    assert new != old
    assert client.get(f"{API}/orders/", HTTP_AUTHORIZATION=f"Token {old}").status_code == 401
    assert client.get(f"{API}/orders/", HTTP_AUTHORIZATION=f"Token {new}").status_code == 200
    assert AuditEvent.objects.filter(kind="token.rotated").count() == 1


def test_an_unknown_user_gets_no_token(db):
    with pytest.raises(CommandError, match="No user 'ghost'"):
        _issue("ghost")
    assert not Token.objects.exists()
