"""Reads shared by pages, the API and tasks."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import QuerySet

from oms.roles import Action, sees_all_accounts
from portfolios.models import Price

from .models import Block, Broker, Execution, FixInbox, FixOutbox, Order, Route


def latest_price_by_ticker(ticker: str) -> Decimal | None:
    return (
        Price.objects.filter(security__ticker=ticker)
        .order_by("-as_of")
        .values_list("price", flat=True)
        .first()
    )


def simulated_book_order(cl_ord_id: str):
    """The in-worker simulated broker's view of an order: the route as the OMS
    has applied its reports (that broker keeps no book of its own)."""
    from trading.brokers.simulated import OrderState

    row = (
        Route.objects.filter(cl_ord_id=cl_ord_id)
        .annotate(acked=models.Exists(Execution.objects.filter(route=models.OuterRef("pk"))))
        .values("status", "quantity", "filled_quantity", "order_type", "limit_price", "acked")
        .first()
    )
    if row is None:
        return None
    return OrderState(
        status=row["status"],
        quantity=row["quantity"],
        filled_quantity=row["filled_quantity"],
        order_type=row["order_type"],
        limit_price=row["limit_price"],
        acknowledged=row["acked"],
    )


def exchange_of(security) -> str:
    """The exchange (MIC) whose calendar a security's day orders follow: by the
    security's country (OMS_EXCHANGE_BY_COUNTRY), else OMS_DEFAULT_EXCHANGE."""
    from django.conf import settings

    by_country = settings.OMS_EXCHANGE_BY_COUNTRY
    return by_country.get(security.country or "", settings.OMS_DEFAULT_EXCHANGE)


def orders_visible_to(user) -> QuerySet[Order]:
    qs = Order.objects.select_related(
        "portfolio", "security", "block", "created_by", "approved_by", "released_by"
    )
    if sees_all_accounts(user, Action.ORDER_VIEW):
        return qs
    return qs.filter(portfolio__manager=user)


def blotter_blocks() -> QuerySet[Block]:
    return Block.objects.select_related("security").prefetch_related("routes__broker")


def routes_with_broker() -> QuerySet[Route]:
    return Route.objects.select_related("broker", "block__security", "created_by")


def brokers_with_connection_state() -> QuerySet[Broker]:
    """Brokers, with their FIX session (if any) and its outbox counts, in one query."""
    from django.db.models import Count, Q

    return Broker.objects.select_related("fix_session").annotate(
        outbox_pending=Count(
            "fix_session__outbox",
            filter=Q(fix_session__outbox__status=FixOutbox.Status.PENDING),
        ),
        outbox_failed=Count(
            "fix_session__outbox",
            filter=Q(fix_session__outbox__status=FixOutbox.Status.FAILED),
        ),
    )


def fix_messages_not_applied() -> QuerySet[FixInbox]:
    """Messages from brokers that are stored but not applied, newest first."""
    return (
        FixInbox.objects.exclude(status=FixInbox.Status.APPLIED)
        .select_related("session__broker")
        .order_by("-received_at", "-pk")
    )


def executions_with_route() -> QuerySet[Execution]:
    return Execution.objects.select_related("route__block__security", "broker")
