"""API views of orders, blocks, routes, executions, allocations and brokers: parse,
call one service, render."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from oms.api.base import OMSViewSet
from oms.api.idempotency import idempotent
from oms.roles import Action
from portfolios.selectors import portfolios_visible_to
from trading.filters import BlockFilter, ExecutionFilter, OrderFilter, RouteFilter
from trading.models import Allocation, Block, Broker, Execution, Order, Route
from trading.selectors import (
    blotter_blocks,
    executions_with_route,
    orders_visible_to,
    routes_with_broker,
)
from trading.services import blocks as block_services
from trading.services import orders as order_services
from trading.services import routes as route_services

from . import serializers as s

READ = (mixins.ListModelMixin, mixins.RetrieveModelMixin)


def _reason(view) -> str:
    """The optional reason a person gave for a step (validated: a 400 when it is not text)."""
    return view.parsed(s.ReasonSerializer).get("reason", "")


def _step_with_reason(view, service, id_name: str) -> Response:
    """Take one step on the object the URL names, with the reason given: `service` is
    called with the actor, that object's id as `id_name`, and the reason; the answer is
    the object as a GET shows it."""
    obj = view.get_object()
    service(actor=view.request.user, reason=_reason(view), **{id_name: obj.pk})
    return view.rendered(obj)


class OrderViewSet(*READ, OMSViewSet):
    """Orders, one account and one security each. Portfolio managers see the orders of
    the accounts they manage; the desk, compliance and operations see all."""

    serializer_class = s.OrderSerializer
    filterset_class = OrderFilter
    read_action = Action.ORDER_VIEW
    action_permissions = {
        "create": Action.ORDER_CREATE,
        "approve": Action.ORDER_APPROVE,
        "release": Action.ORDER_RELEASE,
        "cancel": Action.ORDER_CANCEL,
    }

    queryset = Order.objects.all()

    def visible_to(self, user):
        return orders_visible_to(user)

    @extend_schema(
        request=s.OrderCreateSerializer,
        responses={201: s.OrderSerializer},
        examples=[
            OpenApiExample(
                "A market order",
                request_only=True,
                value={"portfolio": "ACC1", "security": "AAA", "side": "buy", "quantity": "100"},
            ),
            OpenApiExample(
                "A limit order, good till a date",
                request_only=True,
                value={
                    "portfolio": "ACC1",
                    "security": "AAA",
                    "side": "buy",
                    "quantity": "100",
                    "order_type": "limit",
                    "limit_price": "101.25",
                    "time_in_force": "gtd",
                    "expire_at": "2099-12-31T21:00:00Z",
                },
            ),
        ],
    )
    @idempotent
    def create(self, request):
        """Create a draft order."""
        terms = self.parsed(s.OrderCreateSerializer, portfolios=portfolios_visible_to(request.user))
        order = order_services.order_create(actor=request.user, **terms)
        return self.rendered(order, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.OrderSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, pk=None):
        """Approve a draft order for release to the desk."""
        order = self.get_object()
        order_services.orders_approve(actor=request.user, order_ids=[order.pk])
        return self.rendered(order)

    @extend_schema(request=None, responses={200: s.OrderSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def release(self, request, pk=None):
        """Release an approved order to the trading desk: it joins a block."""
        order = self.get_object()
        order_services.orders_release(actor=request.user, order_ids=[order.pk])
        return self.rendered(order)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.OrderSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        """Cancel an order that has not reached a broker."""
        return _step_with_reason(self, order_services.order_cancel, "order_id")


class BlockViewSet(*READ, OMSViewSet):
    """Blocks: released orders for one security and side, traded as one."""

    serializer_class = s.BlockSerializer
    filterset_class = BlockFilter
    read_action = Action.BLOCK_VIEW
    action_permissions = {"route": Action.BLOCK_ROUTE, "done_for_day": Action.BLOCK_ROUTE}

    queryset = Block.objects.all()

    def visible_to(self, user):
        return blotter_blocks().prefetch_related(
            Prefetch("orders", queryset=Order.objects.only("pk", "block_id").order_by("pk"))
        )

    @extend_schema(request=s.RouteRequestSerializer, responses={201: s.RouteSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def route(self, request, pk=None):
        """Route all or part of the block to a broker; the routing worker sends it."""
        block = self.get_object()
        data = self.parsed(s.RouteRequestSerializer)
        route = route_services.route_create(
            actor=request.user,
            block_id=block.pk,
            broker=data["broker"],
            quantity=data.get("quantity"),
        )
        route = routes_with_broker().get(pk=route.pk)
        return Response(s.RouteSerializer(route).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ReasonSerializer, responses={200: s.BlockSerializer})
    @action(detail=True, methods=["post"], url_path="done-for-day")
    @idempotent
    def done_for_day(self, request, pk=None):
        """End a partly filled block for the day once its routes have ended: what
        filled is allocated to the account orders. 400 while a route still works."""
        return _step_with_reason(self, block_services.block_done_for_day, "block_id")


class RouteViewSet(*READ, OMSViewSet):
    """Routes: one order message chain to one broker for (part of) a block."""

    serializer_class = s.RouteSerializer
    filterset_class = RouteFilter
    read_action = Action.BLOCK_VIEW
    action_permissions = {"cancel": Action.BLOCK_ROUTE, "replace": Action.BLOCK_ROUTE}

    queryset = Route.objects.all()

    def visible_to(self, user):
        return routes_with_broker()

    @extend_schema(request=s.ReasonSerializer, responses={200: s.RouteSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        """Ask the broker to cancel what is left of the route: it turns *pending
        cancel* until the broker answers (a route not sent yet is cancelled at
        once). 409 when the route is done."""
        route = self.get_object()
        route_services.route_cancel(
            actor=request.user,
            route_id=route.pk,
            reason=_reason(self),
        )
        return Response(s.RouteSerializer(routes_with_broker().get(pk=route.pk)).data)

    @extend_schema(request=s.RouteReplaceSerializer, responses={200: s.RouteSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def replace(self, request, pk=None):
        """Amend a working route (cancel/replace): new quantity, limit price, stop
        price or time in force. It turns *pending replace* until the broker
        answers; a reject leaves it as it was. 400 for terms that cannot be
        (below what filled, beyond the block, off the tick, not taken by the
        broker); 409 when the route cannot be amended now."""
        route = self.get_object()
        data = self.parsed(s.RouteReplaceSerializer)
        route_services.route_replace(
            actor=request.user,
            route_id=route.pk,
            quantity=data.get("quantity"),
            limit_price=data.get("limit_price"),
            stop_price=data.get("stop_price"),
            time_in_force=data.get("time_in_force"),
            expire_at=data.get("expire_at"),
            reason=data.get("reason", ""),
        )
        return Response(s.RouteSerializer(routes_with_broker().get(pk=route.pk)).data)


class ExecutionViewSet(*READ, OMSViewSet):
    """Execution reports (fills and status changes) as the brokers sent them."""

    serializer_class = s.ExecutionSerializer
    filterset_class = ExecutionFilter
    read_action = Action.EXECUTION_VIEW

    queryset = Execution.objects.all()

    def visible_to(self, user):
        return executions_with_route()


class AllocationViewSet(*READ, OMSViewSet):
    """Fills booked to account orders, at the block's average price."""

    serializer_class = s.AllocationSerializer
    #: ``computed_settlement_date__isnull=false``: the ones booked on a broker's
    #: settlement date apart from ours (decision 49)
    filterset_fields = {
        "block": ["exact"],
        "order": ["exact"],
        "computed_settlement_date": ["isnull"],
    }
    read_action = Action.ORDER_VIEW

    queryset = Allocation.objects.all()

    def visible_to(self, user):
        return Allocation.objects.select_related("block__security", "order__portfolio").filter(
            order__in=orders_visible_to(user).values("pk")
        )


class BrokerViewSet(*READ, OMSViewSet):
    """Brokers that blocks can be routed to."""

    queryset = Broker.objects.all()
    serializer_class = s.BrokerSerializer
    read_action = Action.REFERENCE_VIEW
