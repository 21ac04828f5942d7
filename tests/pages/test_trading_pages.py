"""Orders and the trader's blotter: manual orders, routing a block, fills without a reload."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from trading.models import Block, Order, Route
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def order_data(book, **overrides) -> dict:
    data = {
        "portfolio": book["accounts"][0].pk,
        "security": book["securities"]["BBB"].pk,
        "side": "buy",
        "quantity": "10",
        "order_type": "market",
        "time_in_force": "day",
    }
    return data | overrides


def test_manual_order_is_created_as_a_draft_then_approved_and_released(pm, book, client_for):
    client = client_for(pm)
    response = client.post(reverse("trading:order-create"), order_data(book))
    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == order.get_absolute_url()
    assert order.status == Order.Status.DRAFT
    assert order.created_by == pm

    page = client.get(order.get_absolute_url())
    assert page.context["can_approve"] and not page.context["can_release"]
    client.post(reverse("trading:order-approve", args=[order.pk]))
    client.post(reverse("trading:order-release", args=[order.pk]))
    order.refresh_from_db()
    assert order.status == Order.Status.RELEASED
    assert order.block is not None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"quantity": "-3"}, "quantity"),
        ({"quantity": "2.5"}, "quantity"),  # whole units only: the service says so
        ({"side": "sell", "quantity": "601", "security": None}, "quantity"),  # more than held
        ({"order_type": "limit"}, "limit_price"),
        ({"side": "sideways"}, "side"),
    ],
)
def test_order_form_shows_errors_and_writes_nothing(pm, book, client_for, overrides, field):
    if overrides.get("security", "") is None:
        overrides = overrides | {"security": book["securities"]["AAA"].pk}
    events = AuditEvent.objects.count()
    response = client_for(pm).post(reverse("trading:order-create"), order_data(book, **overrides))
    assert response.status_code == 422
    assert field in response.context["form"].errors
    assert not Order.objects.exists()
    assert AuditEvent.objects.count() == events


def test_order_form_offers_only_the_pms_accounts(other_pm, book, client_for):
    response = client_for(other_pm).post(reverse("trading:order-create"), order_data(book))
    assert response.status_code == 422
    assert "portfolio" in response.context["form"].errors
    assert not Order.objects.exists()


def test_order_list_filters_with_the_shared_filter(pm, released_block, client_for):
    client = client_for(pm)
    everything = client.get(reverse("trading:order-list"))
    assert len(everything.context["page"].object_list) == 2
    one = client.get(reverse("trading:order-list"), {"portfolio": "ACC2"})
    assert [o.portfolio.code for o in one.context["page"].object_list] == ["ACC2"]


def test_blotter_shows_one_line_per_block_with_its_accounts_and_a_route_ticket(
    trader, released_block, client_for, settings
):
    settings.OMS_PUSH_REDIS_URL = ""  # the embedded default
    response = client_for(trader).get(reverse("trading:blotter"))
    assert response.status_code == 200
    [row] = response.context["rows"]
    assert row["block"] == released_block
    assert row["can_route"] is True
    html = response.content.decode()
    assert f'<tr id="block-{released_block.pk}"' in html
    assert "ACC1, ACC2" in html
    assert 'data-unrouted="150"' in html  # the ticket offers what is left to route
    assert 'id="ticket"' in html and "every 1s" not in html  # pushed, not polled
    assert 'name="oms-push" data-mode="poll"' in html  # no Redis here: one poll per page


def test_compliance_sees_the_blotter_without_route_tickets(
    compliance_officer, released_block, client_for
):
    response = client_for(compliance_officer).get(reverse("trading:blotter"))
    assert response.status_code == 200
    assert response.context["rows"][0]["can_route"] is False
    assert b'id="ticket"' not in response.content and b"data-route-url" not in response.content


def test_blotter_filters_by_status(trader, released_block, client_for):
    client = client_for(trader)
    assert len(client.get(reverse("trading:blotter"), {"status": "open"}).context["rows"]) == 1
    assert client.get(reverse("trading:blotter"), {"status": "filled"}).context["rows"] == []


def test_routing_from_the_ticket_answers_in_json_and_the_row_follows(
    trader, book, released_block, client_for, settings
):
    # No worker here: the route waits to be sent, so the block stays working.
    client = client_for(trader)
    response = client.post(
        reverse("trading:block-route", args=[released_block.pk]),
        {"broker": book["broker"].pk, "quantity": "100"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200 and response.json()["ok"] is True
    route = Route.objects.get()
    assert route.quantity == Decimal(100)
    assert route.created_by == trader
    released_block.refresh_from_db()
    assert released_block.status == Block.Status.WORKING
    rows = client.get(reverse("trading:blotter-rows"), {"ids": str(released_block.pk)})
    html = rows.content.decode()
    assert f'<tr id="block-{released_block.pk}"' in html
    assert 'data-unrouted="50"' in html  # the rest can still be routed
    assert "SIM 0/100" in html and rows["X-Blotter-Gone"] == ""
    # under a filter the block no longer matches, the page is told to drop it
    gone = client.get(
        reverse("trading:blotter-rows"), {"ids": str(released_block.pk), "status": "filled"}
    )
    assert gone["X-Blotter-Gone"] == str(released_block.pk)
    assert client.get(reverse("trading:blotter-rows"), {"ids": "x"}).status_code == 400


def test_a_row_shows_the_fill_once_allocated(
    trader, book, released_block, client_for, eager_celery, django_capture_on_commit_callbacks
):
    client = client_for(trader)
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(
            actor=trader, block_id=released_block.pk, broker=book["broker"]
        )
    route.refresh_from_db()
    assert route.status == Route.Status.FILLED
    row = client.get(reverse("trading:block-row", args=[released_block.pk]))
    html = row.content.decode()
    assert "Allocated" in html
    assert 'data-col="filled">150<' in html and 'data-col="leaves">0<' in html


@pytest.mark.parametrize(
    ("quantity", "message"),
    [("500", b"Only 150 of the block is left to route."), ("0", b"greater than or equal")],
)
def test_route_errors_show_on_the_row_and_write_nothing(
    trader, book, released_block, client_for, quantity, message
):
    events = AuditEvent.objects.count()
    response = client_for(trader).post(
        reverse("trading:block-route", args=[released_block.pk]),
        {"broker": book["broker"].pk, "quantity": quantity},
        headers=HTMX,
    )
    assert response.status_code == 422
    assert message in response.content
    assert not Route.objects.exists()
    assert AuditEvent.objects.count() == events


def test_route_without_htmx_redirects_to_the_block(trader, book, released_block, client_for):
    response = client_for(trader).post(
        reverse("trading:block-route", args=[released_block.pk]),
        {"broker": book["broker"].pk},
    )
    assert response.status_code == 302
    assert response["Location"] == released_block.get_absolute_url()
    assert Route.objects.get().quantity == Decimal(150)


def test_a_pm_cannot_route(pm, book, released_block, client_for):
    response = client_for(pm).post(
        reverse("trading:block-route", args=[released_block.pk]),
        {"broker": book["broker"].pk},
    )
    assert response.status_code == 403
    assert not Route.objects.exists()


def test_block_detail_shows_routes_executions_and_allocations(
    trader, book, released_block, client_for, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_create(actor=trader, block_id=released_block.pk, broker=book["broker"])
    response = client_for(trader).get(released_block.get_absolute_url())
    assert response.status_code == 200
    assert len(response.context["executions"]) >= 2
    assert {a.order.portfolio.code for a in response.context["allocations"]} == {"ACC1", "ACC2"}
    assert b"Block #%d" % released_block.pk in response.content


def test_blotter_query_count_does_not_grow_with_blocks(
    pm, trader, book, client_for, django_assert_max_num_queries
):
    orders = []
    for ticker in ("AAA", "BBB", "CCC", "DDD", "EEE"):
        for account in book["accounts"]:
            orders.append(
                order_services.order_create(
                    actor=pm,
                    portfolio=account,
                    security=book["securities"][ticker],
                    side="buy",
                    quantity=Decimal(10),
                )
            )
    ids = [o.pk for o in orders]
    order_services.orders_approve(actor=pm, order_ids=ids)
    order_services.orders_release(actor=pm, order_ids=ids)
    for block in Block.objects.all()[:3]:
        route_services.route_create(actor=trader, block_id=block.pk, broker=book["broker"])
    client = client_for(trader)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("trading:blotter"))
    assert len(response.context["rows"]) == 5


def test_the_blotter_sorts_searches_filters_and_totals(
    pm, trader, book, client_for, eager_celery, django_capture_on_commit_callbacks
):
    for ticker, quantity in (("AAA", 10), ("BBB", 30), ("CCC", 20)):
        order = order_services.order_create(
            actor=pm,
            portfolio=book["accounts"][0 if ticker != "CCC" else 1],
            security=book["securities"][ticker],
            side="buy",
            quantity=Decimal(quantity),
        )
        order_services.orders_approve(actor=pm, order_ids=[order.pk])
        order_services.orders_release(actor=pm, order_ids=[order.pk])
    aaa = Block.objects.get(security__ticker="AAA")
    with django_capture_on_commit_callbacks(execute=True):  # fills 10 at 100
        route_services.route_create(actor=trader, block_id=aaa.pk, broker=book["broker"])
    client = client_for(trader)

    def tickers(**params):
        page = client.get(reverse("trading:blotter"), params)
        return [row["block"].security.ticker for row in page.context["rows"]], page

    assert tickers(sort="quantity")[0] == ["AAA", "CCC", "BBB"]
    assert tickers(sort="-quantity")[0] == ["BBB", "CCC", "AAA"]
    assert tickers(sort="done")[0][-1] == "AAA"
    assert tickers(q="bb")[0] == ["BBB"]  # ticker prefix, any case
    assert tickers(q="ACC2")[0] == ["CCC"]  # an account
    assert tickers(account="ACC1", sort="ticker")[0] == ["AAA", "BBB"]
    assert tickers(broker="SIM")[0] == ["AAA"] and tickers(trader="trader")[0] == ["AAA"]
    names, page = tickers()
    totals = page.context["totals"]
    assert (totals["ordered"], totals["filled"], totals["leaves"]) == (60, 10, 50)
    assert totals["done"] == Decimal(10) / Decimal(60)
    assert totals["currencies"] == [
        {"currency": "USD", "notional": Decimal(1000), "average_price": None}
    ]
    one = tickers(security="AAA")[1].context["totals"]["currencies"][0]
    assert one["average_price"] == Decimal(100)  # one security: an average price means something


def test_cancelling_a_released_order_takes_it_out_of_its_block(trader, released_block, client_for):
    order = released_block.orders.order_by("pk").first()
    client = client_for(trader)
    assert client.get(order.get_absolute_url()).context["can_cancel"] is True
    response = client.post(
        reverse("trading:order-cancel", args=[order.pk]), {"reason": "client withdrew"}
    )
    assert response.status_code == 302
    order.refresh_from_db()
    released_block.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert released_block.quantity == Decimal(50)
    event = AuditEvent.objects.filter(kind="order.cancelled").get()
    assert (event.actor_name, event.reason) == ("trader", "client withdrew")


def test_approving_a_released_order_says_why_and_changes_nothing(pm, released_block, client_for):
    order = released_block.orders.first()
    events = AuditEvent.objects.count()
    response = client_for(pm).post(reverse("trading:order-approve", args=[order.pk]), follow=True)
    assert b"is released: it cannot become approved." in response.content
    order.refresh_from_db()
    assert order.status == Order.Status.RELEASED
    assert AuditEvent.objects.count() == events


def test_brokers_page_shows_each_fix_session_and_the_messages_not_applied(
    trader, pm, book, client_for, django_assert_max_num_queries
):
    from trading.models import Broker, FixInbox, FixOutbox, FixSession

    for code in ("FIXA", "FIXB"):
        broker = Broker.objects.create(code=code, name=code, adapter=Broker.Adapter.FIX)
        fs = FixSession.objects.create(
            broker=broker,
            sender_comp_id="OMS",
            target_comp_id=code,
            port=9000,
            logged_on=code == "FIXA",
            next_sender_seq=42,
        )
        FixOutbox.objects.create(session=fs, msg_type="D", fields=[])
    Broker.objects.create(code="NOSESS", name="n", adapter=Broker.Adapter.FIX)
    FixInbox.objects.create(
        session=fs,
        generation=1,
        seq_num=7,
        msg_type="8",
        raw=b"8=FIX.4.4",
        status=FixInbox.Status.NOT_APPLIED,
        error="trade bust",
    )
    FixInbox.objects.create(
        session=fs,
        generation=1,
        seq_num=8,
        msg_type="8",
        raw=b"x",
        status=FixInbox.Status.APPLIED,
        applied_at=timezone.now(),
    )
    client = client_for(trader)
    with django_assert_max_num_queries(8):  # not one per broker
        response = client.get(reverse("trading:broker-list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Logged on" in html and "Not logged on" in html
    assert "OMS-&gt;FIXA" in html and "42 / 1" in html
    assert "No FIX session configured" in html
    assert "trade bust" in html and "1/7" in html and "1/8" not in html
    assert [b.outbox_pending for b in response.context["brokers"] if b.code == "FIXA"] == [1]
    assert client_for(pm).get(reverse("trading:broker-list")).status_code == 403


def test_the_ticket_takes_a_lot_method_for_a_sell_and_the_order_shows_it(pm, book, client_for):
    client = client_for(pm)
    data = order_data(book, side="sell", security=book["securities"]["AAA"].pk, lot_method="hifo")
    response = client.post(reverse("trading:order-create"), data)
    order = Order.objects.get()
    assert response.status_code == 302 and order.lot_method == "hifo"
    page = client.get(order.get_absolute_url())
    assert "Highest cost first" in page.content.decode()
    # a buy closes no lots: a lot method on it is a form error, nothing written
    refused = client.post(reverse("trading:order-create"), order_data(book, lot_method="hifo"))
    assert refused.status_code == 422
    assert "sells only" in str(refused.context["form"].errors["lot_method"])
    assert Order.objects.count() == 1


def test_an_allocated_sell_shows_the_lots_it_closed_and_what_each_realised(
    pm, trader, book, client_for, eager_celery, django_capture_on_commit_callbacks
):
    order = order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["AAA"],
        side="sell",
        quantity=Decimal(100),
        lot_method="hifo",
    )
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_create(actor=trader, block_id=order.block_id, broker=book["broker"])
    page = client_for(pm).get(order.get_absolute_url())
    closings = page.context["closings"]
    # the one lot of 600 at 30, sold at 100: 7,000 long term
    assert [(c.quantity, c.realised_gain, c.term) for c in closings] == [
        (Decimal(100), Decimal(7000), "long")
    ]
    html = page.content.decode()
    assert 'id="lot-closings"' in html and "7,000.00" in html and "Highest cost first" in html
