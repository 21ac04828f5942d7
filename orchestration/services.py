"""Rebalance runs: from the accounts a PM chose to proposed, approved and
released orders. Each step is one service; the run and its orders move together
in one transaction or not at all.

A run over the whole book is split into chunks of accounts (`chunk_size`). Each
chunk loads its part of the book (projected: holdings plus the orders on their
way), rebalances it in the engine, and in one transaction claims its accounts,
writes their proposed orders in bulk (`trading.services.bulk`), asks the
pre-trade check about them as one batch and records one audit event naming them.
A small run computes its one chunk in the request; a large one on the workers'
`rebalance` queue, chunks side by side. The last chunk to commit proposes the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from collections.abc import Iterable
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, JSONField, Max, Q, Value
from django.db.models.expressions import CombinedExpression
from django.utils import timezone

from audit.services import audit_record, audit_record_many, audited_transaction
from compliance.selectors import (
    accounts_with_sales_since,
    realised_sales,
    rebalance_restrictions_for,
)
from oms.bulk import collector_paused, update_rows
from oms.numbers import qty
from oms.roles import Action, require, sees_all_accounts
from oms.state import check_transition
from oms.tasking import enqueue_on_commit
from portfolios.models import CashBalance, Portfolio, RebalanceRun
from portfolios.rebalance import raise_cash, rebalance
from portfolios.selectors import FxTable
from portfolios.services.drift import drift_mark_stale
from trading import pretrade
from trading.models import Order, Side
from trading.services.bulk import (
    ProposedOrder,
    run_orders_approve,
    run_orders_cancel,
    run_orders_create,
    run_orders_release,
)

from .cashflows import check_flow, needs_by_account, read_csv
from .models import CashFlow, ChunkReissue, ProposalCheck, RunAccount
from .parameters import parameters_check
from .selectors import account_trades, account_what_if, ids_in, load_projected_book, run_options

#: Accounts per chunk of a run (each chunk is one transaction and one engine pass).
DEFAULT_CHUNK_SIZE = 1000


def _runs():
    """Runs read by the steps that compute them, without the what-if per account and the
    skipped accounts (read when asked for): a chunk adds to them in the database, and
    over the whole book they are megabytes of JSON to read back at each step."""
    return RebalanceRun.objects.defer("summary", "skipped")


def _chunk_size() -> int:
    return max(1, int(getattr(settings, "OMS_REBALANCE_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)))


def _refuse_accounts_in_open_runs(portfolio_ids, *, excluding: int | None = None) -> None:
    """An account in an open run may enter no other: name the run it is in."""
    taken = (
        RunAccount.objects.filter(ids_in(RunAccount, "portfolio_id", portfolio_ids), is_open=True)
        .exclude(run_id=excluding)
        .select_related("portfolio", "run")
        .order_by("portfolio__code")
    )
    clashes = list(taken[:6])
    if clashes:
        named = ", ".join(
            f"{row.portfolio.code} is in {row.run} ({row.run.get_status_display().lower()})"
            for row in clashes[:5]
        )
        more = " and more" if len(clashes) > 5 else ""
        raise ValidationError(
            {
                "portfolios": [
                    f"{named}{more}: an account in an open rebalance cannot enter another. "
                    "Release or cancel that run first."
                ]
            }
        )


def rebalance_run_create(
    *,
    actor,
    portfolios: list[Portfolio],
    parameters: dict | None = None,
    chunk_size: int | None = None,
) -> RebalanceRun:
    """Start a rebalance of these accounts. Small runs execute at once (a run the
    engine cannot compute comes back failed, with its error); large ones in the
    rebalance queue after commit, the run page following their progress. An account
    already in an open run is refused, naming the run."""
    require(actor, Action.REBALANCE_RUN)
    if not portfolios:
        raise ValidationError({"portfolios": ["Choose at least one account."]})
    for portfolio in portfolios:
        require(actor, Action.REBALANCE_RUN, portfolio)
    clean = parameters_check(parameters)
    with audited_transaction():
        run, inline = _run_open(actor, portfolios, clean, chunk_size)
    return _run_start(run, inline)


def _run_open(actor, portfolios: list[Portfolio], clean: dict, chunk_size: int | None):
    """The run and its accounts, inside the caller's audited transaction; an account
    already in an open run refused. ``(run, inline)``: whether to compute it at once."""
    ids = sorted({p.pk for p in portfolios})
    size = chunk_size or _chunk_size()
    inline = len(ids) <= settings.OMS_REBALANCE_INLINE_LIMIT
    chunks = math.ceil(len(ids) / size)
    _refuse_accounts_in_open_runs(ids)
    run = RebalanceRun.objects.create(
        created_by=actor, parameters=clean, accounts_total=len(ids), chunks_total=chunks
    )
    try:
        with transaction.atomic():
            _run_accounts_insert(run, ids, size)
    except IntegrityError:
        # Another run took one of the accounts since we looked: say which.
        _refuse_accounts_in_open_runs(ids, excluding=run.pk)
        raise
    audit_record(
        actor=actor,
        kind="rebalance.created",
        obj=run,
        after={
            "portfolios": sorted(p.code for p in portfolios),
            "parameters": clean,
            "chunks": chunks,
        },
    )
    if not inline:
        enqueue_on_commit("orchestration.tasks.execute_rebalance_run", run.pk)
    return run, inline


def _run_accounts_insert(run: RebalanceRun, ids: list[int], size: int) -> None:
    """The run's accounts (`RunAccount`, the i-th in chunk i // size) and its
    ``portfolios``: on PostgreSQL one ``INSERT ... SELECT FROM unnest`` each, the ids one
    array parameter (no model instance per account); the ORM's bulk insert elsewhere."""
    if connection.vendor != "postgresql":
        run.portfolios.set(ids)
        RunAccount.objects.bulk_create(
            [RunAccount(run=run, portfolio_id=pk, chunk=i // size) for i, pk in enumerate(ids)],
            batch_size=5000,
        )
        return
    m2m = RebalanceRun._meta.get_field("portfolios")
    through = m2m.remote_field.through._meta.db_table
    accounts = RunAccount._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {through} ({m2m.m2m_column_name()}, {m2m.m2m_reverse_name()})"
            " SELECT %s, pk FROM unnest(%s::bigint[]) AS t(pk)",
            [run.pk, ids],
        )
        cursor.execute(
            f"INSERT INTO {accounts} (run_id, portfolio_id, chunk, status, reason, is_open)"
            " SELECT %s, pk, (n - 1) / %s, %s, '', true"
            " FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(pk, n)",
            [run.pk, size, RunAccount.Status.PENDING, ids],
        )


def _run_start(run: RebalanceRun, inline: bool) -> RebalanceRun:
    """Compute a small run at once, after the transaction that opened it."""
    if inline:
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
    if target not in RebalanceRun.OPEN_STATES:
        # An ended run lets its accounts go: they may enter the next run.
        RunAccount.objects.filter(run=run, is_open=True).update(is_open=False)
        _cash_flows_end(run, actor, target)
    audit_record(
        actor=actor,
        kind=kind,
        obj=run,
        before=before,
        after={"status": run.status}
        | {k: v for k, v in fields.items() if k not in ("summary", "skipped")},
    )


def rebalance_run_start(*, run_id: int, inline: bool = False) -> RebalanceRun | None:
    """Claim a draft run (draft -> running). A run computed on the workers gets one
    task per chunk, after commit. Idempotent: only a draft run is claimed."""
    with audited_transaction():
        run = (
            _runs()
            .select_for_update(of=("self",))
            .select_related("created_by")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status != RebalanceRun.Status.DRAFT:
            return None
        _run_set_status(
            run,
            RebalanceRun.Status.RUNNING,
            actor=run.created_by,
            kind="rebalance.started",
            started_at=timezone.now(),
        )
        if not inline:
            for chunk in range(run.chunks_total):
                enqueue_on_commit("orchestration.tasks.execute_rebalance_chunk", run.pk, chunk)
    return run


def rebalance_run_execute(*, run_id: int) -> RebalanceRun | None:
    """Compute a draft run in this process, chunk after chunk."""
    run = rebalance_run_start(run_id=run_id, inline=True)
    if run is None:
        return _runs().filter(pk=run_id).first()
    for chunk in range(run.chunks_total):
        rebalance_chunk_execute(run_id=run_id, chunk=chunk)
    return _runs().get(pk=run_id)


def _proposals(result, book, lot_method: str = "fifo"):
    """The engine's trades as plain proposed orders (Decimal at the boundary), each
    with its security's quoted price (the engine sized it on the unit's value, which
    for a bond is a price in % of par over 100 plus accrued interest). A sell carries
    the run's lot method and the lots the engine chose for it (their ids and
    quantities, in the order it takes them), so that its fill closes those lots."""
    trades = result.trades
    if trades.empty:
        return []
    # each security's price as a Decimal once, not once per order
    quote = {
        int(security): Decimal(repr(float(price))) if np.isfinite(price) else None
        for security, price in zip(
            book.securities["security"], book.securities["quote"].astype(float), strict=True
        )
    }
    quantity = trades["quantity"].to_numpy(dtype=float)
    chosen = (
        trades["lots"].to_numpy(dtype=object) if "lots" in trades.columns else [()] * len(trades)
    )
    return [
        ProposedOrder(
            portfolio_id=account,
            security_id=security,
            side="buy" if q > 0 else "sell",
            quantity=Decimal(repr(abs(q))),
            estimated_price=quote.get(security),
            lot_method=lot_method,
            lots=_order_lots(lots) if q < 0 else (),
        )
        for account, security, q, lots in zip(
            trades["account"].astype("int64").tolist(),
            trades["security"].astype("int64").tolist(),
            quantity.tolist(),
            chosen,
            strict=True,
        )
    ]


def _order_lots(lots) -> tuple:
    """The engine's ``(lot id, quantity)`` of a sell as the order stores them: ids of
    stored tax lots only (a lot the engine made up has none), quantities as strings."""
    out = []
    for lot, quantity in lots or ():
        if isinstance(lot, (int, np.integer)) and quantity > 0:
            out.append((int(lot), str(qty(Decimal(repr(float(quantity)))))))
    return tuple(out)


def rebalance_chunk_execute(*, run_id: int, chunk: int) -> int:
    """Compute one chunk of a running run; return how many orders it proposed.

    Idempotent: the chunk claims its pending accounts in the transaction that writes
    their orders, so a chunk run again (a retry, a worker that died after commit)
    finds its accounts done and writes nothing. A run cancelled meanwhile writes
    nothing. The chunk that leaves no account pending proposes the run."""
    run = _runs().select_related("created_by").filter(pk=run_id).first()
    if run is None or run.status != RebalanceRun.Status.RUNNING:
        return 0
    pending = list(
        RunAccount.objects.filter(
            run_id=run_id, chunk=chunk, status=RunAccount.Status.PENDING
        ).values_list("portfolio_id", flat=True)
    )
    if not pending:
        _propose_when_done(run_id)
        return 0
    try:
        with collector_paused():
            written = _compute_chunk(run, chunk, pending)
    except Exception as exc:
        _run_fail(run_id, exc)
        raise
    _propose_when_done(run_id)
    return written


def _wash_sale_restrictions(book, days: int) -> pd.DataFrame:
    """``do_not_buy`` rows for the (account, security) pairs of the book that realised a
    loss within the last `days` days: every security an account holds or its model
    targets (`compliance.selectors.realised_sales`, asked only about the accounts that
    sold anything since: one query finds them, one more their sales when there are any).
    Also sets the book's ``sales``, which the engine's checks read."""
    empty = pd.DataFrame({"account": [], "security": [], "restriction": []}, dtype=object)
    if not days or book.accounts.empty:
        return empty
    since = timezone.now() - dt.timedelta(days=int(days))
    sold = accounts_with_sales_since(book.accounts["account"].tolist(), since=since)
    accounts = book.accounts[book.accounts["account"].isin(sold)]
    holdings = book.holdings[book.holdings["account"].isin(sold)]
    targets = accounts[["account", "model"]].merge(book.models, on="model")
    pairs = set(zip(targets["account"], targets["security"], strict=True)) | set(
        zip(holdings["account"], holdings["security"], strict=True)
    )
    base_of = dict(zip(book.accounts["account"], book.accounts["base_currency"], strict=True))
    sales = pd.DataFrame(realised_sales(pairs, since=since, base_of=base_of, fx=FxTable.latest()))
    book.sales = sales
    if sales.empty:
        return empty
    losses = sales[sales["gain"] < 0].drop_duplicates(["account", "security"])
    return pd.DataFrame(
        {
            "account": losses["account"].to_numpy(object),
            "security": losses["security"].to_numpy(object),
            "restriction": "do_not_buy",
        }
    )


def _compute_chunk(run: RebalanceRun, chunk: int, pending: list[int]) -> int:
    loaded = load_projected_book(pending)
    book = loaded.book
    # Compliance's restricted lists are the run's do-not-buy (do-not-sell) lists: a run
    # never proposes what the pre-trade check would reject.
    restrictions = rebalance_restrictions_for(pending, timezone.localdate())
    params = run.parameters
    # A security the account sold at a loss inside the wash-sale window is not bought
    # back: the run's do-not-buy for that account (the sales as compliance derives them).
    restrictions = pd.concat(
        [restrictions, _wash_sale_restrictions(book, params.get("wash_sale_days", 30))],
        ignore_index=True,
    )
    known = set(book.securities["security"])
    book.restrictions = restrictions[restrictions["security"].isin(known)].reset_index(drop=True)
    if params.get("min_trade_value"):
        book.accounts["min_trade_value"] = params["min_trade_value"]
    # The cash need: the run's own, plus each account's pending cash flows and the
    # withdrawals still waiting for an earlier run's sells (whose proceeds the book
    # projects: they are not this run's to invest).
    in_book = book.accounts["account"].tolist()
    flows = list(
        CashFlow.objects.filter(
            ids_in(CashFlow, "portfolio_id", in_book), status=CashFlow.Status.PENDING
        ).order_by("pk")
    )
    awaiting = CashFlow.objects.filter(
        ids_in(CashFlow, "portfolio_id", in_book), status=CashFlow.Status.AWAITING_SELLS
    ).order_by("pk")
    needs, flow_problems = needs_by_account(
        [*flows, *awaiting],
        dict(zip(in_book, book.accounts["base_currency"], strict=True)),
        FxTable.latest(),
    )
    book.accounts["cash_need"] = [
        float(params.get("cash_need") or 0.0) + needs.get(account, 0.0) for account in in_book
    ]
    engine = raise_cash if params.get("objective") == "raise_cash" else rebalance
    result = engine(book, run_options(params))
    codes = dict(
        Portfolio.objects.filter(ids_in(Portfolio, "id", pending)).values_list("pk", "code")
    )
    lot_method = run_options(params).lot_selection
    proposed = [
        p for p in _proposals(result, book, lot_method) if p.portfolio_id not in flow_problems
    ]
    reasons = loaded.skipped | result.skipped_reasons() | flow_problems
    with audited_transaction():
        run = _runs().select_for_update(of=("self",)).get(pk=run.pk)
        if run.status != RebalanceRun.Status.RUNNING:
            return 0  # cancelled (or failed) while the engine ran
        claimed = set(
            RunAccount.objects.select_for_update(skip_locked=True)
            .filter(run=run, chunk=chunk, status=RunAccount.Status.PENDING)
            .values_list("portfolio_id", flat=True)
        )
        if not claimed:
            return 0
        # The flows the engine counted must still be pending: an account one of whose
        # flows was cancelled (or taken) meanwhile is skipped, to be run again.
        counted = [f for f in flows if f.portfolio_id in claimed]
        still = set(
            CashFlow.objects.select_for_update()
            .filter(pk__in=[f.pk for f in counted], status=CashFlow.Status.PENDING)
            .values_list("pk", flat=True)
        )
        for flow in counted:
            if flow.pk not in still:
                reasons[flow.portfolio_id] = (
                    f"cash flow #{flow.pk} changed while the run computed: rebalance the "
                    "account again"
                )
        mine = [p for p in proposed if p.portfolio_id in claimed and p.portfolio_id not in reasons]
        orders = run_orders_create(
            actor=run.created_by,
            run=run,
            proposed=mine,
            audit_after={"chunk": chunk, "accounts": len(claimed)},
        )
        skipped = {a: r for a, r in reasons.items() if a in claimed}
        # held by the run before the check, which counts the flows runs hold as cash
        _cash_flows_used(
            run, run.created_by, [f.pk for f in counted if f.portfolio_id not in skipped]
        )
        _store_verdicts(run, orders, pretrade.check(orders, stage="proposal", actor=run.created_by))
        by_reason: dict[str, list[int]] = {}
        for account, reason in skipped.items():
            by_reason.setdefault(str(reason)[:500], []).append(account)
        for reason, accounts in by_reason.items():
            RunAccount.objects.filter(ids_in(RunAccount, "portfolio_id", accounts), run=run).update(
                status=RunAccount.Status.SKIPPED, reason=reason
            )
        RunAccount.objects.filter(
            ids_in(RunAccount, "portfolio_id", claimed - set(skipped)), run=run
        ).update(status=RunAccount.Status.DONE)
        _chunk_summary_store(run, result.accounts, codes, claimed, skipped)
        RebalanceRun.objects.filter(pk=run.pk).update(
            accounts_done=F("accounts_done") + len(claimed),
            accounts_skipped=F("accounts_skipped") + len(skipped),
            orders_proposed=F("orders_proposed") + len(orders),
        )
    return len(orders)


def _chunk_summary_store(run: RebalanceRun, accounts, codes: dict, claimed, skipped: dict) -> None:
    """Add the what-if of the chunk's accounts it claimed and did not skip (`accounts`,
    the engine's frame) and its skipped accounts to the run's. On PostgreSQL the UPDATE
    merges them into what the run holds (jsonb ``||``): the chunks before are neither
    read back nor sent again, so a run over the whole book in chunks does not grow with
    the square of its accounts."""
    summary = _summary_rows(accounts, codes, set(claimed) - set(skipped))
    lost = {codes[a]: str(r) for a, r in skipped.items()}
    if connection.vendor != "postgresql":
        run.summary = {**run.summary, **summary}
        run.skipped = {**run.skipped, **lost}
        run.save(update_fields=["summary", "skipped", "updated_at"])
        return

    def merged(name: str, added: dict):
        return CombinedExpression(
            F(name), "||", Value(added, output_field=JSONField()), output_field=JSONField()
        )

    # `updated_at` is a running run's heartbeat, written in each chunk's own transaction
    # (this UPDATE, no other): the recovery sweep measures "no progress" from it
    RebalanceRun.objects.filter(pk=run.pk).update(
        summary=merged("summary", summary),
        skipped=merged("skipped", lost),
        updated_at=timezone.now(),
    )


def _summary_rows(accounts: pd.DataFrame, codes: dict, keep) -> dict:
    """``{account code: {figure: value}}`` for the accounts of the engine's frame in
    `keep`, each value as `_plain` makes it of the frame's rows (``to_dict``), built a
    column at a time: no dict of Python objects per row before the one kept."""
    chosen = accounts[accounts["account"].isin(list(keep))]
    names = [name for name in chosen.columns if name != "account"]
    columns = [_plain_column(chosen[name]) for name in names]
    return {
        codes[account]: dict(zip(names, values, strict=True))
        for account, *values in zip(chosen["account"].tolist(), *columns, strict=True)
    }


def _plain_column(column: pd.Series) -> list:
    """`_plain` of each value of a column, as ``DataFrame.to_dict`` hands them out (numpy
    scalars as Python ones): floats rounded and NaN as None, integers as floats, bools
    kept, anything else value by value."""
    kind = column.dtype.kind
    values = column.tolist()
    if kind == "f":
        return [None if v != v else round(v, 6) for v in values]
    if kind in "iu":
        return [round(float(v), 6) for v in values]
    if kind == "b":
        return values
    return [_plain(v.item() if isinstance(v, np.generic) else v) for v in values]


def _store_verdicts(run: RebalanceRun, orders, verdicts: dict) -> None:
    """Keep each proposed order's pre-trade verdict beside it (COPY on PostgreSQL)."""
    if not orders:
        return
    if connection.vendor == "postgresql":
        # the columns after the order's id, written once per different verdict (every
        # order that passes shares one)
        written: dict[tuple, str] = {}

        def columns(verdict) -> str:
            key = (verdict.status, verdict.message, tuple(verdict.failed))
            if key not in written:
                message = verdict.message[:500].replace("\\", "\\\\").replace("\t", " ")
                message = message.replace("\n", " ")
                failed = _json_list(verdict.failed)
                written[key] = f"\t{run.pk}\t{verdict.status}\t{message}\t{failed}\n"
            return written[key]

        lines = [f"{order.pk}{columns(verdicts[order.pk])}" for order in orders]
        table = connection.ops.quote_name(ProposalCheck._meta.db_table)
        with (
            connection.cursor() as cursor,
            cursor.copy(
                f"COPY {table} (order_id, run_id, status, message, failed) FROM STDIN"
            ) as copy,
        ):
            copy.write("".join(lines))
        return
    ProposalCheck.objects.bulk_create(
        [
            ProposalCheck(
                order_id=order.pk,
                run=run,
                status=verdicts[order.pk].status,
                message=verdicts[order.pk].message[:500],
                failed=list(verdicts[order.pk].failed),
            )
            for order in orders
        ],
        batch_size=500,
    )


def _json_list(names) -> str:
    return json.dumps(list(names)).replace("\\", "\\\\")


def _propose_when_done(run_id: int) -> None:
    """Propose a running run once none of its accounts is pending."""
    with audited_transaction():
        run = _runs().select_for_update(of=("self",)).select_related("created_by").get(pk=run_id)
        if run.status != RebalanceRun.Status.RUNNING:
            return
        if RunAccount.objects.filter(run=run, status=RunAccount.Status.PENDING).exists():
            return
        _run_set_status(
            run,
            RebalanceRun.Status.PROPOSED,
            actor=run.created_by,
            kind="rebalance.proposed",
            finished_at=timezone.now(),
        )


def _run_fail(run_id: int, exc: Exception) -> None:
    with audited_transaction():
        run = _runs().select_for_update(of=("self",)).get(pk=run_id)
        if run.status == RebalanceRun.Status.RUNNING:
            _run_set_status(
                run,
                RebalanceRun.Status.FAILED,
                actor=run.created_by,
                kind="rebalance.failed",
                error=f"{type(exc).__name__}: {exc}"[:2000],
                finished_at=timezone.now(),
            )


#: How many times the recovery sweep sends one chunk (or a run's start) to the workers
#: again. A lost task is sent again; a chunk that still makes no progress after that
#: many (the workers are down, or the chunk kills its worker) fails its run, with why.
MAX_REISSUES = 3


def _stall_seconds() -> float:
    return float(settings.OMS_REBALANCE_STALL_SECONDS)


def rebalance_runs_recover(*, stalled_for: float | None = None) -> dict[str, list[int]]:
    """Recover the runs whose work was lost: a running run that made no progress for
    `stalled_for` seconds (`OMS_REBALANCE_STALL_SECONDS` by default) gets a task again
    for each chunk with pending accounts; one with none pending (its last chunk
    committed, the proposal's step was lost) is proposed; a draft whose start was lost
    is started again. Each reissue is recorded (`ChunkReissue`, one audit event per
    run); a chunk already reissued `MAX_REISSUES` times fails its run instead, its
    proposed orders cancelled. A reissued chunk that meets its original writes nothing
    twice: a chunk claims its pending accounts in the transaction that writes their
    orders. Runs Celery beat's sweep, the `recover_rebalance_runs` command and the
    benchmark. Returns the run ids by what was done: reissued, proposed, failed."""
    seconds = _stall_seconds() if stalled_for is None else max(0.0, float(stalled_for))
    cutoff = timezone.now() - dt.timedelta(seconds=seconds)
    stalled = list(
        RebalanceRun.objects.filter(
            status__in=(RebalanceRun.Status.DRAFT, RebalanceRun.Status.RUNNING),
            updated_at__lt=cutoff,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    done: dict[str, list[int]] = {"reissued": [], "proposed": [], "failed": []}
    for run_id in stalled:
        outcome = _run_recover(run_id, cutoff, seconds)
        if outcome:
            done[outcome].append(run_id)
    return done


def _run_recover(run_id: int, cutoff, seconds: float) -> str | None:
    Status = RebalanceRun.Status
    with audited_transaction():
        # a run a chunk holds is committing progress: not stalled, and not waited for
        run = (
            _runs()
            .select_for_update(of=("self",), skip_locked=True)
            .select_related("created_by")
            .filter(pk=run_id, status__in=(Status.DRAFT, Status.RUNNING), updated_at__lt=cutoff)
            .first()
        )
        if run is None:
            return None
        now = timezone.now()
        if run.status == Status.DRAFT:
            pending: dict[int | None, int] = {None: run.accounts_total}
        else:
            pending = dict(
                RunAccount.objects.filter(run=run, status=RunAccount.Status.PENDING)
                .values("chunk")
                .annotate(n=Count("pk"))
                .values_list("chunk", "n")
            )
            if not pending:
                _run_set_status(
                    run, Status.PROPOSED, actor=run.created_by, kind="rebalance.proposed",
                    finished_at=now,
                )  # fmt: skip
                return "proposed"
        tried = dict(
            ChunkReissue.objects.filter(run=run)
            .values("chunk")
            .annotate(n=Max("attempt"))
            .values_list("chunk", "n")
        )
        chunks = sorted(pending, key=lambda c: -1 if c is None else c)
        worn = [c for c in chunks if tried.get(c, 0) >= MAX_REISSUES]
        if worn:
            _run_fail_stalled(run, worn, sum(pending.values()), seconds, now)
            return "failed"
        reason = f"no progress for {seconds:.0f} s"
        ChunkReissue.objects.bulk_create(
            ChunkReissue(
                run=run,
                chunk=chunk,
                attempt=tried.get(chunk, 0) + 1,
                pending=pending[chunk],
                reason=reason,
                reissued_at=now,
            )
            for chunk in chunks
        )
        run.save(update_fields=["updated_at"])  # the reissued chunks' stall time starts now
        audit_record(
            actor=None,
            kind="rebalance.reissued",
            obj=run,
            after={
                "status": run.status,
                "chunks": [c for c in chunks if c is not None],
                "start": None in pending,
                "attempts": {str(c): tried.get(c, 0) + 1 for c in chunks},
                "pending": sum(pending.values()),
            },
            reason=reason,
        )
        for chunk in chunks:
            if chunk is None:
                enqueue_on_commit("orchestration.tasks.execute_rebalance_run", run.pk)
            else:
                enqueue_on_commit("orchestration.tasks.execute_rebalance_chunk", run.pk, chunk)
    return "reissued"


def _run_fail_stalled(run: RebalanceRun, worn: list, pending: int, seconds: float, now) -> None:
    """Fail a run whose chunks `worn` made no progress after `MAX_REISSUES` reissues;
    the orders its other chunks proposed are cancelled with it."""
    if worn == [None]:
        what = "Its start"
    else:
        named = ", ".join(str(c + 1) for c in worn if c is not None)
        what = f"Chunk{'s' if len(worn) > 1 else ''} {named} of {run.chunks_total}"
    error = (
        f"{what} made no progress after being sent to the workers again {MAX_REISSUES} "
        f"times ({seconds:.0f} s without progress each time): are the rebalance workers "
        f"running and the broker reachable? {pending} account{'s' if pending != 1 else ''} "
        "were not computed; send the run back for a re-run."
    )
    _run_set_status(
        run,
        RebalanceRun.Status.FAILED,
        actor=run.created_by,
        kind="rebalance.failed",
        error=error,
        finished_at=now,
    )
    run_orders_cancel(actor=run.created_by, run=run, reason=f"{run} failed: no progress")


def _run_step(*, actor, run_id: int, target: str, kind: str, act) -> RebalanceRun:
    """Move a run to `target` and its orders with `act`, in one transaction: the run
    and its orders move together or not at all. The run's what-if per account (megabytes
    of JSON over the whole book) is read only if `act` asks for it."""
    with audited_transaction():
        run = _runs().select_for_update(of=("self",)).get(pk=run_id)
        _ensure_run_owner(actor, run)
        _run_set_status(run, target, actor=actor, kind=kind)
        act(run)
    return run


def rebalance_run_approve(
    *, actor, run_id: int, order_ids: list[int] | None = None
) -> RebalanceRun:
    """Approve a proposed run: its draft orders become approved, in bulk (the
    pre-trade check on the batch decides each one's fate when a checker is installed).
    With `order_ids`, only those are approved and the run's other drafts are dropped
    (cancelled, "not selected"), in the same transaction."""

    def act(run):
        if order_ids is not None:
            chosen = set(order_ids)
            drafts = set(run.orders.filter(status=Order.Status.DRAFT).values_list("pk", flat=True))
            if not chosen or not chosen <= drafts:
                raise ValidationError({"orders": ["Choose draft orders of this run to approve."]})
            left_out = sorted(drafts - chosen)
            run_orders_cancel(
                actor=actor,
                run=run,
                reason=f"Not selected for approval in Rebalance #{run.pk}",
                order_ids=left_out,
            )
            # measured on the chosen orders while they are drafts (approved ones count
            # in the projected book the what-if starts from)
            _summaries_measure_again(
                run,
                set(Order.objects.filter(pk__in=left_out).values_list("portfolio_id", flat=True)),
            )
        run_orders_approve(actor=actor, run=run, order_ids=order_ids)

    with collector_paused():  # the run's orders, read and checked: many objects, no cycle
        return _run_step(
            actor=actor,
            run_id=run_id,
            target=RebalanceRun.Status.APPROVED,
            kind="rebalance.approved",
            act=act,
        )


def rebalance_run_order_drop(*, actor, run_id: int, order_id: int) -> RebalanceRun:
    """Drop one proposed order from a proposed run (it is cancelled, audited on the run).
    The account's what-if follows; a drop that would leave the account's cash below its
    floor (a sell that funds its buys) is refused."""
    with audited_transaction():
        run, order, orders = _proposed_order_locked(actor, run_id, order_id, "dropped")
        account = order.portfolio
        after = None
        try:
            before, after = account_what_if(
                run, account, orders, edited=order.pk, quantity=Decimal(0)
            )
        except ValueError:
            pass  # the account cannot be measured now: the drop itself breaks nothing
        else:
            floor_before = set(before.breaches["rule"]) & {"cash floor"}
            low = after.breaches[after.breaches["rule"] == "cash floor"]
            if len(low) and not floor_before:
                raise ValidationError(
                    f"Dropping order #{order.pk} ({order.get_side_display().lower()} "
                    f"{order.security.ticker}) would break {account.code}'s cash floor: "
                    f"{low.iloc[0]['detail']}. Drop or reduce a buy first."
                )
        run_orders_cancel(actor=actor, run=run, reason=f"Dropped from {run}", order_ids=[order_id])
        if after is not None:
            _account_summary_store(run, account, after, run.summary.get(account.code, {}))
    return run


def _proposed_order_locked(actor, run_id: int, order_id: int, verb: str):
    """The proposed run (locked, the actor's), its draft order `order_id` and the draft
    orders of that order's account (locked, in pk order), for a drop or an edit."""
    run = RebalanceRun.objects.select_for_update(of=("self",)).get(pk=run_id)
    _ensure_run_owner(actor, run)
    if run.status != RebalanceRun.Status.PROPOSED:
        raise ValidationError(f"Only a proposed run's orders can be {verb}.")
    order = (
        run.orders.select_for_update(of=("self",))
        .select_related("portfolio", "security")
        .filter(pk=order_id, status=Order.Status.DRAFT)
        .first()
    )
    if order is None:
        raise ValidationError(f"Order {order_id} is not a proposed order of {run}.")
    orders = list(
        run.orders.select_for_update(of=("self",))
        .select_related("portfolio", "security")
        .filter(portfolio=order.portfolio, status=Order.Status.DRAFT)
        .order_by("pk")
    )
    return run, order, orders


def rebalance_run_release(*, actor, run_id: int) -> RebalanceRun:
    """Release an approved run's orders to the trading desk, in bulk, into blocks."""
    return _run_step(
        actor=actor,
        run_id=run_id,
        target=RebalanceRun.Status.RELEASED,
        kind="rebalance.released",
        act=lambda run: run_orders_release(actor=actor, run=run),
    )


def rebalance_run_cancel(*, actor, run_id: int) -> RebalanceRun:
    """Drop a run that was not released (a running one too: its chunks stop writing);
    its unreleased orders are cancelled in bulk."""
    return _run_step(
        actor=actor,
        run_id=run_id,
        target=RebalanceRun.Status.CANCELLED,
        kind="rebalance.cancelled",
        act=lambda run: run_orders_cancel(
            actor=actor, run=run, reason=f"Rebalance #{run_id} cancelled"
        ),
    )


def rebalance_run_rerun(*, actor, run_id: int) -> RebalanceRun:
    """Send a proposal back for a re-run: the run is cancelled (its drafts with it, its
    cash flows back to pending) and a new run over the same accounts, with the same
    parameters, measures them again as they are now (models, cash flows, prices). A
    proposed or approved run goes back, or a failed one (it is only run again); all
    in one transaction, so a re-run that cannot start leaves the run as it was."""
    from portfolios.selectors import portfolios_for_action

    Status = RebalanceRun.Status
    with audited_transaction():
        run = RebalanceRun.objects.select_for_update(of=("self",)).get(pk=run_id)
        _ensure_run_owner(actor, run)
        if run.status not in (Status.PROPOSED, Status.APPROVED, Status.FAILED):
            raise ValidationError(
                {"run": [f"{run} is {run.get_status_display().lower()}: only a proposed, "
                         "approved or failed run goes back for a re-run."]}
            )  # fmt: skip
        accounts = list(
            portfolios_for_action(actor, Action.REBALANCE_RUN).filter(
                pk__in=run.portfolios.values("pk")
            )
        )
        if not accounts:
            raise ValidationError(
                {"run": [f"None of the accounts of {run} is yours to rebalance."]}
            )
        if run.status != Status.FAILED:
            rebalance_run_cancel(actor=actor, run_id=run.pk)
        again = rebalance_run_create(actor=actor, portfolios=accounts, parameters=run.parameters)
        audit_record(
            actor=actor,
            kind="rebalance.sent_back",
            obj=run,
            before={"status": run.status},
            after={"rerun": again.pk, "accounts": sorted(p.code for p in accounts)},
        )
    return again


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
    """The actor may rebalance every account of the run (one query at most)."""
    require(actor, Action.REBALANCE_RUN)
    if sees_all_accounts(actor, Action.REBALANCE_RUN):
        return
    if run.portfolios.exclude(manager_id=actor.pk).exists():
        raise PermissionDenied("You do not manage the accounts of this run.")


# --- Cash flows: deposits to invest, withdrawals to raise ----------------------------------


def _flow_figures(flow: CashFlow) -> dict:
    return {
        "portfolio": flow.portfolio.code,
        "kind": flow.kind,
        "currency": flow.currency,
        "amount": str(flow.amount),
        "status": flow.status,
    }


def cash_flow_create(
    *, actor, portfolio: Portfolio, kind: str, currency: str, amount, note: str = ""
) -> CashFlow:
    """Enter a deposit or a withdrawal for an account: the account's next run uses it."""
    require(actor, Action.REBALANCE_RUN, portfolio)
    clean, errors = check_flow(
        kind=kind,
        currency=currency,
        amount=amount,
        note=note,
        base_currency=portfolio.base_currency,
        fx=FxTable.latest(),
    )
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})
    with audited_transaction():
        portfolio = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
        flow = CashFlow.objects.create(
            portfolio=portfolio,
            kind=clean.kind,
            currency=clean.currency,
            amount=clean.amount,
            note=clean.note,
            created_by=actor,
        )
        audit_record(actor=actor, kind="cash_flow.created", obj=flow, after=_flow_figures(flow))
    return flow


def cash_flows_import(*, actor, text: str) -> list[CashFlow]:
    """Enter the cash flows of a CSV file (account, currency, amount, kind): all of them,
    or none when any line is wrong (each named with its line number)."""
    from portfolios.selectors import portfolios_for_action

    require(actor, Action.REBALANCE_RUN)
    rows, errors = read_csv(text)
    if errors:
        raise ValidationError({"file": errors})
    codes = {(row.get("account") or "").strip() for _, row in rows}
    accounts = {
        p.code: p for p in portfolios_for_action(actor, Action.REBALANCE_RUN).filter(code__in=codes)
    }
    fx = FxTable.latest()
    clean: list[tuple[Portfolio, object]] = []
    for line, row in rows:
        code = (row.get("account") or "").strip()
        portfolio = accounts.get(code)
        if portfolio is None:
            errors.append(f"Line {line}: no account {code or '(blank)'!r} among yours.")
            continue
        flow, problems = check_flow(
            kind=row.get("kind"),
            currency=row.get("currency"),
            amount=row.get("amount"),
            note=(row.get("note") or ""),
            base_currency=portfolio.base_currency,
            fx=fx,
        )
        for field, message in problems.items():
            errors.append(f"Line {line}: {field}: {message}")
        if flow is not None:
            clean.append((portfolio, flow))
    if errors:
        more = f" … and {len(errors) - 50} more" if len(errors) > 50 else ""
        shown = errors[:50]
        if more:
            shown[-1] += more
        raise ValidationError({"file": shown})
    with audited_transaction():
        list(
            Portfolio.objects.select_for_update()
            .filter(pk__in=[p.pk for p, _ in clean])
            .values_list("pk", flat=True)
        )
        flows = CashFlow.objects.bulk_create(
            [
                CashFlow(
                    portfolio=portfolio,
                    kind=flow.kind,
                    currency=flow.currency,
                    amount=flow.amount,
                    note=flow.note,
                    created_by=actor,
                )
                for portfolio, flow in clean
            ],
            batch_size=1000,
        )
        audit_record_many(
            actor=actor,
            kind="cash_flow.created",
            entries=[(flow, None, _flow_figures(flow)) for flow in flows],
            reason="CSV import",
        )
    return flows


def cash_flow_cancel(*, actor, cash_flow_id: int, reason: str = "") -> CashFlow:
    """Cancel a pending cash flow (one a run holds is given back when the run ends)."""
    with audited_transaction():
        flow = (
            CashFlow.objects.select_for_update(of=("self",))
            .select_related("portfolio")
            .filter(pk=cash_flow_id)
            .first()
        )
        if flow is None:
            raise ValidationError(f"No cash flow #{cash_flow_id}.")
        require(actor, Action.REBALANCE_RUN, flow.portfolio)
        if flow.status != CashFlow.Status.PENDING:
            raise ValidationError(
                f"Cash flow #{flow.pk} is {flow.get_status_display().lower()}: only a "
                "pending one can be cancelled."
            )
        before = {"status": flow.status}
        check_transition(flow, CashFlow.TRANSITIONS, CashFlow.Status.CANCELLED)
        flow.status = CashFlow.Status.CANCELLED
        flow.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            kind="cash_flow.cancelled",
            obj=flow,
            before=before,
            after={"status": flow.status},
            reason=reason,
        )
    return flow


def rebalance_raise_cash(
    *,
    actor,
    portfolio: Portfolio,
    amount=None,
    currency: str | None = None,
    parameters: dict | None = None,
) -> RebalanceRun:
    """Raise cash in one account: a run that only sells, what drifts most first, to
    free the account's pending withdrawals; with `amount`, a withdrawal of that much
    is entered first (in `currency`, default the account's) and raised by the run."""
    require(actor, Action.REBALANCE_RUN, portfolio)
    clean = parameters_check({**(parameters or {}), "objective": "raise_cash"})
    _refuse_accounts_in_open_runs([portfolio.pk])
    # The withdrawal and the run that raises it, together or not at all: a run of the
    # account opened meanwhile refuses this one, and the withdrawal is not left behind
    # for that other run (or the next) to raise unasked. The run's account is taken
    # first, the account row (locked by cash_flow_create) after: a run opened at once
    # waits on that one row, never on a lock this transaction takes after it.
    entered = None
    with audited_transaction():
        run, inline = _run_open(actor, [portfolio], clean, None)
        if amount in (None, ""):
            pending = CashFlow.objects.filter(
                portfolio=portfolio,
                status=CashFlow.Status.PENDING,
                kind=CashFlow.Kind.WITHDRAWAL,
            )
            if not pending.exists() and not clean.get("cash_need"):
                raise ValidationError(
                    {
                        "amount": [
                            f"Enter the amount to raise: {portfolio.code} has no pending "
                            "withdrawal."
                        ]
                    }
                )
        else:
            entered = cash_flow_create(
                actor=actor,
                portfolio=portfolio,
                kind=CashFlow.Kind.WITHDRAWAL,
                currency=currency or portfolio.base_currency,
                amount=amount,
                note="Raise cash",
            )
    run = _run_start(run, inline)
    taken = CashFlow.objects.filter(pk=getattr(entered, "pk", None)).exclude(
        status=CashFlow.Status.PENDING
    )
    if entered is not None and inline and not taken.exists():
        # The run did not take the withdrawal it was opened for (it failed, or skipped
        # the account: more than it can free, no price): cancel it rather than leave it
        # pending for every later run of the account to trip on.
        why = run.error or run.skipped.get(portfolio.code) or "not raised"
        with contextlib.suppress(ValidationError):  # taken meanwhile by another run
            cash_flow_cancel(
                actor=actor, cash_flow_id=entered.pk, reason=f"Not raised by {run}: {why}"[:500]
            )
    return run


def _cash_flows_used(run: RebalanceRun, actor, flow_ids: list[int]) -> None:
    """The run holds the pending flows it used (inside the chunk's transaction, which
    has locked them and seen them pending)."""
    if not flow_ids:
        return
    CashFlow.objects.filter(pk__in=flow_ids).update(
        status=CashFlow.Status.IN_RUN, run=run, updated_at=timezone.now()
    )
    audit_record(
        actor=actor,
        kind="cash_flows.in_run",
        obj=run,
        after={"cash_flows": sorted(flow_ids), "status": CashFlow.Status.IN_RUN},
    )


#: The orders of a run that go nowhere: an account with only these trades nothing.
_DEAD_ORDERS = (Order.Status.CANCELLED, Order.Status.REJECTED, Order.Status.EXPIRED)


def _cash_flows_end(run: RebalanceRun, actor, target: str) -> None:
    """A released run books its deposits on the accounts' cash (applied), and its
    withdrawals where it sells nothing for the account; a withdrawal that the run's
    sells raise waits for them (`cash_flows_settle` books it once they are allocated).
    A run cancelled or failed gives its flows back (pending, for the next run), and so
    does a released run for an account whose every proposed order was left out
    (dropped, not selected, refused): nothing was traded to raise or invest them."""
    flows = list(
        CashFlow.objects.select_for_update(of=("self",))
        .filter(run=run, status=CashFlow.Status.IN_RUN)
        .order_by("pk")
    )
    if not flows:
        return
    back = flows
    if target == RebalanceRun.Status.RELEASED:
        proposed = set(run.orders.values_list("portfolio_id", flat=True).distinct())
        going = set(
            run.orders.exclude(status__in=_DEAD_ORDERS)
            .values_list("portfolio_id", flat=True)
            .distinct()
        )
        left_out = proposed - going
        back = [f for f in flows if f.portfolio_id in left_out]
        flows = [f for f in flows if f.portfolio_id not in left_out]
    if back:
        _cash_flows_return(back, actor=actor, obj=run)
    if not flows or target != RebalanceRun.Status.RELEASED:
        return
    selling = _accounts_with_sells_on_their_way(
        run.orders.filter(portfolio_id__in={f.portfolio_id for f in flows})
    )
    waiting = [f for f in flows if f.kind == CashFlow.Kind.WITHDRAWAL and f.portfolio_id in selling]
    for flow in waiting:
        check_transition(flow, CashFlow.TRANSITIONS, CashFlow.Status.AWAITING_SELLS)
    if waiting:
        CashFlow.objects.filter(pk__in=[f.pk for f in waiting]).update(
            status=CashFlow.Status.AWAITING_SELLS, updated_at=timezone.now()
        )
        audit_record_many(
            actor=actor,
            kind="cash_flow.awaiting_sells",
            entries=[
                (f, {"status": f.status}, {"status": CashFlow.Status.AWAITING_SELLS, "run": run.pk})
                for f in waiting
            ],
        )
    _cash_flows_book([f for f in flows if f not in waiting], actor=actor, run_id=run.pk)


def _cash_flows_return(flows: list[CashFlow], *, actor, obj, reason: str = "") -> None:
    """These flows (locked) back to pending, free for the next run; one event on ``obj``."""
    for flow in flows:
        check_transition(flow, CashFlow.TRANSITIONS, CashFlow.Status.PENDING)
    CashFlow.objects.filter(pk__in=[f.pk for f in flows]).update(
        status=CashFlow.Status.PENDING, run=None, updated_at=timezone.now()
    )
    audit_record(
        actor=actor,
        kind="cash_flows.returned",
        obj=obj,
        after={"cash_flows": [f.pk for f in flows], "status": CashFlow.Status.PENDING},
        reason=reason,
    )


#: A sell still raising cash: on the desk, or ended with fills not yet allocated.
_SELLS_ENDED_UNALLOCATED = (Order.Status.CANCELLED, Order.Status.EXPIRED, Order.Status.DONE_FOR_DAY)


def _accounts_with_sells_on_their_way(orders) -> set[int]:
    """The accounts of ``orders`` (a queryset) with a sell whose cash has not all come
    in yet: approved or on the desk, filled and not yet allocated, or ended with fills
    awaiting allocation. One query."""
    return set(
        orders.filter(side__in=(Side.SELL, Side.SELL_SHORT))
        .filter(
            Q(status__in=Order.COMMITTED_STATES | {Order.Status.FILLED})
            | Q(status__in=_SELLS_ENDED_UNALLOCATED, filled_quantity__gt=0)
        )
        .values_list("portfolio_id", flat=True)
        .distinct()
    )


def _cash_flows_book(flows: list[CashFlow], *, actor, run_id: int | None) -> None:
    """Book these flows (locked, in a run) on their accounts' cash: applied."""
    if not flows:
        return
    # The balances of every flow, created when missing and locked in one go, in pk
    # order as fills lock them (holdings_book_fills); written with one statement.
    accounts = sorted({f.portfolio_id for f in flows})
    currencies = sorted({f.currency for f in flows})
    CashBalance.objects.bulk_create(
        [
            CashBalance(portfolio_id=pk, currency=currency)
            for pk, currency in sorted({(f.portfolio_id, f.currency) for f in flows})
        ],
        ignore_conflicts=True,
    )
    balances = {
        (b.portfolio_id, b.currency): b
        for b in CashBalance.objects.select_for_update()
        .filter(portfolio_id__in=accounts, currency__in=currencies)
        .order_by("pk")
    }
    entries = []
    for flow in flows:
        balance = balances[(flow.portfolio_id, flow.currency)]
        before = {"status": flow.status, "cash": str(balance.amount)}
        balance.amount -= flow.signed_need
        check_transition(flow, CashFlow.TRANSITIONS, CashFlow.Status.APPLIED)
        flow.status = CashFlow.Status.APPLIED
        entries.append(
            (
                flow,
                before,
                {
                    "status": flow.status,
                    "currency": flow.currency,
                    "cash": str(balance.amount),
                    "run": run_id,
                },
            )
        )
    touched = {(f.portfolio_id, f.currency) for f in flows}
    update_rows(CashBalance, [b for key, b in balances.items() if key in touched], ["amount"])
    CashFlow.objects.filter(pk__in=[f.pk for f in flows]).update(
        status=CashFlow.Status.APPLIED, updated_at=timezone.now()
    )
    drift_mark_stale(portfolio_ids={f.portfolio_id for f in flows})  # their cash moved
    audit_record_many(actor=actor, kind="cash_flow.applied", entries=entries)


def cash_flows_settle(*, portfolio_ids: Iterable[int] | None = None) -> dict[str, int]:
    """Book the withdrawals waiting for their run's sells, for these accounts (all when
    None), once every sell of the run for the account has ended and been allocated:
    applied, in the flow's own currency, when the account's cash in all its currencies,
    valued in its base at the latest FX rates, covers it (a EUR withdrawal that USD
    sells raised is booked: the desk converts); otherwise given back (pending, for the
    next run to raise) with the shortfall as the reason. A flow whose run is gone waits
    on nothing. Run after each allocation (the post-trade seam) and by Celery beat for
    sells that ended with nothing filled. Returns how many were applied and returned."""
    with audited_transaction():
        waiting = CashFlow.objects.select_for_update(of=("self",)).filter(
            status=CashFlow.Status.AWAITING_SELLS
        )
        if portfolio_ids is not None:
            waiting = waiting.filter(portfolio_id__in=list(portfolio_ids))
        flows = list(waiting.order_by("pk"))
        if not flows:
            return {"applied": 0, "returned": 0}
        busy = set()
        for run_id in {f.run_id for f in flows} - {None}:
            accounts = {f.portfolio_id for f in flows if f.run_id == run_id}
            busy |= {
                (run_id, pk)
                for pk in _accounts_with_sells_on_their_way(
                    Order.objects.filter(rebalance_run_id=run_id, portfolio_id__in=accounts)
                )
            }
        ready = [f for f in flows if (f.run_id, f.portfolio_id) not in busy]
        if not ready:
            return {"applied": 0, "returned": 0}
        accounts = {f.portfolio_id for f in ready}
        base_of = dict(Portfolio.objects.filter(pk__in=accounts).values_list("pk", "base_currency"))
        fx = FxTable.latest()
        # Locked before the comparison, in pk order as fills lock them: an allocation
        # committing meanwhile is waited for, not compared against stale cash.
        available: dict[int, float] = dict.fromkeys(accounts, 0.0)
        for balance in (
            CashBalance.objects.select_for_update().filter(portfolio_id__in=accounts).order_by("pk")
        ):
            rate = fx.rate(balance.currency, base_of[balance.portfolio_id])
            if rate is not None:
                available[balance.portfolio_id] += float(balance.amount) * rate
        book, short = [], []
        for flow in ready:
            base = base_of[flow.portfolio_id]
            rate = fx.rate(flow.currency, base)
            need = None if rate is None else float(flow.amount) * rate
            if need is not None and available[flow.portfolio_id] >= need - 0.005:
                available[flow.portfolio_id] -= need
                book.append(flow)
            else:
                short.append((flow, base, available[flow.portfolio_id], need))
        for run_id in {f.run_id for f in book}:
            _cash_flows_book([f for f in book if f.run_id == run_id], actor=None, run_id=run_id)
        for flow, base, have, need in short:
            _cash_flows_return(
                [flow],
                actor=None,
                obj=flow,
                reason=(
                    f"no FX rate from {flow.currency} to {base} to book it: the next run raises it"
                    if need is None
                    else f"its sells ended with {have:,.2f} {base} in cash, short of the "
                    f"{need:,.2f} {base} ({flow.amount:,.2f} {flow.currency}) to withdraw: "
                    "the next run raises it"
                ),
            )
        return {"applied": len(book), "returned": len(short)}


# --- Proposal review: edit a proposed quantity ----------------------------------------------


def _summaries_measure_again(run: RebalanceRun, account_ids) -> None:
    """The what-if of these accounts of a proposed run measured again on their draft
    orders (one book, one engine pass): cash and drift after, trades, gains. An account
    that cannot be valued now keeps the figures the run found."""
    from portfolios.rebalance import BookError, what_if

    ids = sorted(account_ids)
    if not ids:
        return
    book = load_projected_book(ids).book
    in_book = book.accounts["account"].tolist()
    if not in_book:
        return
    codes = dict(Portfolio.objects.filter(pk__in=in_book).values_list("pk", "code"))
    book.accounts["cash_need"] = [
        float(run.summary.get(codes[a], {}).get("cash_need") or 0.0) for a in in_book
    ]
    left = run.orders.filter(portfolio_id__in=in_book, status=Order.Status.DRAFT).order_by("pk")
    try:
        result = what_if(book, account_trades(left), run_options(run.parameters))
    except BookError:
        return
    summary = dict(run.summary)
    for row in result.accounts.to_dict("records"):
        code = codes[row["account"]]
        row["status"] = summary.get(code, {}).get("status", row["status"])
        summary[code] = {k: _plain(v) for k, v in row.items() if k != "account"}
    run.summary = summary
    run.save(update_fields=["summary", "updated_at"])


def _account_summary_store(run: RebalanceRun, account: Portfolio, result, figures) -> dict:
    """Keep an account's what-if measured again in the run's summary (its status as
    the run found it)."""
    [row] = result.accounts.to_dict("records")
    row["status"] = figures.get("status", row["status"])
    run.summary = {
        **run.summary,
        account.code: {k: _plain(v) for k, v in row.items() if k != "account"},
    }
    run.save(update_fields=["summary", "updated_at"])
    return row


def rebalance_run_order_edit(*, actor, run_id: int, order_id: int, quantity) -> RebalanceRun:
    """Change the quantity of one proposed order of a proposed run. The what-if of its
    account is measured again (weights, cash and drift after, gains) on the book as it
    stands, and the pre-trade check asked again about the account's proposed orders.
    An edit that breaks a rule of the account (whole lots, minimum quantity, selling
    more than is held, the cash floor, a restricted security) is refused, nothing saved."""
    try:
        quantity = Decimal(str(quantity))
    except (ArithmeticError, ValueError):
        raise ValidationError({"quantity": ["Must be a number."]}) from None
    if not quantity.is_finite() or quantity <= 0:
        raise ValidationError(
            {"quantity": ["Must be more than zero (drop the order to trade none of it)."]}
        )
    if quantity > Decimal("1e12") or quantity != quantity.quantize(Decimal("0.000001")):
        raise ValidationError({"quantity": ["At most 1e12, with at most six decimals."]})
    with audited_transaction():
        run, order, orders = _proposed_order_locked(actor, run_id, order_id, "edited")
        account = order.portfolio
        figures = run.summary.get(account.code, {})
        try:
            before, after = account_what_if(
                run, account, orders, edited=order.pk, quantity=quantity
            )
        except ValueError as error:  # the account cannot be valued, or a BookError
            raise ValidationError(str(error)) from None
        old = {(b.security, b.rule) for b in before.breaches.itertuples(index=False)}
        new = [
            b
            for b in after.breaches.itertuples(index=False)
            if (b.security, b.rule) not in old
            and (b.security is None or b.security == order.security_id)
        ]
        if new:
            ticker = order.security.ticker
            raise ValidationError(
                {
                    "quantity": [
                        f"{order.get_side_display()} {quantity.normalize():f} {ticker} in "
                        f"{account.code}: {b.rule}: {b.detail}."
                        for b in new
                    ]
                }
            )
        previous = order.quantity
        order.quantity = quantity
        order.save(update_fields=["quantity", "updated_at"])
        row = _account_summary_store(run, account, after, figures)
        # the check judges the order as it now is, not as it was read before the edit
        orders = [order if o.pk == order.pk else o for o in orders]
        ProposalCheck.objects.filter(order__in=orders).delete()
        _store_verdicts(run, orders, pretrade.check(orders, stage="proposal", actor=actor))
        audit_record(
            actor=actor,
            kind="orders.quantity_edited",
            obj=run,
            before={
                "order": order.pk,
                "quantity": str(previous),
                "cash_after": _plain(figures.get("cash_after")),
                "drift_after": _plain(figures.get("drift_after")),
            },
            after={
                "orders": [[order.pk, order.pk]],
                "quantity": str(quantity),
                "cash_after": _plain(row["cash_after"]),
                "drift_after": _plain(row["drift_after"]),
            },
        )
    return run
