"""The orders of a rebalance run, written in bulk.

A run over the whole book proposes hundreds of thousands of orders; writing
them one `order_create` at a time, each with its own audit event, takes
minutes. These services write a run's orders set-wise instead: a few
statements whatever the number of orders (COPY on PostgreSQL), and ONE audit
event per step, on the run, naming the orders it moved (as id ranges, see
`id_ranges`). An order's history is the events on the order itself plus the run
events whose ranges hold its id (`audit.selectors`-style reading in
`orchestration.selectors.order_history`).

The rules are those of the one-order services (`orders.py`): the same
transition map, the same "sells covered" rule, the same blocks. They are
checked once per batch, on the whole set, in SQL or numpy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import Q, Sum
from django.db.models.base import ModelState
from django.utils import timezone

from audit.services import audit_record, audited_transaction
from oms.bulk import ids_in
from oms.numbers import MAX_QUANTITY, ZERO
from oms.roles import Action, require, sees_all_accounts
from oms.state import TransitionError
from portfolios.models import Portfolio, Position, Security
from trading import pretrade
from trading.models import Block, LotMethod, Order, OrderType, Side, TimeInForce

from .blocks import block_changed


def id_ranges(ids: Sequence[int]) -> list[list[int]]:
    """Sorted ids as inclusive ``[first, last]`` ranges: ids handed out together by
    the sequence are consecutive, so a run's orders fit in a handful of ranges."""
    ranges: list[list[int]] = []
    for pk in sorted(ids):
        if ranges and pk == ranges[-1][1] + 1:
            ranges[-1][1] = pk
        else:
            ranges.append([pk, pk])
    return ranges


def in_ranges(pk: int, ranges) -> bool:
    return any(first <= pk <= last for first, last in ranges)


class ProposedOrder(NamedTuple):
    """One order a run proposes: plain data, not yet a row (a tuple: a run builds tens
    of thousands of them, which a frozen dataclass's checked assignments slow down)."""

    portfolio_id: int
    security_id: int
    side: str
    quantity: Decimal
    estimated_price: Decimal | None
    #: how a sell closes tax lots: the specific ``lots`` ((lot id, quantity), ...)
    #: first, then the rest by this method
    lot_method: str = "fifo"
    lots: tuple = ()


def _check_transition(source: str, target: str) -> None:
    if target not in Order.TRANSITIONS[source]:
        raise TransitionError(f"An order cannot go from {source} to {target}.")


def _require_accounts(actor, action: Action, portfolio_ids) -> None:
    """The actor may take `action` on every one of these accounts (one query at most):
    `portfolio_ids` a set of ids or a queryset of them (a subquery, never fetched)."""
    require(actor, action)
    if sees_all_accounts(actor, action):
        return
    if isinstance(portfolio_ids, (set, frozenset, list, tuple)) and not portfolio_ids:
        return
    foreign = (
        Portfolio.objects.filter(pk__in=portfolio_ids)
        .exclude(manager_id=actor.pk)
        .values_list("code", flat=True)
        .first()
    )
    if foreign is not None:
        raise PermissionDenied(f"You do not manage account {foreign}.")


def _check_proposed(proposed: Sequence[ProposedOrder]) -> None:
    """The terms of a batch, checked on the whole set: quantities, whole units, minimum
    quantities, active securities and accounts, and sells covered by what each account
    holds less what other sells have already committed (`order_check`, set-wise)."""
    methods = {p.lot_method for p in proposed} - set(LotMethod.values)
    if methods:
        raise ValidationError(
            f"Lot method {sorted(methods)[0]!r} is not one of {', '.join(LotMethod.values)}."
        )
    security_ids = {p.security_id for p in proposed}
    portfolio_ids = {p.portfolio_id for p in proposed}
    securities = {
        s["pk"]: s
        for s in Security.objects.filter(ids_in(Security, "id", security_ids)).values(
            "pk", "ticker", "is_active", "fractional", "min_quantity"
        )
    }
    accounts = {
        p["pk"]: p
        for p in Portfolio.objects.filter(ids_in(Portfolio, "id", portfolio_ids)).values(
            "pk", "code", "is_active"
        )
    }
    sells = [p for p in proposed if p.side == Side.SELL]
    held: dict[tuple[int, int], Decimal] = {}
    committed: dict[tuple[int, int], Decimal] = {}
    if sells and connection.vendor == "postgresql":
        held, committed = _held_and_committed({(p.portfolio_id, p.security_id) for p in sells})
    elif sells:
        sell_accounts = {p.portfolio_id for p in sells}
        sell_securities = {p.security_id for p in sells}
        for portfolio_id, security_id, quantity in Position.objects.filter(
            portfolio_id__in=sell_accounts, security_id__in=sell_securities
        ).values_list("portfolio_id", "security_id", "quantity"):
            held[(portfolio_id, security_id)] = quantity
        for row in (
            Order.objects.filter(
                portfolio_id__in=sell_accounts,
                security_id__in=sell_securities,
                side=Side.SELL,
                status__in=Order.COMMITTED_STATES,
            )
            .values("portfolio_id", "security_id")
            .annotate(total=Sum("quantity"))
        ):
            committed[(row["portfolio_id"], row["security_id"])] = row["total"]
    wanted: dict[tuple[int, int], Decimal] = {}
    for p in sells:
        key = (p.portfolio_id, p.security_id)
        wanted[key] = wanted.get(key, ZERO) + p.quantity
    if _clean(proposed, securities, accounts, wanted, held, committed):
        return
    # One of them breaks a rule: find the first, order by order, to name it.
    for p in proposed:
        security, account = securities.get(p.security_id), accounts.get(p.portfolio_id)
        where = f"{account['code'] if account else p.portfolio_id}"
        ticker = security["ticker"] if security else str(p.security_id)
        problem = None
        if account is None or not account["is_active"]:
            problem = f"account {where} is closed or unknown"
        elif security is None or not security["is_active"]:
            problem = f"{ticker} is not active"
        elif p.side not in (Side.BUY, Side.SELL):
            problem = f"unknown side {p.side!r}"
        elif not ZERO < p.quantity < MAX_QUANTITY:
            problem = f"quantity {p.quantity} is not positive or too large"
        elif p.quantity < security["min_quantity"]:
            problem = f"{p.quantity} is below the minimum quantity {security['min_quantity']}"
        elif not security["fractional"] and p.quantity != p.quantity.to_integral_value():
            problem = f"{ticker} trades in whole units only"
        elif p.side == Side.SELL:
            key = (p.portfolio_id, p.security_id)
            room = held.get(key, ZERO) - committed.get(key, ZERO)
            if wanted[key] > room:
                problem = (
                    f"sells {wanted[key]} but holds {held.get(key, ZERO)} with "
                    f"{committed.get(key, ZERO)} already committed to other sells"
                )
        if problem:
            raise ValidationError(f"Account {where}, {p.side} {ticker}: {problem}.")


def _clean(proposed, securities: dict, accounts: dict, wanted: dict, held, committed) -> bool:
    """Whether every order of the batch passes `_check_proposed`'s rules, asked of the
    whole set at once (each rule over the orders it can fail, the sells once per
    account and security) rather than order by order: tens of thousands of orders
    that pass cost a few passes over their quantities."""
    if not proposed:
        return True
    if not set(accounts) >= {p.portfolio_id for p in proposed}:
        return False
    if not all(a["is_active"] for a in accounts.values()):
        return False
    if not set(securities) >= {p.security_id for p in proposed}:
        return False
    if not all(s["is_active"] for s in securities.values()):
        return False
    if not {p.side for p in proposed} <= {Side.BUY, Side.SELL}:
        return False
    quantities = [p.quantity for p in proposed]
    if not (min(quantities) > ZERO and max(quantities) < MAX_QUANTITY):
        return False
    floor = {pk: s["min_quantity"] for pk, s in securities.items() if s["min_quantity"] > ZERO}
    whole = {pk for pk, s in securities.items() if not s["fractional"]}
    for p in proposed:
        if p.security_id in floor and p.quantity < floor[p.security_id]:
            return False
        if p.security_id in whole and p.quantity != p.quantity.to_integral_value():
            return False
    return all(
        total <= held.get(key, ZERO) - committed.get(key, ZERO) for key, total in wanted.items()
    )


def _held_and_committed(pairs: set[tuple[int, int]]) -> tuple[dict, dict]:
    """What each (account, security) of `pairs` holds, and what its sells already on
    their way (committed) hold of it: two queries joined to the pairs themselves (two
    array parameters), not the accounts by the securities."""
    accounts, securities = zip(*sorted(pairs), strict=True)
    wanted = "unnest(%s::bigint[], %s::bigint[]) AS w(a, s)"
    held: dict[tuple[int, int], Decimal] = {}
    committed: dict[tuple[int, int], Decimal] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.portfolio_id, p.security_id, p.quantity FROM {Position._meta.db_table} p"
            f" JOIN {wanted} ON p.portfolio_id = w.a AND p.security_id = w.s",
            [list(accounts), list(securities)],
        )
        for account, security, quantity in cursor.fetchall():
            held[(account, security)] = quantity
        cursor.execute(
            f"SELECT o.portfolio_id, o.security_id, SUM(o.quantity) FROM {Order._meta.db_table} o"
            f" JOIN {wanted} ON o.portfolio_id = w.a AND o.security_id = w.s"
            " WHERE o.side = %s AND o.status = ANY(%s::text[])"
            " GROUP BY o.portfolio_id, o.security_id",
            [list(accounts), list(securities), Side.SELL, sorted(Order.COMMITTED_STATES)],
        )
        for account, security, total in cursor.fetchall():
            committed[(account, security)] = total
    return held, committed


#: The orders' id sequence (its name, once per process: it does not change).
_ORDER_SEQUENCE: str | None = None


def _next_order_ids(count: int) -> list[int]:
    """`count` ids from the orders' sequence, in one statement: their first, last and
    count when they came out consecutive (as they do unless another writer takes ids
    from the sequence at the same moment), every one of them otherwise.

    The sequence is named by a constant (``'...'::regclass``), looked up once: asked
    through ``pg_get_serial_sequence`` in the statement, it was looked up again for each
    of the ids, ten times the cost of drawing them."""
    global _ORDER_SEQUENCE
    with connection.cursor() as cursor:
        if _ORDER_SEQUENCE is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Order._meta.db_table])
            _ORDER_SEQUENCE = cursor.fetchone()[0]
        cursor.execute(
            "SELECT min(id), max(id), count(*), CASE WHEN max(id) - min(id) + 1 = count(*)"
            " THEN NULL ELSE array_agg(id ORDER BY id) END FROM (SELECT"
            " nextval(%s::regclass) AS id FROM generate_series(1, %s)) s",
            [_ORDER_SEQUENCE, count],
        )
        first, last, got, scattered = cursor.fetchone()
    assert got == count
    return list(range(first, last + 1)) if scattered is None else list(scattered)


_COPY_COLUMNS = (
    "id",
    "portfolio_id",
    "security_id",
    "side",
    "order_type",
    "time_in_force",
    "quantity",
    "status",
    "filled_quantity",
    "estimated_price",
    "rebalance_run_id",
    "notes",
    "created_by_id",
    "created_at",
    "updated_at",
    "compliance_note",
    "lot_method",
    "lots",
)


def _copy_orders(ids, proposed, lots, *, run_id: int, actor_id: int, notes: str, now) -> None:
    """COPY the rows into the orders table (PostgreSQL): one statement, no ORM objects.
    `lots`: each order's lots as it stores them (`_stored_lots`)."""
    stamp = now.isoformat()
    # the columns every row shares, written once
    middle = f"\t{OrderType.MARKET.value}\t{TimeInForce.DAY.value}\t"
    tail = f"\t{Order.Status.DRAFT.value}\t0\t"
    after = f"\t{run_id}\t{notes}\t{actor_id}\t{stamp}\t{stamp}\t\t"
    null = "\\N"
    lines = [
        f"{pk}\t{p.portfolio_id}\t{p.security_id}\t{p.side}{middle}{p.quantity}{tail}"
        f"{null if p.estimated_price is None else p.estimated_price}{after}{p.lot_method}\t"
        f"{json.dumps(taken) if taken else '[]'}\n"
        for pk, p, taken in zip(ids, proposed, lots, strict=True)
    ]
    table = connection.ops.quote_name(Order._meta.db_table)
    columns = ", ".join(_COPY_COLUMNS)
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write("".join(lines))


def _stored_lots(proposed) -> list[list]:
    """Each order's lots as the order stores them, ``[[lot id, "quantity"], ...]`` (a
    list of its own per order), built once for the COPY (as JSON: ids and quantities as
    strings, no tab, newline or backslash to escape) and the instances."""
    return [[[int(pk), str(q)] for pk, q in p.lots] if p.lots else [] for p in proposed]


_ORDER_DEFAULTS: dict | None = None


def _loaded_orders(rows, *, defaults: bool = True, **common) -> list[Order]:
    """Order instances for rows just written (or read) as if read from the database,
    without Model.__init__ (which costs more than the COPY of the row itself): each
    row a dict of column values, over `common` (values every row shares) and, with
    `defaults`, the fields' defaults (without, a field the row lacks is deferred).
    Without defaults or `common`, each row's dict becomes its instance's own: pass
    dicts of their own, as a generator of them does."""
    global _ORDER_DEFAULTS
    if _ORDER_DEFAULTS is None:
        _ORDER_DEFAULTS = {
            field.attname: field.get_default() for field in Order._meta.concrete_fields
        }
    base = {**(_ORDER_DEFAULTS if defaults else {}), **common}
    new, state_of = Order.__new__, ModelState
    orders = []
    for values in rows:
        order = new(Order)
        state = state_of()
        state.adding = False
        state.db = "default"
        if base:
            order.__dict__ = {**base, **values, "_state": state}
        else:
            values["_state"] = state
            order.__dict__ = values
        orders.append(order)
    return orders


def run_orders_create(
    *, actor, run, proposed: Sequence[ProposedOrder], audit_after: dict | None = None
) -> list[Order]:
    """Create a run's proposed orders (drafts) in bulk, with one audit event on the run
    naming them. Runs inside the caller's transaction (the chunk that claimed the
    accounts). Returns the new orders as unsaved-looking instances with their ids
    (for the pre-trade check), in the order given."""
    _require_accounts(actor, Action.ORDER_CREATE, {p.portfolio_id for p in proposed})
    if not proposed:
        return []
    _check_proposed(proposed)
    now = timezone.now()
    notes = f"Rebalance #{run.pk}"
    with audited_transaction():

        def terms(p: ProposedOrder) -> dict:
            return {
                "portfolio_id": p.portfolio_id,
                "security_id": p.security_id,
                "side": p.side,
                "quantity": p.quantity,
                "estimated_price": p.estimated_price,
                "lot_method": p.lot_method,
                "lots": [[int(pk), str(quantity)] for pk, quantity in p.lots],
            }

        common = {"rebalance_run_id": run.pk, "notes": notes}
        if connection.vendor == "postgresql":
            ids = _next_order_ids(len(proposed))
            lots = _stored_lots(proposed)
            _copy_orders(
                ids, proposed, lots, run_id=run.pk, actor_id=actor.pk, notes=notes, now=now
            )
            orders = _loaded_orders(
                (
                    {
                        "id": pk,
                        "portfolio_id": p.portfolio_id,
                        "security_id": p.security_id,
                        "side": p.side,
                        "quantity": p.quantity,
                        "estimated_price": p.estimated_price,
                        "lot_method": p.lot_method,
                        "lots": taken,
                    }
                    for pk, p, taken in zip(ids, proposed, lots, strict=True)
                ),
                **common,
                created_by_id=actor.pk,
                created_at=now,
                updated_at=now,
            )
        else:  # the embedded SQLite demo: the ORM's multi-row insert
            orders = Order.objects.bulk_create(
                [Order(**terms(p), **common, created_by=actor) for p in proposed],
                batch_size=500,
            )
        audit_record(
            actor=actor,
            kind="orders.created",
            obj=run,
            after={
                "orders": id_ranges([o.pk for o in orders]),
                "count": len(orders),
                "status": Order.Status.DRAFT,
            }
            | (audit_after or {}),
        )
    return orders


#: Ids in one ``pk IN (...)`` (PostgreSQL takes at most 65,535 parameters a statement).
_IDS_PER_UPDATE = 10_000


def _run_orders(run, statuses, order_ids: Sequence[int] | None):
    orders = Order.objects.filter(rebalance_run=run, status__in=statuses)
    if order_ids is not None:
        orders = orders.filter(pk__in=list(order_ids))
    return orders


def run_orders_approve(*, actor, run, order_ids: Sequence[int] | None = None) -> dict[str, list]:
    """Approve a run's draft orders (all of them, or those named) in one transaction:
    the pre-trade check on the batch (stage `approve`), then one UPDATE per verdict and
    one audit event on the run naming the orders. Returns ``{status: [order ids]}``.

    Without a registered checker every order passes (`trading.pretrade`), and the
    orders are approved by a single UPDATE, never loaded."""
    require(actor, Action.ORDER_APPROVE)
    _check_transition(Order.Status.DRAFT, Order.Status.APPROVED)
    with audited_transaction():
        drafts = _run_orders(run, [Order.Status.DRAFT], order_ids)
        _require_accounts(actor, Action.ORDER_APPROVE, _accounts_of(drafts))
        moved: dict[str, list[int]] = {}
        now = timezone.now()
        if pretrade.registered() is None:
            moved[Order.Status.APPROVED] = _update_returning(
                drafts,
                [Order.Status.DRAFT],
                status=Order.Status.APPROVED,
                approved_by_id=actor.pk,
                updated_at=now,
            )
        else:
            # The checker reads the orders' own columns (their accounts and securities
            # it loads itself, once for the batch): no related rows built per order.
            locked = _orders_locked(drafts, [Order.Status.DRAFT])
            verdicts = pretrade.check(locked, stage="approve", actor=actor)
            # The verdict in words stays on each order, as a single approval keeps it.
            # Orders with the same verdict and words (every order that passes says
            # "Passes") are written by one UPDATE (their ids one array parameter): the
            # statements grow with the different verdicts, not with the orders.
            same: dict[tuple[str, str], list[int]] = {}
            for order in locked:
                verdict = verdicts[order.pk]
                # A verdict moves a draft only where an order may go from draft.
                target = Order.Status(verdict.status)
                _check_transition(Order.Status.DRAFT, target)
                same.setdefault((target, verdict.message[:1000]), []).append(order.pk)
                moved.setdefault(target, []).append(order.pk)
            for (target, note), ids in same.items():
                fields = {"status": target, "compliance_note": note, "updated_at": now}
                if target == Order.Status.APPROVED:
                    fields["approved_by_id"] = actor.pk
                _update_ids(ids, fields)
        audit_record(
            actor=actor,
            kind="orders.approved",
            obj=run,
            before={"status": Order.Status.DRAFT},
            after={status: id_ranges(ids) for status, ids in moved.items()}
            | {"count": sum(len(ids) for ids in moved.values())},
        )
    return moved


def _accounts_of(orders):
    """The accounts of these orders as a subquery (for `_require_accounts`)."""
    return orders.order_by().values("portfolio_id")


#: What `_orders_locked` reads of an order: its terms, state and run (what a check
#: judges). The rest (who created it, its notes and lots, the time stamps) is deferred,
#: as ``QuerySet.only`` defers it: read from the database if a checker asks for it.
_LOCKED_FIELDS = (
    "id",
    "portfolio_id",
    "security_id",
    *Order.TERM_FIELDS,
    "status",
    "filled_quantity",
    "estimated_price",
    "rebalance_run_id",
    "block_id",
    "lot_method",
)


def _orders_locked(queryset, statuses) -> list[Order]:
    """The orders of `queryset` locked (``FOR UPDATE``), in id order, as Order instances
    read from the driver's rows without ``Model.__init__`` (on PostgreSQL), with the
    fields of `_LOCKED_FIELDS` (the others deferred). Tens of thousands of model
    instances cost seconds; these cost a tuple each.

    `statuses` (those the queryset asks for) are asked again of the locking statement
    itself: PostgreSQL re-checks a row changed while the lock was awaited against the
    statement's own condition only, not a subquery's, and an order cancelled meanwhile
    would come back locked (and be approved by id)."""
    if connection.vendor != "postgresql":
        return list(queryset.select_for_update(of=("self",)).order_by("pk"))
    fields = [Order._meta.get_field(name.removesuffix("_id")) for name in _LOCKED_FIELDS]
    where, params = queryset.values("pk").query.sql_with_params()
    table = connection.ops.quote_name(Order._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    convert = [
        (i, f) for i, f in enumerate(fields) if getattr(f, "from_db_value", None) is not None
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {names} FROM {table} WHERE id IN ({where})"
            " AND status = ANY(%s::text[]) ORDER BY id FOR UPDATE",
            [*params, [str(s) for s in statuses]],
        )
        rows = cursor.fetchall()
    attnames = [f.attname for f in fields]
    if not convert:  # the driver's values are the fields' own: one dict per row
        return _loaded_orders(
            (dict(zip(attnames, row, strict=True)) for row in rows), defaults=False
        )

    def values(row) -> dict:
        found = dict(zip(attnames, row, strict=True))
        for i, field in convert:
            found[field.attname] = field.from_db_value(row[i], None, connection)
        return found

    return _loaded_orders((values(row) for row in rows), defaults=False)


def _update_ids(ids: Sequence[int], fields: dict) -> None:
    """UPDATE these orders' `fields`: one statement on PostgreSQL (the ids one array
    parameter), batches of ids elsewhere."""
    if connection.vendor != "postgresql":
        for start in range(0, len(ids), _IDS_PER_UPDATE):
            Order.objects.filter(pk__in=ids[start : start + _IDS_PER_UPDATE]).update(**fields)
        return
    table = connection.ops.quote_name(Order._meta.db_table)
    sets = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {sets} WHERE id = ANY(%s::bigint[])",
            [*fields.values(), list(ids)],
        )


def _update_returning(queryset, statuses, **fields) -> list[int]:
    """UPDATE the rows of `queryset` and return their ids, in one statement. `statuses`
    (those the queryset asks for) are asked again of the UPDATE itself: a row changed
    while the UPDATE waited for it is re-checked against the statement's own condition
    only (`_orders_locked`)."""
    if connection.vendor != "postgresql":
        ids = list(queryset.values_list("pk", flat=True))
        Order.objects.filter(pk__in=ids).update(**fields)
        return ids
    where, params = queryset.values("pk").query.sql_with_params()
    table = connection.ops.quote_name(Order._meta.db_table)
    sets = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {sets} WHERE id IN ({where})"
            " AND status = ANY(%s::text[]) RETURNING id",
            [*fields.values(), *params, [str(s) for s in statuses]],
        )
        return sorted(row[0] for row in cursor.fetchall())


def run_orders_cancel(
    *, actor, run, reason: str = "", order_ids: Sequence[int] | None = None
) -> list[int]:
    """Cancel a run's orders that have not reached the desk (drafts and approved ones;
    all of them, or those named) in one UPDATE, with one audit event on the run naming
    them."""
    require(actor, Action.ORDER_CANCEL)
    for source in (Order.Status.DRAFT, Order.Status.APPROVED):
        _check_transition(source, Order.Status.CANCELLED)
    with audited_transaction():
        open_orders = _run_orders(run, [Order.Status.DRAFT, Order.Status.APPROVED], order_ids)
        _require_accounts(actor, Action.ORDER_CANCEL, _accounts_of(open_orders))
        ids = _update_returning(
            open_orders,
            [Order.Status.DRAFT, Order.Status.APPROVED],
            status=Order.Status.CANCELLED,
            updated_at=timezone.now(),
        )
        audit_record(
            actor=actor,
            kind="orders.cancelled",
            obj=run,
            after={"status": Order.Status.CANCELLED, "orders": id_ranges(ids), "count": len(ids)},
            reason=reason,
        )
    return ids


def run_orders_release(*, actor, run) -> dict[int, list[int]]:
    """Release a run's approved orders to the desk in one transaction: the orders join
    the open block of their security, side and terms (as `orders_release` does), blocks
    that do not exist yet are created; a handful of statements whatever the number of
    orders (one per new block at most). One audit event on the run names the orders and
    each block's quantity before and after. Returns ``{block id: [order ids]}``."""
    require(actor, Action.ORDER_RELEASE)
    _check_transition(Order.Status.APPROVED, Order.Status.RELEASED)
    with audited_transaction():
        approved = _run_orders(run, [Order.Status.APPROVED], None)
        _require_accounts(actor, Action.ORDER_RELEASE, _accounts_of(approved))
        if pretrade.registered() is None:
            list(approved.select_for_update(of=("self",)).values_list("pk", flat=True))
        else:
            # Checked again, as a single release is: the book may have moved since the
            # approval. One order that fails holds the whole run back, named.
            locked = list(
                approved.select_for_update(of=("self",))
                .select_related("portfolio", "security")
                .order_by("pk")
            )
            verdicts = pretrade.check(locked, stage="release", actor=actor)
            refused = [o for o in locked if not verdicts[o.pk].passes]
            if refused:
                named = "; ".join(
                    f"{o}: {verdicts[o.pk].message or verdicts[o.pk].status}" for o in refused[:5]
                )
                more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
                raise ValidationError(
                    f"{len(refused)} of the run's orders no longer pass the pre-trade check, "
                    f"so nothing was released: {named}{more}."
                )
        groups = list(
            approved.order_by()
            .values(*Block.TERMS)
            .annotate(total=Sum("quantity"))
            .order_by("security_id", "side")
        )
        if not groups:
            audit_record(actor=actor, kind="orders.released", obj=run, after={"count": 0})
            return {}
        key_filter = Q()
        for group in groups:
            key_filter |= Q(**{name: group[name] for name in Block.TERMS})
        blocks: dict[tuple, Block] = {}
        for block in (
            Block.objects.select_for_update(of=("self",))
            .filter(key_filter, status=Block.Status.OPEN, filled_quantity=0)
            .order_by("pk")
        ):
            blocks.setdefault(tuple(getattr(block, n) for n in Block.TERMS), block)
        before = {block.pk: block.quantity for block in blocks.values()}
        for group in groups:
            key = tuple(group[name] for name in Block.TERMS)
            if key not in blocks:
                blocks[key] = Block.objects.create(**{n: group[n] for n in Block.TERMS})
                before[blocks[key].pk] = ZERO
        now = timezone.now()
        for group in groups:
            block = blocks[tuple(group[name] for name in Block.TERMS)]
            block.quantity += group["total"]
            block.updated_at = now
        Block.objects.bulk_update(
            [blocks[tuple(g[n] for n in Block.TERMS)] for g in groups],
            ["quantity", "updated_at"],
        )
        released = _release_into_blocks(run, actor, groups, blocks, now)
        audit_record(
            actor=actor,
            kind="orders.released",
            obj=run,
            before={"status": Order.Status.APPROVED},
            after={
                "status": Order.Status.RELEASED,
                "count": sum(len(ids) for ids in released.values()),
                "blocks": {
                    str(block_id): {
                        "orders": id_ranges(ids),
                        "quantity_before": before[block_id],
                        "quantity_after": next(
                            b.quantity for b in blocks.values() if b.pk == block_id
                        ),
                    }
                    for block_id, ids in released.items()
                },
            },
        )
        for block_id in released:
            block_changed(block_id)
    return released


def _release_into_blocks(run, actor, groups, blocks, now) -> dict[int, list[int]]:
    """One UPDATE that gives each approved order of the run its block."""
    released: dict[int, list[int]] = {}
    if connection.vendor != "postgresql":
        for group in groups:
            block = blocks[tuple(group[name] for name in Block.TERMS)]
            orders = _run_orders(run, [Order.Status.APPROVED], None).filter(
                **{name: group[name] for name in Block.TERMS}
            )
            ids = list(orders.values_list("pk", flat=True))
            Order.objects.filter(pk__in=ids).update(
                status=Order.Status.RELEASED, block=block, released_by=actor, updated_at=now
            )
            released[block.pk] = ids
        return released
    table = connection.ops.quote_name(Order._meta.db_table)
    columns = {
        "security_id": "bigint",
        "side": "text",
        "order_type": "text",
        "limit_price": "numeric",
        "stop_price": "numeric",
        "time_in_force": "text",
        "expire_at": "timestamptz",
    }
    unnest = ", ".join(f"%s::{kind}[]" for kind in columns.values())
    params: list = [[group[name] for group in groups] for name in columns]
    params.append([blocks[tuple(g[n] for n in Block.TERMS)].pk for g in groups])
    match = " AND ".join(f"o.{name} IS NOT DISTINCT FROM m.{name}" for name in columns)
    sql = (
        f"UPDATE {table} o SET status = %s, block_id = m.block_id, released_by_id = %s, "
        f"updated_at = %s FROM unnest({unnest}, %s::bigint[]) "
        f"AS m({', '.join(columns)}, block_id) "
        f"WHERE o.rebalance_run_id = %s AND o.status = %s AND {match} RETURNING o.id, m.block_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [Order.Status.RELEASED, actor.pk, now, *params, run.pk, Order.Status.APPROVED]
        )
        for order_id, block_id in cursor.fetchall():
            released.setdefault(block_id, []).append(order_id)
    for ids in released.values():
        ids.sort()
    return released
