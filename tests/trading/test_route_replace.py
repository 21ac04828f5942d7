"""Amending a working route (cancel/replace): pending replace until the broker
answers; accepted, the new terms apply; rejected, the route is as it was; a
fill meanwhile is booked; the quantity never falls below what filled nor
takes the block past its size. Over FIX an OrderCancelReplaceRequest chained by
ClOrdID/OrigClOrdID; for the in-worker simulated broker the same states."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import verify_audit_chain
from oms.state import TransitionError
from tests.desk import broker_report, released_block
from trading.models import Block, Broker, FixOutbox, FixSession, Route
from trading.services import executions as execution_services
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


def _block(pm, book, quantity="10", order_type="limit", limit_price="50") -> Block:
    limit = Decimal(limit_price) if order_type == "limit" else None
    return released_block(pm, book, quantity, quantity, order_type=order_type, limit_price=limit)


# The resting limit orders' reports: fills at their limit, 50.
_report = partial(broker_report, price="50")


def _resting_route(pm, trader, book, capture, quantity=Decimal(12)) -> Route:
    """A buy limit at 50 with AAA at 100: acknowledged by the simulated broker, it rests."""
    block = _block(pm, book)  # 2 accounts x 10 = 20
    with capture(execute=True):
        route = route_services.route_create(
            actor=trader, block_id=block.pk, broker=book["broker"], quantity=quantity
        )
    route.refresh_from_db()
    assert route.status == Route.Status.NEW
    return route


def test_a_replace_goes_pending_holds_the_increase_and_applies_when_the_broker_accepts(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        route_services.route_replace(
            actor=trader, route_id=route.pk, quantity=Decimal(16), reason="more"
        )
    route.refresh_from_db()
    block = Block.objects.get(pk=route.block_id)
    # pending until the broker answers; the increase is held from the block at once
    assert route.status == Route.Status.PENDING_REPLACE
    assert (route.quantity, route.pending_quantity) == (Decimal(12), Decimal(16))
    assert block.routed_quantity == Decimal(16)
    with pytest.raises(ValidationError, match="Only 4 of the block is left"):
        route_services.route_create(
            actor=trader, block_id=block.pk, broker=book["broker"], quantity=Decimal(5)
        )

    for hook in hooks:  # the worker sends the replace; the simulated broker accepts it
        hook()
    route.refresh_from_db()
    block.refresh_from_db()
    assert route.status == Route.Status.NEW
    assert (route.quantity, route.pending_quantity) == (Decimal(16), None)
    assert route.working_cl_ord_id.startswith(route.cl_ord_id + "-R")
    assert block.routed_quantity == Decimal(16)
    kinds = list(AuditEvent.objects.values_list("kind", flat=True))
    assert "route.replace_requested" in kinds and "execution.replaced" in kinds
    assert verify_audit_chain().ok


def test_a_replace_to_a_marketable_price_fills_at_the_simulated_broker(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks, Decimal(20))
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_replace(actor=trader, route_id=route.pk, limit_price=Decimal(100))
    route.refresh_from_db()
    block = Block.objects.get(pk=route.block_id)
    assert route.limit_price == Decimal(100)
    assert (route.status, route.filled_quantity) == (Route.Status.FILLED, Decimal(20))
    assert block.status == Block.Status.ALLOCATED


def test_a_replace_reject_restores_the_route_and_frees_the_held_increase(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):  # the broker answers below
        route_services.route_replace(
            actor=trader, route_id=route.pk, quantity=Decimal(18), limit_price=Decimal("55")
        )
    execution_services.execution_apply(
        _report(route, "REJ1", "cancel_reject", "new", text="Too late to replace")
    )
    route.refresh_from_db()
    block = Block.objects.get(pk=route.block_id)
    assert route.status == Route.Status.NEW
    assert (route.quantity, route.limit_price) == (Decimal(12), Decimal(50))
    assert (route.pending_quantity, route.pending_cl_ord_id, route.working_cl_ord_id) == (
        None,
        "",
        "",
    )
    assert block.routed_quantity == Decimal(12) and block.unrouted_quantity == Decimal(8)
    assert route.text == "Too late to replace"


def test_a_fill_while_the_replace_is_pending_is_booked_and_a_reject_keeps_it(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        route_services.route_replace(actor=trader, route_id=route.pk, quantity=Decimal(8))
    # FIX 4.4 reports Pending Replace as the state of a fill while the replace is pending
    execution_services.execution_apply(
        _report(route, "F1", "trade", "pending_replace", last=5, cum=5)
    )
    route.refresh_from_db()
    block = Block.objects.get(pk=route.block_id)
    assert (route.status, route.filled_quantity) == (Route.Status.PENDING_REPLACE, Decimal(5))
    assert block.filled_quantity == Decimal(5)
    # a decrease is held at the old quantity until the broker agrees: it may still fill to 12
    assert block.routed_quantity == Decimal(12)

    execution_services.execution_apply(_report(route, "REJ", "cancel_reject", "partially_filled"))
    route.refresh_from_db()
    assert (route.status, route.quantity) == (Route.Status.PARTIALLY_FILLED, Decimal(12))
    assert route.leaves_quantity == Decimal(7)


def test_a_decrease_accepted_frees_the_rest_for_another_broker(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        route_services.route_replace(actor=trader, route_id=route.pk, quantity=Decimal(8))
    execution_services.execution_apply(_report(route, "F1", "trade", "pending_replace", 5, 5))
    route.refresh_from_db()
    execution_services.execution_apply(
        _report(route, "RPL", "replaced", "partially_filled", cum=5, order_quantity=Decimal(8))
    )
    route.refresh_from_db()
    block = Block.objects.get(pk=route.block_id)
    assert (route.status, route.quantity, route.leaves_quantity) == (
        Route.Status.PARTIALLY_FILLED,
        Decimal(8),
        Decimal(3),
    )
    assert block.routed_quantity == Decimal(8)
    # the block's open quantity goes to a second broker while the first works
    other = Broker.objects.create(code="SIM2", name="Second", settings={"latency": 0})
    second = route_services.route_create(actor=trader, block_id=block.pk, broker=other)
    assert second.quantity == Decimal(12)
    block.refresh_from_db()
    assert block.routed_quantity == block.quantity == Decimal(20)


@pytest.mark.parametrize(
    ("terms", "field", "message"),
    [
        ({"quantity": Decimal(3)}, "quantity", "already filled: the quantity cannot go below"),
        ({"quantity": Decimal(4)}, "quantity", "exactly what is filled: cancel the rest"),
        ({"quantity": Decimal(21)}, "quantity", "this route can have at most 20"),
        ({"quantity": Decimal("12.5")}, "quantity", "in whole units"),
        ({"limit_price": Decimal("50.005")}, "limit_price", "off the tick"),
        ({"limit_price": Decimal(-1)}, "limit_price", "must be positive"),
        ({"stop_price": Decimal(49)}, "stop_price", "has no stop price"),
        ({"time_in_force": "gtc"}, "time_in_force", "SIM does not take good till cancel"),
        ({"time_in_force": "gtd"}, "expire_at", "needs an expiry"),
    ],
)
def test_bad_replace_terms_are_refused_and_change_nothing(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks, terms, field, message
):
    broker = book["broker"]
    broker.settings |= {"time_in_force": ["day", "ioc", "gtd"]}
    broker.save()
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    execution_services.execution_apply(_report(route, "F1", "trade", "partially_filled", 4, 4))
    route.refresh_from_db()
    before = (route.status, route.quantity, route.limit_price, route.time_in_force)
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as error:
        route_services.route_replace(actor=trader, route_id=route.pk, **terms)
    assert message in " ".join(error.value.message_dict[field])
    route.refresh_from_db()
    assert (route.status, route.quantity, route.limit_price, route.time_in_force) == before
    assert Block.objects.get(pk=route.block_id).routed_quantity == Decimal(12)
    assert AuditEvent.objects.count() == events


def test_nothing_to_amend_a_done_route_and_only_traders(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    with pytest.raises(ValidationError, match="Nothing to amend"):
        route_services.route_replace(actor=trader, route_id=route.pk, quantity=Decimal(12))
    with pytest.raises(PermissionDenied):
        route_services.route_replace(actor=pm, route_id=route.pk, quantity=Decimal(14))
    with django_capture_on_commit_callbacks(execute=False):
        route_services.route_replace(actor=trader, route_id=route.pk, quantity=Decimal(14))
    with pytest.raises(TransitionError, match="cannot be amended now"):
        route_services.route_replace(actor=trader, route_id=route.pk, quantity=Decimal(15))
    with pytest.raises(TransitionError, match="replace waiting"):
        route_services.route_cancel(actor=trader, route_id=route.pk)


def test_replace_through_the_api(
    pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=trader).key}")
    url = f"/api/v1/routes/{route.pk}/replace/"
    pm_api = APIClient()
    pm_api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=pm).key}")
    assert pm_api.post(url, {"quantity": "14"}, format="json").status_code == 403

    bad = api.post(url, {"limit_price": "50.001"}, format="json")
    assert bad.status_code == 400 and "off the tick" in str(bad.data)
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post(url, {"quantity": "14", "reason": "size up"}, format="json")
    assert response.status_code == 200, response.content
    assert response.data["status"] == "pending_replace"
    assert response.data["pending_quantity"] == "14.000000"
    again = api.post(url, {"quantity": "15"}, format="json")
    assert again.status_code == 409 and "cannot be amended now" in str(again.data)


def test_amend_from_the_block_page(
    pm, trader, book, client, eager_celery, django_capture_on_commit_callbacks
):
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    client.force_login(trader)
    page = client.get(reverse("trading:block-detail", args=[route.block_id])).content.decode()
    url = reverse("trading:route-replace", args=[route.pk])
    assert url in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"quantity": "15", "limit_price": "50"})
    assert response.status_code == 302
    route.refresh_from_db()
    assert (route.status, route.quantity) == (Route.Status.NEW, Decimal(15))
    bad = client.post(url, {"quantity": "2.5"}, follow=True)
    assert "in whole units: 2.5 is not a whole number" in bad.content.decode()
    route.refresh_from_db()
    assert route.quantity == Decimal(15)


def test_amend_to_good_till_date_from_the_block_page_takes_its_expiry(
    pm, trader, book, client, eager_celery, django_capture_on_commit_callbacks
):
    """The block page's amend had no expiry field, so a day route could never be
    amended to good till date there ("needs an expiry" whatever was chosen)."""
    route = _resting_route(pm, trader, book, django_capture_on_commit_callbacks)
    client.force_login(trader)
    page = client.get(reverse("trading:block-detail", args=[route.block_id])).content.decode()
    assert 'name="expire_at"' in page
    url = reverse("trading:route-replace", args=[route.pk])
    when = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    no_date = client.post(url, {"time_in_force": "gtd"}, follow=True)
    assert "A good-till-date order needs an expiry." in no_date.content.decode()
    bad = client.post(url, {"time_in_force": "gtd", "expire_at": "next tuesday"}, follow=True)
    assert "Expires (UTC): Enter a valid date/time." in bad.content.decode()
    route.refresh_from_db()
    assert (route.status, route.time_in_force) == (Route.Status.NEW, "day")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"time_in_force": "gtd", "expire_at": when.strftime("%Y-%m-%dT%H:%M")}
        )
    assert response.status_code == 302
    route.refresh_from_db()
    assert (route.status, route.time_in_force, route.expire_at) == (Route.Status.NEW, "gtd", when)


# --- over FIX: the request is chained by ClOrdID/OrigClOrdID --------------------------


@pytest.fixture
def fix_broker(book):
    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    FixSession.objects.create(broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=1)
    return Broker.objects.select_related("fix_session").get(pk=broker.pk)


def test_over_fix_a_replace_is_chained_by_clordid_and_the_next_request_names_it(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    block = _block(pm, book)
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=fix_broker)
    route.refresh_from_db()
    execution_services.execution_apply(_report(route, "A1", "new", "new", order_id="BO-1"))
    route_services.route_replace(
        actor=trader, route_id=route.pk, quantity=Decimal(18), limit_price=Decimal("51.5")
    )
    replace = FixOutbox.objects.get(msg_type="G")
    fields = {int(t): v for t, v in replace.fields}
    route.refresh_from_db()
    assert fields[41] == route.cl_ord_id and fields[11] == route.pending_cl_ord_id
    assert (fields[38], fields[44], fields[40], fields[37]) == ("18", "51.5", "2", "BO-1")
    # the broker accepts (FIX 4.4: ExecType Replaced, OrdStatus New)
    execution_services.execution_apply(
        _report(route, "A2", "replaced", "new", order_quantity=Decimal(18))
    )
    route.refresh_from_db()
    assert (route.quantity, route.limit_price) == (Decimal(18), Decimal("51.5"))
    assert route.working_cl_ord_id == fields[11]
    # the next request names the replaced order's ClOrdID as its OrigClOrdID
    route_services.route_cancel(actor=trader, route_id=route.pk)
    cancel = {int(t): v for t, v in FixOutbox.objects.get(msg_type="F").fields}
    assert cancel[41] == fields[11] and cancel[11] != fields[11]
    assert cancel[11].startswith(route.cl_ord_id + "-C")


def test_over_fix_a_stop_and_a_good_till_date_order_carry_their_fields(
    pm, trader, book, fix_broker, eager_celery, django_capture_on_commit_callbacks
):
    expiry = timezone.now() + timezone.timedelta(days=3)
    orders = [
        order_services.order_create(
            actor=pm,
            portfolio=account,
            security=book["securities"]["AAA"],
            side="buy",
            quantity=Decimal(5),
            order_type="stop_limit",
            limit_price=Decimal("101"),
            stop_price=Decimal("100.5"),
            time_in_force="gtd",
            expire_at=expiry,
        )
        for account in book["accounts"]
    ]
    ids = [o.pk for o in orders]
    order_services.orders_approve(actor=pm, order_ids=ids)
    order_services.orders_release(actor=pm, order_ids=ids)
    block = Block.objects.get(orders__pk=ids[0])
    assert (block.stop_price, block.expire_at) == (Decimal("100.5"), expiry)
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=fix_broker)
    new = {int(t): v for t, v in FixOutbox.objects.get(msg_type="D").fields}
    assert (new[40], new[44], new[99], new[59]) == ("4", "101", "100.5", "6")
    assert new[126] == expiry.strftime("%Y%m%d-%H:%M:%S")
    route.refresh_from_db()
    assert route.ends_at == expiry
