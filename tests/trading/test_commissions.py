"""Commissions follow each broker's schedule (per share, basis points of the
notional, a minimum per order), are charged on each fill, allocated pro rata
with it and booked net in cash; the block page and the API show gross,
commission and net."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolios.models import CashBalance
from tests.desk import released_block
from trading.models import Allocation, Block, Execution
from trading.services import routes as route_services
from trading.services.allocations import split_commission

pytestmark = pytest.mark.django_db


def test_a_commission_is_charged_per_fill_allocated_pro_rata_and_booked_net(
    pm, trader, book, client, eager_celery, django_capture_on_commit_callbacks
):
    broker = book["broker"]
    broker.settings |= {"commission": {"per_share": "0.01", "bps": "5", "minimum": "10"}}
    broker.save()
    block = released_block(pm, book, "60", "40")  # AAA trades at 100
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=block.pk, broker=broker)
    # two fills of 50 at 100: each 50 x 0.01 + 5 bp of 5,000 = 3.00; the first
    # makes up the 10.00 minimum, the second pays its 3.00
    fills = Execution.objects.filter(route=route, exec_type="trade").order_by("pk")
    assert [f.commission for f in fills] == [Decimal("10.00"), Decimal("3.00")]
    block.refresh_from_db()
    route.refresh_from_db()
    assert route.commission == block.commission == Decimal("13.00")
    assert block.status == Block.Status.ALLOCATED
    by_account = {
        a.order.portfolio.code: a for a in Allocation.objects.select_related("order__portfolio")
    }
    acc1, acc2 = by_account["ACC1"], by_account["ACC2"]
    assert (acc1.gross_amount, acc1.commission, acc1.net_amount) == (
        Decimal(6000),
        Decimal("7.80"),
        Decimal("6007.80"),
    )
    assert (acc2.commission, acc2.net_amount) == (Decimal("5.20"), Decimal("4005.20"))
    cash = {
        c.portfolio.code: c.amount
        for c in CashBalance.objects.select_related("portfolio").filter(currency="USD")
    }
    assert cash == {"ACC1": Decimal("13992.20"), "ACC2": Decimal("994.80")}

    client.force_login(trader)
    page = client.get(block.get_absolute_url()).content.decode()
    assert "6,007.80" in page and "7.80" in page
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=trader).key}")
    data = api.get("/api/v1/allocations/", {"block": block.pk}).json()["results"]
    assert {(a["commission"], a["net_amount"]) for a in data} == {
        ("7.8000", "6007.8000"),
        ("5.2000", "4005.2000"),
    }


def test_a_commission_split_adds_up_to_the_cent():
    # 10.00 over three equal accounts: 3.34, 3.33, 3.33 (the lowest id takes the cent)
    shares = split_commission(Decimal("10.00"), {1: Decimal(1), 2: Decimal(1), 3: Decimal(1)})
    assert shares == {1: Decimal("3.34"), 2: Decimal("3.33"), 3: Decimal("3.33")}
    assert split_commission(Decimal(0), {1: Decimal(5)}) == {1: Decimal(0)}
    assert split_commission(Decimal("1"), {1: Decimal(0), 2: Decimal(3)}) == {
        1: Decimal(0),
        2: Decimal("1.00"),
    }
