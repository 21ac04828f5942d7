"""Every write to reference data, holdings and rebalance runs."""

from __future__ import annotations

import contextlib
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from compliance.services import audit_record, audited_transaction
from oms.numbers import money
from oms.roles import Action, require

from .models import CashBalance, Portfolio, Position, RebalanceRun, Security, TaxLot


def _lock_position(portfolio: Portfolio, security: Security) -> Position:
    position, _ = Position.objects.select_for_update().get_or_create(
        portfolio=portfolio, security=security
    )
    return position


def _lock_cash(portfolio: Portfolio, currency: str) -> CashBalance:
    cash, _ = CashBalance.objects.select_for_update().get_or_create(
        portfolio=portfolio, currency=currency
    )
    return cash


def holdings_book_fill(
    *,
    portfolio: Portfolio,
    security: Security,
    buying: bool,
    quantity: Decimal,
    price: Decimal,
    on_date: date,
) -> dict:
    """Book an allocated fill: position, tax lots (FIFO on sells) and cash in the
    security's currency. Runs inside the caller's transaction; returns the
    before/after figures for the caller's audit event."""
    if quantity <= 0:
        raise ValueError("booked quantity must be positive")
    position = _lock_position(portfolio, security)
    cash = _lock_cash(portfolio, security.currency)
    before = {"position": position.quantity, "cash": cash.amount, "cash_currency": cash.currency}
    amount = money(quantity * price * security.multiplier)
    if buying:
        if position.quantity >= 0:
            TaxLot.objects.create(
                portfolio=portfolio,
                security=security,
                quantity=quantity,
                original_quantity=quantity,
                unit_cost=price,
                acquired_on=on_date,
            )
        position.quantity += quantity
        cash.amount -= amount
    else:
        _close_lots_fifo(portfolio, security, quantity)
        position.quantity -= quantity
        cash.amount += amount
    position.save(update_fields=["quantity"])
    cash.save(update_fields=["amount"])
    return {
        "before": before,
        "after": {
            "position": position.quantity,
            "cash": cash.amount,
            "cash_currency": cash.currency,
        },
    }


def _close_lots_fifo(portfolio: Portfolio, security: Security, quantity: Decimal) -> None:
    left = quantity
    lots = (
        TaxLot.objects.select_for_update()
        .filter(portfolio=portfolio, security=security, quantity__gt=0)
        .order_by("acquired_on", "pk")
    )
    for lot in lots:
        if left <= 0:
            break
        take = min(lot.quantity, left)
        lot.quantity -= take
        lot.save(update_fields=["quantity"])
        left -= take


# --- Rebalance runs -------------------------------------------------------------

REBALANCE_PARAMETERS = {
    # name: (type, default, check, message)
    "trade_to": (
        str,
        "target",
        lambda v: v in ("target", "band_edge"),
        "must be 'target' or 'band_edge'",
    ),
    "min_trade_value": (float, 0.0, lambda v: v >= 0, "must be zero or more"),
    "lot_selection": (
        str,
        "fifo",
        lambda v: v in ("fifo", "hifo", "min_tax"),
        "must be fifo, hifo or min_tax",
    ),
    "cash_need": (float, 0.0, lambda v: True, ""),
}


def rebalance_parameters_check(raw: dict | None) -> dict:
    """Validate and complete a run's parameters; ValidationError names each bad one."""
    raw = dict(raw or {})
    errors: dict[str, list[str]] = {}
    unknown = set(raw) - set(REBALANCE_PARAMETERS)
    for name in sorted(unknown):
        errors[name] = [f"Unknown parameter; known: {', '.join(sorted(REBALANCE_PARAMETERS))}."]
    clean = {}
    for name, (kind, default, check, message) in REBALANCE_PARAMETERS.items():
        value = raw.get(name, default)
        try:
            value = kind(value)
        except (TypeError, ValueError):
            errors[name] = [f"Must be a {kind.__name__}."]
            continue
        if kind is float and value != value:  # NaN
            errors[name] = ["Must be a number."]
        elif not check(value):
            errors[name] = [f"{name} {message}."]
        else:
            clean[name] = value
    if errors:
        raise ValidationError(errors)
    return clean


def rebalance_run_create(
    *, actor, portfolios: list[Portfolio], parameters: dict | None = None
) -> RebalanceRun:
    """Start a rebalance of these accounts. Small runs execute at once (a run the
    engine cannot compute comes back failed, with its error); large ones in the
    rebalance queue after commit, the run page following their progress."""
    from .tasks import execute_rebalance_run

    require(actor, Action.REBALANCE_RUN)
    if not portfolios:
        raise ValidationError({"portfolios": ["Choose at least one account."]})
    for portfolio in portfolios:
        if portfolio.manager_id != actor.pk:
            raise PermissionDenied(f"You do not manage account {portfolio.code}.")
    clean = rebalance_parameters_check(parameters)
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
            transaction.on_commit(lambda: execute_rebalance_run.delay(run.pk))
    if len(portfolios) <= settings.OMS_REBALANCE_INLINE_LIMIT:
        # The engine may refuse the book (rebalance.BookError): the run is then kept as
        # failed, with the reason in run.error, for the caller to show.
        with contextlib.suppress(ValueError):
            rebalance_run_execute(run_id=run.pk)
        run.refresh_from_db()
    return run


def _run_set_status(run: RebalanceRun, target: str, *, actor, kind: str, **fields) -> None:
    from oms.state import check_transition

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
    from trading.models import Side
    from trading.services import order_create

    from .rebalance import Options, rebalance
    from .selectors import load_book

    with audited_transaction():
        run = (
            RebalanceRun.objects.select_for_update()
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
    from trading.models import Order
    from trading.services import orders_approve

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
    from trading.models import Order
    from trading.services import orders_release

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
    from trading.models import Order
    from trading.services import order_cancel

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
    import math

    if isinstance(value, bool | str) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return None if math.isnan(number) else round(number, 6)


def _ensure_run_owner(actor, run: RebalanceRun) -> None:
    require(actor, Action.REBALANCE_RUN)
    if run.created_by_id != actor.pk and run.portfolios.exclude(manager=actor).exists():
        raise PermissionDenied("You do not manage the accounts of this run.")
