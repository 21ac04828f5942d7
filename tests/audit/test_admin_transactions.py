"""The audited admin opens its audited (write) transaction only to write.

An admin page that only shows rows (a list, a change form, a delete
confirmation) renders outside one; a change is written in one, with its event.
(When the audit trail had a chain lock, a page held inside it stalled every
audited write of the system for as long as the page took to render.)
"""

from __future__ import annotations

import contextlib

import pytest

from audit import admin as audit_admin
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain_locks(monkeypatch):
    """Each audited transaction the admin opens, counted."""
    calls: list[int] = []
    real = audit_admin.audited_transaction

    @contextlib.contextmanager
    def counted():
        calls.append(1)
        with real():
            yield

    monkeypatch.setattr(audit_admin, "audited_transaction", counted)
    return calls


def _pages(book, trader) -> list[str]:
    security = book["securities"]["AAA"]
    model = book["model"]
    return [
        "/admin/portfolios/security/",
        "/admin/portfolios/security/add/",
        f"/admin/portfolios/security/{security.pk}/change/",
        f"/admin/portfolios/security/{security.pk}/delete/",
        f"/admin/portfolios/modelportfolio/{model.pk}/change/",
        "/admin/auth/user/",
        f"/admin/auth/user/{trader.pk}/change/",
        f"/admin/auth/user/{trader.pk}/password/",
        "/admin/authtoken/tokenproxy/",
    ]


def test_admin_pages_that_only_show_take_no_audit_lock(superuser_client, book, trader, chain_locks):
    for url in _pages(book, trader):
        response = superuser_client.get(url)
        assert response.status_code == 200, url
        assert chain_locks == [], f"GET {url} opened an audited transaction"


def test_an_admin_change_still_writes_under_the_lock_with_its_event(
    superuser_client, book, chain_locks
):
    security = book["securities"]["AAA"]
    page = superuser_client.get(f"/admin/portfolios/security/{security.pk}/change/")
    data = {
        name: value
        for name, value in page.context["adminform"].form.initial.items()
        if value is not None
    }
    data["name"] = "AAA Holdings"
    response = superuser_client.post(f"/admin/portfolios/security/{security.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    assert chain_locks, "the change was written outside an audited transaction"
    event = AuditEvent.objects.get(kind="security.changed")
    assert (event.before["name"], event.after["name"]) == ("AAA Corp", "AAA Holdings")


def test_a_staff_user_changing_their_own_password_in_the_admin_is_audited(ops, client):
    ops.is_staff = True
    ops.save(update_fields=["is_staff"])
    client.force_login(ops)
    response = client.post(
        "/admin/password_change/",
        {
            "old_password": "pw-ops",
            "new_password1": "a-new-Secret-42",
            "new_password2": "a-new-Secret-42",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    ops.refresh_from_db()
    assert ops.check_password("a-new-Secret-42")
    event = AuditEvent.objects.get(kind="user.changed", object_id=str(ops.pk))
    assert event.actor_name == "ops"
    assert event.before["password_set_at"] != event.after["password_set_at"]
    assert "a-new-Secret-42" not in str(event.after) + str(event.before)


def test_a_refused_password_change_in_the_admin_records_nothing(ops, client):
    ops.is_staff = True
    ops.save(update_fields=["is_staff"])
    client.force_login(ops)
    response = client.post(
        "/admin/password_change/",
        {"old_password": "wrong", "new_password1": "x-Secret-42", "new_password2": "x-Secret-42"},
    )
    assert response.status_code == 200
    assert not AuditEvent.objects.filter(object_id=str(ops.pk)).exists()
