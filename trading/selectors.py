"""Reads shared by pages, the API and tasks."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import QuerySet

from oms.roles import Action, sees_all_accounts
from portfolios.models import Price

from .models import Allocation, Block, Broker, Execution, FixInbox, FixOutbox, Order, Route


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


def settlement_date_differences(limit: int = 100) -> QuerySet[Allocation]:
    """The latest allocations booked on a broker's settlement date that differs from
    ours (decision 49), newest first, for operations to check with the broker."""
    return (
        Allocation.objects.filter(computed_settlement_date__isnull=False)
        .select_related("block__security", "order__portfolio")
        .order_by("-pk")[:limit]
    )


def executions_with_route() -> QuerySet[Execution]:
    return Execution.objects.select_related("route__block__security", "broker")


def blotter_changes(since) -> list[dict]:
    """The push channel's replay for the blotter: blocks changed since a moment
    (the block itself, or one of its routes)."""
    from django.db.models import Max, Q
    from django.db.models.functions import Coalesce, Greatest

    rows = (
        Block.objects.filter(Q(updated_at__gt=since) | Q(routes__updated_at__gt=since))
        .values("pk")
        .annotate(v=Greatest("updated_at", Coalesce(Max("routes__updated_at"), "updated_at")))
        .order_by()[:1000]
    )
    # v, the block's version, lets a page skip what it already shows
    return [{"block": row["pk"], "v": row["v"].isoformat()} for row in rows]


def block_version(block: Block, routes) -> str:
    """A block's version as a page shows it: its latest change or its routes'."""
    return max([block.updated_at, *(route.updated_at for route in routes)]).isoformat()


BLOTTER_SORTS = {
    "block": "pk",
    "ticker": "security__ticker",
    "side": "side",
    "quantity": "quantity",
    "filled": "filled_quantity",
    "leaves": "leaves",
    "done": "done",
    "price": "average_price",
    "notional": "notional",
    "status": "status",
    "updated": "updated_at",
}


def blotter_rows(queryset, sort: str = ""):
    """Blocks as the blotter lists them, one line each, with leaves, % done and
    notional computed in the query (so the columns sort), newest first unless
    sorted by a column (``sort``: a BLOTTER_SORTS key, ``-`` for descending)."""
    from django.db.models import Case, DecimalField, ExpressionWrapper, F, Prefetch, Value, When

    decimal = DecimalField(max_digits=38, decimal_places=10)
    rows = queryset.select_related("security").annotate(
        leaves=Case(
            When(
                status__in=list(Block.OPEN_STATES),
                then=F("quantity") - F("filled_quantity"),
            ),
            default=Value(0),
            output_field=decimal,
        ),
        done=ExpressionWrapper(F("filled_quantity") / F("quantity"), output_field=decimal),
        notional=ExpressionWrapper(
            F("filled_quantity") * F("average_price") * F("security__multiplier"),
            output_field=decimal,
        ),
    )
    key = sort.lstrip("-")
    if key in BLOTTER_SORTS:
        field = BLOTTER_SORTS[key]
        rows = rows.order_by(f"-{field}" if sort.startswith("-") else field, "-pk")
    routes = Route.objects.select_related("broker").order_by("pk")
    orders = Order.objects.select_related("portfolio").order_by("portfolio__code", "pk")
    return rows.prefetch_related(Prefetch("routes", routes), Prefetch("orders", orders))


def blotter_totals(queryset) -> dict:
    """Totals of the blocks a blotter view shows: ordered, filled, leaves, %
    done, and by currency the notional and its average price."""
    from django.db.models import Case, Count, DecimalField, F, Sum, Value, When

    decimal = DecimalField(max_digits=38, decimal_places=10)
    blocks = Block.objects.filter(pk__in=queryset.values("pk"))
    totals = blocks.aggregate(
        ordered=Sum("quantity"),
        filled=Sum("filled_quantity"),
        leaves=Sum(
            Case(
                When(
                    status__in=list(Block.OPEN_STATES),
                    then=F("quantity") - F("filled_quantity"),
                ),
                default=Value(0),
                output_field=decimal,
            )
        ),
        commission=Sum("commission"),
        securities=Count("security", distinct=True),
    )
    by_currency = (
        blocks.filter(filled_quantity__gt=0)
        .values("security__currency")
        .annotate(
            notional=Sum(
                F("filled_quantity") * F("average_price") * F("security__multiplier"),
                output_field=decimal,
            ),
            filled=Sum("filled_quantity"),
        )
        .order_by("security__currency")
    )
    ordered = totals["ordered"] or Decimal(0)
    filled = totals["filled"] or Decimal(0)
    currencies = [
        {
            "currency": row["security__currency"],
            "notional": row["notional"],
            # an average price means something for one security only
            "average_price": (row["notional"] / row["filled"])
            if totals["securities"] == 1 and row["filled"]
            else None,
        }
        for row in by_currency
    ]
    return {
        "ordered": ordered,
        "filled": filled,
        "leaves": totals["leaves"] or Decimal(0),
        "commission": totals["commission"] or Decimal(0),
        "done": (filled / ordered) if ordered else 0,
        "currencies": currencies,
    }
