"""Trading pages: orders, the trader's blotter of blocks, routing, fills.

Thin views: parse input, call one service (or read through a selector), render.
The blotter refreshes each working block's row from a server-rendered fragment
(Healthchecks-style) until the block is done: the fills come from the worker.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from oms.roles import Action, can, may_act_for
from oms.views import (
    REFUSED,
    action_required,
    add_service_errors,
    paginate,
    partial_or_page,
    refusal,
    refusal_messages,
    service_step,
)
from portfolios.models import LotClosing
from portfolios.selectors import portfolios_for_action

from . import selectors
from .filters import BlockFilter, OrderFilter
from .forms import OrderForm, RouteForm, RouteReplaceForm
from .models import Block, Broker, FixInbox, Order, Route, StatementBreak, TimeInForce
from .services import blocks as block_services
from .services import breaks as break_services
from .services import day_end
from .services import orders as order_services
from .services import routes as route_services

# --- Brokers ------------------------------------------------------------------------


@action_required(Action.EXECUTION_VIEW)
def broker_list(request: HttpRequest) -> HttpResponse:
    """Each broker and how it is reached; for FIX brokers, whether the gateway
    is logged on, its sequence numbers and outbox, and the broker's messages
    that were stored but could not be applied (busts, unknown orders, ...)."""
    context = {
        "brokers": selectors.brokers_with_connection_state(),
        "problems": paginate(request, selectors.fix_messages_not_applied()),
    }
    return render(request, "trading/broker_list.html", context)


# --- Reconciliation: what needs a person ------------------------------------------


@action_required(Action.EXECUTION_VIEW)
def reconciliation(request: HttpRequest) -> HttpResponse:
    """What the automatic checks could not settle: routes the order status sweep
    asked about without an answer, trade busts and corrections from brokers, and
    differences with the custodian's or broker's statements."""
    context = {
        "routes": day_end.routes_needing_a_person(),
        "can_act": can(request.user, Action.BLOCK_ROUTE),
        "tries": settings.OMS_ROUTE_STATUS_TRIES,
        **reconciliation_context(request),
    }
    return render(request, "trading/reconciliation.html", context)


def reconciliation_context(request: HttpRequest) -> dict:
    """The breaks sections: busts and corrections from brokers, statement breaks."""
    breaks = StatementBreak.objects.select_related("portfolio", "security", "statement").filter(
        status=StatementBreak.Status.OPEN
    )
    return {
        "corrections": break_services.trade_corrections(),
        "settlement_differences": selectors.settlement_date_differences(),
        "statement_breaks": breaks,
        "can_resolve": can(request.user, Action.BREAK_RESOLVE),
        "now": timezone.now(),
        "form_errors": [],
    }


@require_POST
@action_required(Action.BREAK_RESOLVE)
def correction_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply a broker's bust or correction, or dismiss it with a reason."""
    get_object_or_404(FixInbox, pk=pk)
    if request.POST.get("action") == "apply":
        service_step(
            request,
            lambda: break_services.correction_apply(actor=request.user, inbox_id=pk),
            "Applied: the fill and its allocations follow.",
        )
    else:
        service_step(
            request,
            lambda: break_services.correction_dismiss(
                actor=request.user, inbox_id=pk, reason=request.POST.get("reason", "")
            ),
            "Dismissed.",
        )
    return redirect("trading:reconciliation")


def _statement_date(text: str):
    """The statement's date as typed (YYYY-MM-DD); today when left blank."""
    text = text.strip()
    if not text:
        return timezone.now().date()
    try:
        as_of = parse_date(text)
    except ValueError:  # well formed, but no such day (2026-02-30)
        as_of = None
    if as_of is None:
        raise ValidationError({"as_of": [f"{text} is not a date (YYYY-MM-DD)."]})
    return as_of


@require_POST
@action_required(Action.BREAK_RESOLVE)
def statement_upload(request: HttpRequest) -> HttpResponse:
    """Import a custodian's or broker's statement (CSV) and list its differences."""
    upload = request.FILES.get("file")
    try:
        as_of = _statement_date(request.POST.get("as_of", ""))
        if upload is None:
            raise ValidationError({"file": ["Choose a CSV file."]})
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"file": ["The file is not UTF-8 text."]}) from None
        statement = break_services.statement_import(
            actor=request.user,
            text=text,
            source=request.POST.get("source", ""),
            as_of=as_of,
            file_name=upload.name,
        )
    except ValidationError as error:
        context = {
            "routes": day_end.routes_needing_a_person(),
            "can_act": can(request.user, Action.BLOCK_ROUTE),
            "tries": settings.OMS_ROUTE_STATUS_TRIES,
            **reconciliation_context(request),
        }
        context["form_errors"] = refusal_messages(error)
        return render(request, "trading/reconciliation.html", context, status=422)
    messages.success(
        request, f"{statement}: {statement.lines} lines, {statement.breaks.count()} differences."
    )
    return redirect("trading:reconciliation")


@require_POST
@action_required(Action.BREAK_RESOLVE)
def statement_break_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(StatementBreak, pk=pk)
    resolve = request.POST.get("action") == "resolve"
    service_step(
        request,
        lambda: break_services.statement_break_resolve(
            actor=request.user, break_id=pk, note=request.POST.get("note", ""), resolve=resolve
        ),
        "Resolved." if resolve else "Note kept.",
    )
    return redirect("trading:reconciliation")


@require_POST
@action_required(Action.BLOCK_ROUTE)
def route_ask_again(request: HttpRequest, pk: int) -> HttpResponse:
    route = get_object_or_404(Route, pk=pk)
    if day_end.route_ask_again(actor=request.user, route_id=route.pk):
        messages.success(request, f"Asked {route.broker} again for route {route.cl_ord_id}.")
    else:
        messages.error(request, f"Route {route.cl_ord_id} has ended: nothing to ask.")
    return redirect("trading:reconciliation")


@require_POST
@action_required(Action.BLOCK_ROUTE)
def route_close_by_hand(request: HttpRequest, pk: int) -> HttpResponse:
    route = get_object_or_404(Route, pk=pk)
    service_step(
        request,
        lambda: day_end.route_close_by_hand(
            actor=request.user,
            route_id=route.pk,
            status=request.POST.get("status", ""),
            reason=request.POST.get("reason", ""),
        ),
        f"Route {route.cl_ord_id} closed on the broker's word.",
    )
    return redirect("trading:reconciliation")


# --- Orders ------------------------------------------------------------------------


@action_required(Action.ORDER_VIEW)
def order_list(request: HttpRequest) -> HttpResponse:
    filterset = OrderFilter(request.GET or None, queryset=selectors.orders_visible_to(request.user))
    context = {
        "filterset": filterset,
        "page": paginate(request, filterset.qs),
        "can_create": can(request.user, Action.ORDER_CREATE),
    }
    return partial_or_page(
        request, "trading/order_list.html", "trading/partials/order_table.html", context
    )


def _order_actions(user, order: Order) -> dict:
    block_open = order.block is None or order.block.status == Block.Status.OPEN
    portfolio = order.portfolio
    return {
        "can_approve": may_act_for(user, Action.ORDER_APPROVE, portfolio)
        and order.status == Order.Status.DRAFT,
        "can_release": may_act_for(user, Action.ORDER_RELEASE, portfolio)
        and order.status == Order.Status.APPROVED,
        "can_cancel": may_act_for(user, Action.ORDER_CANCEL, portfolio)
        and block_open
        and Order.Status.CANCELLED in Order.TRANSITIONS[order.status],
    }


@action_required(Action.ORDER_VIEW)
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(selectors.orders_visible_to(request.user), pk=pk)
    context = {
        "order": order,
        "perms_block": can(request.user, Action.BLOCK_VIEW),
        "perms_compliance": can(request.user, Action.COMPLIANCE_VIEW),
        **_order_actions(request.user, order),
    }
    if hasattr(order, "allocation"):
        context["allocation"] = order.allocation
        context["closings"] = list(
            LotClosing.objects.filter(allocation_id=order.allocation.pk)
            .select_related("lot")
            .order_by("pk")
        )
    return render(request, "trading/order_detail.html", context)


@action_required(Action.ORDER_CREATE)
def order_create(request: HttpRequest) -> HttpResponse:
    """A manual order: it starts as a draft, to approve and release like any other."""
    mine = portfolios_for_action(request.user, Action.ORDER_CREATE)
    if request.method == "POST":
        form = OrderForm(request.POST, portfolios=mine)
        if form.is_valid():
            try:
                order = order_services.order_create(actor=request.user, **form.order_terms())
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, f"{order} created as a draft.")
                return redirect(order)
        status = 422
    else:
        form = OrderForm(initial={"portfolio": request.GET.get("portfolio")}, portfolios=mine)
        status = 200
    return render(request, "trading/order_form.html", {"form": form}, status=status)


def _order_step(request: HttpRequest, pk: int, step) -> HttpResponse:
    order = get_object_or_404(selectors.orders_visible_to(request.user), pk=pk)
    service_step(request, lambda: step(order), lambda message: message)
    return redirect(order)


@require_POST
@action_required(Action.ORDER_APPROVE)
def order_approve(request: HttpRequest, pk: int) -> HttpResponse:
    def step(order):
        [approved] = order_services.orders_approve(actor=request.user, order_ids=[order.pk])
        if approved.status != Order.Status.APPROVED:
            raise ValidationError(approved.compliance_note or f"{order} did not pass compliance.")
        return f"{order} approved. {approved.compliance_note}".strip()

    return _order_step(request, pk, step)


@require_POST
@action_required(Action.ORDER_RELEASE)
def order_release(request: HttpRequest, pk: int) -> HttpResponse:
    def step(order):
        order_services.orders_release(actor=request.user, order_ids=[order.pk])
        return f"{order} released to the trading desk."

    return _order_step(request, pk, step)


@require_POST
@action_required(Action.ORDER_CANCEL)
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    def step(order):
        order_services.order_cancel(
            actor=request.user, order_id=order.pk, reason=request.POST.get("reason", "")
        )
        return f"{order} cancelled."

    return _order_step(request, pk, step)


# --- Blotter and blocks -------------------------------------------------------------

BLOTTER_PAGE = 100


def _blocks():
    """Blocks with everything a blotter row shows, in a fixed number of queries."""
    return selectors.blotter_rows(Block.objects.all())


def _row_context(request: HttpRequest, block: Block, brokers, **extra) -> dict:
    can_route = can(request.user, Action.BLOCK_ROUTE)
    routes = list(block.routes.all())
    live = [r for r in routes if r.status not in Route.TERMINAL_STATES]
    amendable = [r for r in live if r.status in Route.REPLACEABLE_STATES]
    return {
        "block": block,
        "live": block.status in Block.LIVE_STATES,
        "brokers": brokers,
        "routes": routes,
        "version": selectors.block_version(block, routes),
        "live_routes": live,
        # the route a key press amends: the block's one working route
        "amend_route": amendable[0] if can_route and len(amendable) == 1 else None,
        "can_route": can_route
        and block.status in Block.OPEN_STATES
        and block.unrouted_quantity > 0,
        **extra,
    }


def _blotter_filter(request: HttpRequest) -> BlockFilter:
    return BlockFilter(request.GET or None, queryset=Block.objects.all())


@action_required(Action.BLOCK_VIEW)
def blotter(request: HttpRequest) -> HttpResponse:
    """The trader's blotter: one line per block, with filters (status, trader,
    broker, security, account, search), sortable columns and totals; it
    follows fills and new blocks on the push channel, without a reload, and
    routes or amends from a ticket that opens on a key (r, a)."""
    filterset = _blotter_filter(request)
    sort = request.GET.get("sort", "")
    rows_qs = selectors.blotter_rows(filterset.qs, sort)
    page = paginate(request, rows_qs, per_page=BLOTTER_PAGE)
    brokers = list(Broker.objects.filter(is_active=True))
    rows = [_row_context(request, block, brokers) for block in page.object_list]
    query = request.GET.copy()
    query.pop("sort", None)
    query.pop("page", None)
    context = {
        "filterset": filterset,
        "page": page,
        "rows": rows,
        "brokers": brokers,
        "totals": selectors.blotter_totals(filterset.qs),
        "sort": sort,
        "query": query.urlencode(),
        "statuses": Block.Status.choices,
        "current_status": request.GET.getlist("status"),
        "tifs": TimeInForce.choices,
        "can_route": can(request.user, Action.BLOCK_ROUTE),
        "columns": _BLOTTER_COLUMNS,
    }
    return render(request, "trading/blotter.html", context)


_BLOTTER_COLUMNS = [
    ("block", "Block", ""),
    ("side", "Side", ""),
    ("ticker", "Security", ""),
    (None, "Terms", ""),
    ("quantity", "Ordered", "num"),
    ("filled", "Filled", "num"),
    ("leaves", "Leaves", "num"),
    ("done", "% done", "num"),
    ("price", "Avg price", "num"),
    ("notional", "Gross", "num"),
    (None, "Comm.", "num"),
    (None, "Net", "num"),
    (None, "Brokers", ""),
    (None, "Accounts", ""),
    ("status", "Status", ""),
    ("updated", "Updated", "num"),
]


@action_required(Action.BLOCK_VIEW)
def blotter_rows(request: HttpRequest) -> HttpResponse:
    """Fresh rows for the blocks a page heard of (``ids``), under the page's own
    filters: one request however many changed. Blocks that no longer match
    the filters come back in the X-Blotter-Gone header, for the page to drop."""
    try:
        ids = [int(i) for i in request.GET.get("ids", "").split(",") if i][:200]
    except ValueError:
        return HttpResponse("ids are block numbers", status=400)
    filterset = _blotter_filter(request)
    blocks = list(selectors.blotter_rows(filterset.qs.filter(pk__in=ids)))
    brokers = list(Broker.objects.filter(is_active=True))
    rows = [_row_context(request, block, brokers) for block in blocks]
    response = render(request, "trading/partials/blotter_rows.html", {"rows": rows})
    response["X-Blotter-Gone"] = ",".join(str(i) for i in set(ids) - {b.pk for b in blocks})
    return response


@action_required(Action.BLOCK_VIEW)
def block_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One blotter row."""
    block = get_object_or_404(_blocks(), pk=pk)
    brokers = list(Broker.objects.filter(is_active=True))
    return render(
        request,
        "trading/partials/blotter_rows.html",
        {"rows": [_row_context(request, block, brokers)]},
    )


@require_POST
@action_required(Action.BLOCK_ROUTE)
def route_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    route = get_object_or_404(Route.objects.select_related("block"), pk=pk)
    service_step(
        request,
        lambda: route_services.route_cancel(
            actor=request.user, route_id=route.pk, reason=request.POST.get("reason", "")
        ),
        f"Cancel requested for route {route.cl_ord_id}.",
    )
    return redirect("trading:block-detail", pk=route.block_id)


@require_POST
@action_required(Action.BLOCK_ROUTE)
def route_replace(request: HttpRequest, pk: int) -> HttpResponse:
    """Amend a working route (cancel/replace) from the block page or the blotter."""
    route = get_object_or_404(Route.objects.select_related("block"), pk=pk)
    form = RouteReplaceForm(request.POST)
    if not form.is_valid():
        # each message names its field: the amend ticket shows them in one line
        said = [
            f"{form[name].label}: {error}" if name in form.fields else error
            for name, errors in form.errors.items()
            for error in errors
        ]
        if _wants_json(request):
            return JsonResponse({"ok": False, "errors": said}, status=422)
        for error in said:
            messages.error(request, error)
        return redirect("trading:block-detail", pk=route.block_id)
    terms = form.changed_terms(route)
    error_text = ""
    try:
        route_services.route_replace(actor=request.user, route_id=route.pk, **terms)
    except REFUSED as error:
        error_text = refusal(error)
    if _wants_json(request):
        if error_text:
            return JsonResponse({"ok": False, "errors": [error_text]}, status=422)
        return JsonResponse({"ok": True, "message": f"Amend sent for {route.cl_ord_id}."})
    if error_text:
        messages.error(request, error_text)
    else:
        messages.success(request, f"Amend sent for route {route.cl_ord_id}.")
    return redirect("trading:block-detail", pk=route.block_id)


@require_POST
@action_required(Action.BLOCK_ROUTE)
def block_done_for_day(request: HttpRequest, pk: int) -> HttpResponse:
    """End a partly filled block for the day: what filled is allocated."""
    block = get_object_or_404(Block, pk=pk)
    service_step(
        request,
        lambda: block_services.block_done_for_day(
            actor=request.user, block_id=block.pk, reason=request.POST.get("reason", "")
        ),
        f"Block #{block.pk} is done for the day; its fills are allocated.",
    )
    return redirect(block)


@action_required(Action.BLOCK_VIEW)
def block_detail(request: HttpRequest, pk: int) -> HttpResponse:
    block = get_object_or_404(_blocks(), pk=pk)
    brokers = list(Broker.objects.filter(is_active=True))
    context = _row_context(request, block, brokers)
    context["can_end_day"] = (
        can(request.user, Action.BLOCK_ROUTE)
        and block.status == Block.Status.PARTIALLY_FILLED
        and not any(r.status not in Route.TERMINAL_STATES for r in block.routes.all())
    )
    if request.htmx and request.GET.get("fills"):
        return render(
            request, "trading/partials/block_fills.html", _fills_context(request, block, context)
        )
    return render(request, "trading/block_detail.html", _fills_context(request, block, context))


def _fills_context(request: HttpRequest, block: Block, context: dict) -> dict:
    return context | {
        "blk": block,
        "routes": selectors.routes_with_broker().filter(block=block),
        "cancellable": Route.CANCELLABLE_STATES,
        "replaceable": Route.REPLACEABLE_STATES,
        "tifs": TimeInForce.choices,
        "can_cancel": can(request.user, Action.BLOCK_ROUTE),
        "executions": selectors.executions_with_route().filter(route__block=block),
        "allocations": block.allocations.select_related("order__portfolio"),
    }


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_POST
@action_required(Action.BLOCK_ROUTE)
def block_route(request: HttpRequest, pk: int) -> HttpResponse:
    """Route (part of) a block. From the blotter's ticket (JSON) the answer says
    what was routed or why not; the row follows on the push channel."""
    block = get_object_or_404(Block, pk=pk)
    form = RouteForm(request.POST)
    errors: list[str] = []
    if form.is_valid():
        try:
            route = route_services.route_create(
                actor=request.user,
                block_id=block.pk,
                broker=form.cleaned_data["broker"],
                quantity=form.cleaned_data["quantity"],
            )
        except REFUSED as error:
            errors = refusal_messages(error)
        else:
            text = (
                f"Routed {route.quantity.normalize():f} {block.security.ticker} to {route.broker}."
            )
            if _wants_json(request):
                return JsonResponse({"ok": True, "message": text, "route": route.pk})
            if request.htmx:
                return block_row(request, pk)
            messages.success(request, text)
            return redirect(block)
    else:
        errors = [str(e) for field in form.errors.values() for e in field]
    if _wants_json(request):
        return JsonResponse({"ok": False, "errors": errors}, status=422)
    if request.htmx:
        return HttpResponse(" ".join(errors), status=422)
    for error in errors:
        messages.error(request, error)
    return redirect(block)
