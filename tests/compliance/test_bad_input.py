"""Bad input to the four-eyes, override and alert steps, on the pages and the API: a
refusal in the user's words (a 4xx, or the page's message), never a 500, and nothing
changed."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from compliance.models import Alert, Override
from compliance.services import overrides as override_services
from compliance.services import posttrade
from compliance.services import rules as rule_services
from oms.roles import Role
from portfolios.models import Position
from tests.clients import api_client, page_client
from trading.models import Order
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db
API = "/api/v1"


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def requested(pm, over_soft_limit):
    """An override requested by the PM for an order failing a soft limit."""
    order = over_soft_limit
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    return override_services.override_request(
        actor=pm, order_id=order.pk, justification="The client asked for it in writing."
    )


@pytest.mark.parametrize("decision", [None, "", "approve ", "delete"])
def test_a_decision_that_is_neither_approve_nor_reject_changes_nothing(
    compliance_officer, requested, decision
):
    data = {"note": "Looks fine to me."}
    if decision is not None:
        data["decision"] = decision
    response = page_client(compliance_officer).post(
        reverse("compliance:override-decide", args=[requested.pk]), data, follow=True
    )
    assert response.status_code == 200
    assert _messages(response) == ["Approve or reject the override."]
    requested.refresh_from_db()
    assert requested.status == Override.Status.REQUESTED
    assert requested.order.status == Order.Status.NEEDS_OVERRIDE
    assert not AuditEvent.objects.filter(
        kind__in=["override.approved", "override.rejected"]
    ).exists()


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_note_too_long_is_refused_not_dropped(compliance_officer, requested, decision):
    response = page_client(compliance_officer).post(
        reverse("compliance:override-decide", args=[requested.pk]),
        {"decision": decision, "note": "x" * 501},
        follow=True,
    )
    assert _messages(response) == [
        "note: Ensure this value has at most 500 characters (it has 501)."
    ]
    requested.refresh_from_db()
    assert requested.status == Override.Status.REQUESTED


def test_the_requester_is_refused_in_words(make_user, book, soft_issuer_limit):
    both = make_user("both", Role.COMPLIANCE)
    both.groups.add(*make_user("pmx", Role.PORTFOLIO_MANAGER).groups.all())
    account = book["accounts"][0]
    account.manager = both
    account.save(update_fields=["manager"])
    order = order_services.order_create(
        actor=both, portfolio=account, security=book["securities"]["AAA"], side="buy", quantity=40
    )
    order_services.orders_approve(actor=both, order_ids=[order.pk])
    mine = override_services.override_request(
        actor=both, order_id=order.pk, justification="I want this one to trade."
    )
    response = page_client(both).post(
        reverse("compliance:override-decide", args=[mine.pk]),
        {"decision": "approve", "note": ""},
        follow=True,
    )
    assert _messages(response) == [
        "You asked for this override: another compliance officer must decide it."
    ]
    refused = api_client(both).post(f"{API}/overrides/{mine.pk}/approve/", {}, format="json")
    assert refused.status_code == 403
    assert "another compliance officer" in refused.json()["detail"]
    mine.refresh_from_db()
    assert mine.status == Override.Status.REQUESTED


def test_an_override_request_with_bad_input_says_what_is_wrong(pm, requested):
    order = requested.order
    override_services.override_reject(
        actor=_officer(), override_id=requested.pk, note="No, ask with more."
    )
    client = api_client(pm)
    for body, field in (
        ({"order": order.pk, "justification": "short"}, "justification"),
        ({"order": order.pk, "justification": "x" * 2001}, "justification"),
        (
            {"order": order.pk, "justification": "A good reason.", "expires_at": "yesterday"},
            "expires_at",
        ),
        ({"order": 10**30, "justification": "A good reason."}, "order"),
    ):
        response = client.post(f"{API}/overrides/", body, format="json")
        assert response.status_code == 400, body
        assert field in response.json(), response.json()
    # the order is rejected now: no override can be asked for it
    response = client.post(
        f"{API}/overrides/", {"order": order.pk, "justification": "A good reason."}, format="json"
    )
    assert response.status_code == 400
    assert "only an order that needs an override can have one" in str(response.json())


def _officer():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("officer-b", password="x")
    user.groups.add(Group.objects.get_or_create(name=Role.COMPLIANCE.value)[0])
    return user


# --- alerts ----------------------------------------------------------------------------


@pytest.fixture
def alert(compliance_officer, book):
    rule_services.rule_create(
        actor=compliance_officer,
        name="Single security 70%",
        kind="max_weight",
        params={"group_by": "security", "limit": 0.70},
        severity="soft",
        when="post",
    )
    Position.objects.filter(portfolio=book["accounts"][0], security__ticker="AAA").update(
        quantity=800
    )
    [alert] = posttrade.posttrade_check(source="nightly")
    return alert


def test_an_alert_goes_only_to_a_compliance_officer(compliance_officer, pm, alert):
    response = api_client(compliance_officer).post(
        f"{API}/alerts/{alert.pk}/assign/", {"assignee": pm.username}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "assignee": ["pm is not a compliance officer: an alert goes to one who may resolve it."]
    }
    alert.refresh_from_db()
    assert alert.assignee is None


def test_a_resolution_too_long_is_refused_not_cut(compliance_officer, alert):
    response = api_client(compliance_officer).post(
        f"{API}/alerts/{alert.pk}/resolve/", {"text": "x" * 501}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"resolution": ["Say it in at most 500 characters (this is 501)."]}
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN
    page = page_client(compliance_officer).post(
        reverse("compliance:alert-act", args=[alert.pk]),
        {"do": "resolve", "text": "y" * 501},
        follow=True,
    )
    assert _messages(page) == ["Say it in at most 500 characters (this is 501)."]
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN


def test_an_unknown_alert_step_and_a_resolved_alert_are_refused(compliance_officer, alert):
    client = page_client(compliance_officer)
    url = reverse("compliance:alert-act", args=[alert.pk])
    response = client.post(url, {"do": "delete"}, follow=True)
    assert _messages(response) == ["Take, comment or resolve."]
    client.post(url, {"do": "resolve", "text": "Sold down."}, follow=True)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    again = client.post(url, {"do": "resolve", "text": "Again."}, follow=True)
    assert _messages(again) == [f"Alert {alert.pk} is resolved already."]
    taken = api_client(compliance_officer).post(f"{API}/alerts/{alert.pk}/assign/", {})
    assert taken.status_code == 400
    assert f"Alert {alert.pk} is resolved." in str(taken.json())


def test_a_request_whose_order_was_cancelled_can_be_closed_not_approved(
    pm, compliance_officer, requested
):
    order = requested.order
    order_services.order_cancel(actor=pm, order_id=order.pk, reason="Client changed his mind.")
    client = page_client(compliance_officer)
    url = reverse("compliance:override-decide", args=[requested.pk])
    response = client.post(url, {"decision": "approve", "note": "ok"}, follow=True)
    assert _messages(response) == [
        f"{order} is cancelled: it awaits no override. Reject the request to close it."
    ]
    requested.refresh_from_db()
    assert requested.status == Override.Status.REQUESTED
    # rejecting closes the request and leaves the order as it is
    response = client.post(url, {"decision": "reject", "note": "Order cancelled."}, follow=True)
    assert _messages(response) == [f"Override {requested.pk} rejected."]
    requested.refresh_from_db()
    order.refresh_from_db()
    assert requested.status == Override.Status.REJECTED
    assert order.status == Order.Status.CANCELLED
    event = AuditEvent.objects.get(kind="override.rejected")
    assert event.after["order_status"] == "cancelled"
    queue = client.get(reverse("compliance:override-queue"))
    assert f"#{requested.pk}" not in queue.content.decode()


@pytest.mark.parametrize(("first", "then"), [("approve", "approve"), ("approve", "reject")])
def test_deciding_a_decided_override_is_a_conflict(compliance_officer, requested, first, then):
    """A decision the override's state does not allow any more is a 409, as every
    state change of the API is (README, *REST API*), and changes nothing."""
    client = api_client(compliance_officer)
    url = f"{API}/overrides/{requested.pk}"
    assert client.post(f"{url}/{first}/", {"note": "Fine."}, format="json").status_code == 200
    events = AuditEvent.objects.count()
    again = client.post(f"{url}/{then}/", {"note": "Again."}, format="json")
    assert again.status_code == 409, again.content
    assert again.json() == {"detail": f"Override {requested.pk} was approved already."}
    requested.refresh_from_db()
    assert (requested.status, requested.decision_note) == ("approved", "Fine.")
    assert AuditEvent.objects.count() == events
    # and the page says the same in its message
    page = page_client(compliance_officer).post(
        reverse("compliance:override-decide", args=[requested.pk]),
        {"decision": then, "note": "Again."},
        follow=True,
    )
    assert _messages(page) == [f"Override {requested.pk} was approved already."]
