"""Bad input on the desk's and operations' pages, as a person sends it: each answer
is a form error (or a 4xx) in the user's words, never a 500, and nothing is
half-written; what a person typed as a reason is the audit event's reason."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from trading.models import FixInbox, Statement, StatementBreak
from trading.services import executions as execution_services
from trading.services import routes as route_services

from .test_breaks import _kept, allocated  # noqa: F401  (the fixture)
from .test_route_replace import _report, _resting_route

pytestmark = pytest.mark.django_db

HEADER = b"account,security,currency,quantity\n"


def _upload(client, body: bytes, **fields):
    upload = io.BytesIO(body)
    upload.name = "statement.csv"
    return client.post(
        reverse("trading:statement-upload"), {"file": upload, "source": "Custodian", **fields}
    )


@pytest.fixture
def ops_client(client, ops):
    client.raise_request_exception = False  # a 500 is an answer to look at, not a raise
    client.force_login(ops)
    return client


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (b"ACC1,AAA,,1e20\n", "line 2: quantity 1e20 is too large"),
        (b"ACC1,,USD,123456789012345678901234\n", "line 2: quantity 123456789012345678901234 is"),
        (b"ACC1,AAA,,600\nACC1\n", "line 3: it has 1 field, the header 4"),
        (b"ACC1,AAA,,1,000\n", "line 2: it has 5 fields, the header 4"),
        (b"ACC1,AAA,,600\nACC2,AAA,," + b"9" * 200_000 + b"\n", "line 3 cannot be read"),
    ],
    ids=["huge", "too-many-digits", "short-line", "unquoted-comma", "field-too-long"],
)
def test_a_statement_line_that_cannot_be_is_named_and_nothing_is_written(
    ops_client, book, lines, message
):
    events = AuditEvent.objects.count()
    response = _upload(ops_client, HEADER + lines)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Statement.objects.exists() and not StatementBreak.objects.exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("as_of", ["2026-02-30", "yesterday"])
def test_a_statement_date_that_is_not_a_date_is_refused(ops_client, book, as_of):
    response = _upload(ops_client, HEADER + b"ACC1,AAA,,600\n", as_of=as_of)
    assert response.status_code == 422
    assert f"{as_of} is not a date" in response.content.decode()
    assert not Statement.objects.exists()


def test_a_statement_header_and_codes_are_read_as_people_write_them(ops_client, book):
    body = b"Account, Security ,Currency,QUANTITY\n ACC1 ,AAA ,,600\nACC1,,usd,20000\n"
    response = _upload(ops_client, body, as_of="2026-11-30")
    assert response.status_code == 302, response.content.decode()
    statement = Statement.objects.get()
    assert (statement.lines, str(statement.as_of)) == (2, "2026-11-30")
    # AAA and the cash agree; BBB and EEE, which ACC1 holds, are not on the statement
    assert sorted(b.security.ticker for b in statement.breaks.all()) == ["BBB", "EEE"]


def test_a_break_or_correction_that_does_not_exist_is_a_404(ops_client, book):
    for name, body in (
        ("trading:statement-break", {"note": "seen", "action": "resolve"}),
        ("trading:correction", {"action": "apply"}),
        ("trading:correction", {"action": "dismiss", "reason": "not ours"}),
    ):
        assert ops_client.post(reverse(name, args=[99999]), body).status_code == 404


def test_the_note_on_a_statement_break_is_the_audit_reason(ops_client, book):
    _upload(ops_client, HEADER + b"ACC1,AAA,,601\n")
    brk = StatementBreak.objects.filter(security__ticker="AAA").get()
    url = reverse("trading:statement-break", args=[brk.pk])
    ops_client.post(url, {"note": "asked the custodian", "action": "annotate"})
    ops_client.post(url, {"note": "custodian booked a day late", "action": "resolve"})
    reasons = dict(
        AuditEvent.objects.filter(
            object_id=str(brk.pk), kind__startswith="statement_break."
        ).values_list("kind", "reason")
    )
    assert reasons == {
        "statement_break.annotated": "asked the custodian",
        "statement_break.resolved": "custodian booked a day late",
    }


def test_a_correction_resolved_twice_is_refused_in_words(allocated, ops, client):  # noqa: F811
    client.force_login(ops)
    inbox = _kept(allocated, {150: "H", 19: "F2", 32: "50", 31: "102"})
    url = reverse("trading:correction", args=[inbox.pk])
    client.post(url, {"action": "apply"})
    for body in ({"action": "apply"}, {"action": "dismiss", "reason": "not ours"}):
        page = client.post(url, body, follow=True)
        said = " ".join(str(m) for m in page.context["messages"])
        assert "was applied already" in said, said
        assert "35=" not in said and "->" not in said
    assert FixInbox.objects.get(pk=inbox.pk).status == FixInbox.Status.APPLIED


def test_the_amend_ticket_gets_form_errors_as_json_naming_the_field(
    pm, trader, book, client, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    execution_services.execution_apply(_report(route, "F1", "trade", "partially_filled", 4, 4))
    client.force_login(trader)
    url = reverse("trading:route-replace", args=[route.pk])
    response = client.post(url, {"quantity": "abc"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 422
    assert response.json() == {"ok": False, "errors": ["Quantity: Enter a number."]}
    response = client.post(url, {"limit_price": "1e30"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 422
    assert "Limit price: Must be less than 1,000,000,000." in response.json()["errors"]
    route.refresh_from_db()
    assert (route.status, route.quantity) == ("partially_filled", Decimal(12))


def _trader_api(trader):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=trader)[0].key}")
    return api


def test_a_step_the_route_or_block_state_does_not_allow_is_a_409_in_words(
    pm, trader, book, client, eager_celery, django_capture_on_commit_callbacks
):
    """docs/api.md: 409 when the object's state does not allow it."""
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    execution_services.execution_apply(_report(route, "F1", "trade", "partially_filled", 4, 4))
    api = _trader_api(trader)
    with django_capture_on_commit_callbacks(execute=False):
        assert (
            api.post(f"/api/v1/routes/{route.pk}/replace/", {"quantity": "14"}).status_code == 200
        )
    cancel = api.post(f"/api/v1/routes/{route.pk}/cancel/", {"reason": "too late"})
    assert cancel.status_code == 409
    assert "has a replace waiting for SIM's answer" in cancel.data["detail"]

    # the broker rejects the replace; the trader cancels the rest and ends the day
    execution_services.execution_apply(
        _report(route, "RJ1", "cancel_reject", "partially_filled", 0, 4, text="no")
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/routes/{route.pk}/cancel/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/blocks/{route.block_id}/done-for-day/").status_code == 200
    again = api.post(f"/api/v1/blocks/{route.block_id}/route/", {"broker": "SIM"})
    assert again.status_code == 409
    assert again.data == {"detail": f"Block #{route.block_id} is allocated: it cannot be routed."}
    client.force_login(trader)
    page = client.post(
        reverse("trading:block-route", args=[route.block_id]),
        {"broker": book["broker"].pk},
        HTTP_ACCEPT="application/json",
    )
    assert page.status_code == 422
    assert page.json()["errors"] == [f"Block #{route.block_id} is allocated: it cannot be routed."]


def test_a_replace_of_the_time_in_force_moves_the_end_of_the_route(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    """A day route amended to good-till-date ends at its date, not at today's close
    (the sweep and the close go by `ends_at`); good till cancel never ends."""
    from datetime import UTC, datetime

    from trading.models import Route

    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    today_close = route.ends_at
    assert today_close is not None
    expire = datetime(2099, 12, 31, 21, 0, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_replace(
            actor=trader, route_id=route.pk, time_in_force="gtd", expire_at=expire
        )
    route.refresh_from_db()
    assert (route.status, route.time_in_force) == (Route.Status.NEW, "gtd")
    assert route.ends_at == expire
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_replace(actor=trader, route_id=route.pk, time_in_force="gtc")
    route.refresh_from_db()
    assert (route.time_in_force, route.expire_at, route.ends_at) == ("gtc", None, None)
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_replace(actor=trader, route_id=route.pk, time_in_force="day")
    route.refresh_from_db()
    assert route.time_in_force == "day" and route.ends_at == today_close


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({32: "50", 31: "1e17"}, "price (100000000000000000) is beyond any the OMS books"),
        ({32: "1e30", 31: "10"}, "quantity (1000000000000000000000000000000) or price (10)"),
        ({32: "lots", 31: "10"}, "quantity (LastQty) or price (LastPx) is not a number"),
    ],
)
def test_a_correction_with_figures_the_books_cannot_hold_is_refused(
    allocated,  # noqa: F811
    ops,
    client,
    fields,
    message,
):
    client.raise_request_exception = False
    client.force_login(ops)
    inbox = _kept(allocated, {150: "G", 19: "F1", **fields})
    page = client.post(reverse("trading:correction", args=[inbox.pk]), {"action": "apply"})
    assert page.status_code == 302
    said = " ".join(
        str(m) for m in client.get(reverse("trading:reconciliation")).context["messages"]
    )
    assert message in said, said
    assert FixInbox.objects.get(pk=inbox.pk).status == FixInbox.Status.NOT_APPLIED


def test_a_second_cancel_says_the_first_is_waiting_for_the_broker(
    pm, trader, book, client, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    api = _trader_api(trader)
    url = f"/api/v1/routes/{route.pk}/cancel/"
    with django_capture_on_commit_callbacks(execute=False):  # the broker answers later
        assert api.post(url, {"reason": "market moved"}).status_code == 200
    again = api.post(url, {"reason": "market moved"})
    assert again.status_code == 409
    assert again.data["detail"] == (
        f"Route {route.cl_ord_id} is pending cancel: its cancel is waiting for SIM's answer "
        "already."
    )
    client.force_login(trader)
    page = client.post(reverse("trading:route-cancel", args=[route.pk]), follow=True)
    assert [str(m) for m in page.context["messages"]] == [again.data["detail"]]
    events = AuditEvent.objects.filter(kind="route.cancel_requested", object_id=str(route.pk))
    assert list(events.values_list("reason", flat=True)) == ["market moved"]
