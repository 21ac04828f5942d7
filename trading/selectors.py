"""Reads shared by pages, the API and tasks."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet

from oms.roles import sees_all_portfolios
from portfolios.models import Price

from .models import Block, Execution, Order, Route


def latest_price_by_ticker(ticker: str) -> Decimal | None:
    return (
        Price.objects.filter(security__ticker=ticker)
        .order_by("-as_of")
        .values_list("price", flat=True)
        .first()
    )


def orders_visible_to(user) -> QuerySet[Order]:
    qs = Order.objects.select_related(
        "portfolio", "security", "block", "created_by", "approved_by", "released_by"
    )
    if sees_all_portfolios(user):
        return qs
    return qs.filter(portfolio__manager=user)


def blotter_blocks() -> QuerySet[Block]:
    return Block.objects.select_related("security").prefetch_related("routes__broker")


def routes_with_broker() -> QuerySet[Route]:
    return Route.objects.select_related("broker", "block__security", "created_by")


def executions_with_route() -> QuerySet[Execution]:
    return Execution.objects.select_related("route__block__security", "broker")
