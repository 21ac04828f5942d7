"""Rebalance runs: from the accounts a PM chose to proposed, approved and
released orders. Each step is one service; the run and its orders move together
in one transaction or not at all."""

from __future__ import annotations

import contextlib
import math
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from audit.services import audit_record, audited_transaction
from compliance.selectors import rebalance_restrictions_for
from oms.roles import Action, may_act_for, require
from oms.state import check_transition
from oms.tasking import enqueue_on_commit
from portfolios.models import Portfolio, RebalanceRun, Security
from portfolios.rebalance import Options, rebalance
from portfolios.selectors import load_book
from trading.models import Order, Side
from trading.services.orders import order_cancel, order_create, orders_approve, orders_release

from .parameters import parameters_check


def rebalance_run_create(
    *, actor, portfolios: list[Portfolio], parameters: dict | None = None
) -> RebalanceRun:
    """Start a rebalance of these accounts. Small runs execute at once (a run the
    engine cannot compute comes back failed, with its error); large ones in the
    rebalance queue after commit, the run page following their progress."""
    require(actor, Action.REBALANCE_RUN)
    if not portfolios:
        raise ValidationError({"portfolios": ["Choose at least one account."]})
    for portfolio in portfolios:
        require(actor, Action.REBALANCE_RUN, portfolio)
    clean = parameters_check(parameters)
    with audited_transaction():
        run = RebalanceRun.objects.create(created_by=actor, parameters=clean)
        run.portfolios.set(portfolios)
        audit_record(
            actor=actor,
            kind="rebalance.created",
            obj=run,
            after={"portfolios": sorted(p.code for p in portfolios), "parameters": clean},
        )
        if len(portfolios) > settings.OMS_REBALANCE_INLINE_LIMIT:
            enqueue_on_commit("orchestration.tasks.execute_rebalance_run", run.pk)
    if len(portfolios) <= settings.OMS_REBALANCE_INLINE_LIMIT:
        # The engine may refuse the book (rebalance.BookError): the run is then kept as
        # failed, with the reason in run.error, for the caller to show.
        with contextlib.suppress(ValueError):
            rebalance_run_execute(run_id=run.pk)
        run.refresh_from_db()
    return run


def _run_set_status(run: RebalanceRun, target: str, *, actor, kind: str, **fields) -> None:
    before = {"status": run.status}
    check_transition(run, RebalanceRun.TRANSITIONS, target)
    run.status = target
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(update_fields=["status", "updated_at", *fields])
    audit_record(
        actor=actor,
        kind=kind,
        obj=run,
        before=before,
        after={"status": run.status} | {k: v for k, v in fields.items() if k != "summary"},
    )


def rebalance_run_execute(*, run_id: int) -> RebalanceRun | None:
    """Compute the proposed orders of a draft run. Idempotent: only a draft run is claimed."""
    with audited_transaction():
        run = (
            RebalanceRun.objects.select_for_update(of=("self",))
            .select_related("created_by")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status != RebalanceRun.Status.DRAFT:
            return run
        _run_set_status(
            run, RebalanceRun.Status.RUNNING, actor=run.created_by, kind="rebalance.started"
        )
    try:
        portfolios = {p.pk: p for p in run.portfolios.all()}
        loaded = load_book(portfolios)
        book = loaded.book
        # Compliance's restricted lists are the run's do-not-buy (do-not-sell) lists: a run
        # never proposes what the pre-trade check would reject.
        restrictions = rebalance_restrictions_for(portfolios, timezone.localdate())
        known = set(book.securities["security"])
        book.restrictions = restrictions[restrictions["security"].isin(known)].reset_index(
            drop=True
        )
        params = run.parameters
        if params.get("min_trade_value"):
            book.accounts["min_trade_value"] = params["min_trade_value"]
        if params.get("cash_need"):
            book.accounts["cash_need"] = params["cash_need"]
        result = rebalance(
            book,
            Options(
                trade_to=params.get("trade_to", "target"),
                lot_selection=params.get("lot_selection", "fifo"),
            ),
        )
        securities = {
            s.pk: s for s in Security.objects.filter(pk__in=set(result.trades["security"]))
        }
        with audited_transaction():
            run = RebalanceRun.objects.select_for_update().get(pk=run_id)
            for trade in result.trades.itertuples(index=False):
                quantity = Decimal(repr(abs(float(trade.quantity))))
                order_create(
                    actor=run.created_by,
                    portfolio=portfolios[trade.account],
                    security=securities[trade.security],
                    side=Side.BUY if trade.quantity > 0 else Side.SELL,
                    quantity=quantity,
                    rebalance_run=run,
                    estimated_price=Decimal(repr(float(trade.price))),
                    notes=f"Rebalance #{run.pk}",
                )
            summary = {
                portfolios[row["account"]].code: {
                    key: _plain(value) for key, value in row.items() if key != "account"
                }
                for row in result.accounts.to_dict("records")
            }
            reasons = loaded.skipped | result.skipped_reasons()
            skipped = {portfolios[a].code: reason for a, reason in reasons.items()}
            _run_set_status(
                run,
                RebalanceRun.Status.PROPOSED,
                actor=run.created_by,
                kind="rebalance.proposed",
                summary=summary,
                skipped=skipped,
            )
    except Exception as exc:
        with audited_transaction():
            run = RebalanceRun.objects.select_for_update().get(pk=run_id)
            if run.status == RebalanceRun.Status.RUNNING:
                _run_set_status(
                    run,
                    RebalanceRun.Status.FAILED,
                    actor=run.created_by,
                    kind="rebalance.failed",
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                )
        raise
    return run


def _run_step(
    *, actor, run_id: int, target: str, kind: str, orders_in: list[str], act
) -> RebalanceRun:
    """Move a run to `target` and pass the ids of its orders in `orders_in` to `act`,
    in one transaction: the run and its orders move together or not at all."""
    with audited_transaction():
        run = RebalanceRun.objects.select_for_update().get(pk=run_id)
        _ensure_run_owner(actor, run)
        _run_set_status(run, target, actor=actor, kind=kind)
        act(
            list(
                run.orders.filter(status__in=orders_in).order_by("pk").values_list("pk", flat=True)
            )
        )
    return run


def rebalance_run_approve(*, actor, run_id: int) -> RebalanceRun:
    """Approve a proposed run: its draft orders become approved."""
    return _run_step(
        actor=actor,
        run_id=run_id,
        target=RebalanceRun.Status.APPROVED,
        kind="rebalance.approved",
        orders_in=[Order.Status.DRAFT],
        act=lambda ids: orders_approve(actor=actor, order_ids=ids),
    )


def rebalance_run_release(*, actor, run_id: int) -> RebalanceRun:
    """Release an approved run's orders to the trading desk."""
    return _run_step(
        actor=actor,
        run_id=run_id,
        target=RebalanceRun.Status.RELEASED,
        kind="rebalance.released",
        orders_in=[Order.Status.APPROVED],
        act=lambda ids: orders_release(actor=actor, order_ids=ids),
    )


def rebalance_run_cancel(*, actor, run_id: int) -> RebalanceRun:
    """Drop a run that was not released: its unreleased orders are cancelled."""

    def cancel(ids: list[int]) -> None:
        for order_id in ids:
            order_cancel(actor=actor, order_id=order_id, reason=f"Rebalance #{run_id} cancelled")

    return _run_step(
        actor=actor,
        run_id=run_id,
        target=RebalanceRun.Status.CANCELLED,
        kind="rebalance.cancelled",
        orders_in=[Order.Status.DRAFT, Order.Status.APPROVED],
        act=cancel,
    )


def _plain(value):
    """A what-if figure as plain JSON: floats rounded for display, NaN as None."""
    if isinstance(value, bool | str) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return None if math.isnan(number) else round(number, 6)


def _ensure_run_owner(actor, run: RebalanceRun) -> None:
    require(actor, Action.REBALANCE_RUN)
    if not all(may_act_for(actor, Action.REBALANCE_RUN, p) for p in run.portfolios.all()):
        raise PermissionDenied("You do not manage the accounts of this run.")
