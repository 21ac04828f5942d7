"""Reads shared by pages, the API and tasks."""

from __future__ import annotations

from decimal import Decimal

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
