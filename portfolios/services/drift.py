"""Stored drift: each account's drift figures, computed by the engine in bulk and kept
in `AccountDrift`, so that pages read a table instead of running the engine.

Two services:

- `drift_refresh` recomputes the figures of many accounts at once: the book is loaded
  in chunks (`load_book`, a fixed number of queries a chunk, model sleeves flattened
  there), drift computed in one vectorised pass per chunk (`compute_drift`), and the
  rows written with one multi-row upsert per thousand accounts. Derived data only: the
  figures follow from holdings, cash, models and prices whose every change is audited,
  so a refresh records no event of its own (tests/audit lists it with the services
  that change no business state).
- `drift_mark_stale` is called by the services that change those inputs, inside their
  own (audited) transaction: it marks the accounts' stored figures as older than
  their inputs (one UPDATE) and, for changes to given accounts, asks for their
  refresh once the transaction commits. Price changes are refreshed by the periodic
  task (`portfolios.tasks.drift_refresh_stale`), in chunks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from oms.numbers import WEIGHT_DIGITS, WEIGHT_PLACES, money, weight
from oms.tasking import enqueue_on_commit
from portfolios.models import AccountDrift, ModelSleeve, ModelTarget, Portfolio, Security
from portfolios.rebalance.sleeves import reachable

#: Accounts per chunk: one load, one engine pass and one upsert (in batches) each.
DRIFT_CHUNK = 2000
_WEIGHT_LIMIT = float(10 ** (WEIGHT_DIGITS - WEIGHT_PLACES)) - 1
_UPDATED = [
    "model",
    "base_currency",
    "value",
    "cash_weight",
    "cash_target",
    "drift",
    "max_abs_drift",
    "largest_drift",
    "largest_drift_security",
    "out_of_band",
    "reason",
    "prices_as_of",
    "computed_at",
    "inputs_changed_at",
]


@dataclass(frozen=True)
class DriftRefreshed:
    """What a refresh did: accounts written, of which not valued, and the chunks."""

    accounts: int
    not_valued: int
    chunks: int


def drift_refresh(
    *, portfolio_ids: Iterable[int] | None = None, chunk: int = DRIFT_CHUNK
) -> DriftRefreshed:
    """Recompute and store the drift figures of these accounts (every active account
    when None), `chunk` accounts at a time, each chunk in its own transaction.

    Each figure is the engine's (`portfolios.rebalance.compute_drift` on `load_book`),
    `computed_at` the moment before its inputs were read: a change committed while a
    chunk computes leaves a mark later than that, so the row stays stale until the
    next refresh rather than looking current."""
    if portfolio_ids is None:
        ids = list(
            Portfolio.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
        )
    else:
        ids = sorted(set(portfolio_ids))
    written = not_valued = chunks = 0
    for start in range(0, len(ids), max(chunk, 1)):
        rows = _compute(ids[start : start + chunk])
        with transaction.atomic():
            AccountDrift.objects.bulk_create(
                rows,
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["portfolio"],
                update_fields=_UPDATED,
            )
        written += len(rows)
        not_valued += sum(1 for row in rows if row.reason)
        chunks += 1
    return DriftRefreshed(accounts=written, not_valued=not_valued, chunks=chunks)


def _compute(ids: list[int]) -> list[AccountDrift]:
    """The stored rows of these accounts, from one load and one engine pass."""
    from portfolios.rebalance import BookError, compute_drift
    from portfolios.selectors import load_book

    computed_at = timezone.now()
    accounts = {
        p["pk"]: p
        for p in Portfolio.objects.filter(pk__in=ids).values("pk", "model_id", "base_currency")
    }
    if not accounts:
        return []
    try:
        loaded = load_book(list(accounts))
        result = compute_drift(loaded.book)
    except (BookError, ValueError) as error:  # a book the engine refuses: say so on each
        return [
            AccountDrift(
                portfolio_id=pk,
                model_id=p["model_id"],
                base_currency=p["base_currency"],
                reason=f"The engine refused the book: {error}",
                computed_at=computed_at,
            )
            for pk, p in accounts.items()
        ]
    positions = result.positions
    price_dates = dict(
        Security.objects.filter(pk__in=positions["security"].unique().tolist())
        .with_latest_price()
        .values_list("pk", "latest_price_date")
    )
    largest: dict[int, tuple[int, float]] = {}
    oldest: dict[int, object] = {}
    if not positions.empty:
        frame = positions.assign(size=positions["drift"].abs()).dropna(subset=["size"])
        for row in (
            frame.sort_values("size", ascending=False).drop_duplicates("account").itertuples()
        ):
            largest[int(row.account)] = (int(row.security), float(row.drift))
        held = positions[positions["quantity"] != 0]
        for account, security in zip(held["account"], held["security"], strict=True):
            day = price_dates.get(int(security))
            if day is not None and (oldest.get(int(account)) is None or day < oldest[int(account)]):
                oldest[int(account)] = day
    rows = []
    for record in result.accounts.to_dict("records"):
        pk = int(record["account"])
        reason = record["reason"] if isinstance(record["reason"], str) else ""
        max_abs = _number(record["max_abs_drift"])
        security, signed = largest.get(pk, (None, None))
        cash_drift = (
            _number(record["cash_weight"]) - _number(record["cash_target"])
            if (_finite(record["cash_weight"]) and _finite(record["cash_target"]))
            else None
        )
        if signed is None or (cash_drift is not None and abs(cash_drift) >= abs(signed)):
            security, signed = None, cash_drift  # the cash is what drifts most
        rows.append(
            AccountDrift(
                portfolio_id=pk,
                model_id=accounts[pk]["model_id"],
                base_currency=accounts[pk]["base_currency"],
                value=_money(record["value"]),
                cash_weight=_weight(record["cash_weight"]),
                cash_target=_weight(record["cash_target"]),
                drift=None if reason else _weight(record["drift"]),
                max_abs_drift=None if reason else _weight(max_abs),
                largest_drift=None if reason else _weight(signed),
                largest_drift_security_id=None if reason else security,
                out_of_band=bool(record["out_of_band"]) and not reason,
                reason=reason,
                prices_as_of=oldest.get(pk),
                computed_at=computed_at,
            )
        )
    for pk, reason in loaded.skipped.items():
        rows.append(
            AccountDrift(
                portfolio_id=pk,
                model_id=accounts[pk]["model_id"],
                base_currency=accounts[pk]["base_currency"],
                reason=reason,
                computed_at=computed_at,
            )
        )
    return rows


def _finite(x) -> bool:
    return x is not None and isinstance(x, int | float | np.floating) and math.isfinite(x)


def _number(x) -> float:
    return float(x) if _finite(x) else float("nan")


def _weight(x) -> Decimal | None:
    if not _finite(x):
        return None
    return weight(min(max(float(x), -_WEIGHT_LIMIT), _WEIGHT_LIMIT))


def _money(x) -> Decimal | None:
    return money(float(x)) if _finite(x) else None


def _holders_of_models_targeting(security_ids: list[int]) -> set[int]:
    """The models holding, through sleeves at any depth, a model that targets one of
    these securities (one query when no model holds another, two otherwise)."""
    held_by: dict[int, dict[int, float]] = {}
    for holder, sleeve in ModelSleeve.objects.values_list("model_id", "sleeve_id"):
        held_by.setdefault(sleeve, {})[holder] = 1.0
    if not held_by:
        return set()
    direct = set(
        ModelTarget.objects.filter(security_id__in=security_ids, model_id__in=list(held_by))
        .values_list("model_id", flat=True)
        .distinct()
    )
    return reachable(direct, held_by) - direct if direct else set()


def drift_mark_stale(
    *,
    portfolio_ids: Iterable[int] = (),
    security_ids: Iterable[int] = (),
    model_ids: Iterable[int] = (),
    all_accounts: bool = False,
    refresh: bool = True,
    now: datetime | None = None,
) -> int:
    """Mark the stored figures older than their inputs: those of these accounts, of the
    accounts holding or targeting these securities (a price moved), of the accounts
    run against these models (targets or bands changed), or of every account (an FX
    rate moved). Runs inside the caller's transaction, whose event records the change.

    One UPDATE; a row already marked since its last refresh is left as it is, so a feed
    flushing prices every few seconds does not rewrite the table each time. With
    `refresh`, the given accounts (and the models' accounts) are refreshed once the
    caller commits; price and FX marks are left to the periodic refresh. Returns the
    number of rows marked."""
    portfolio_ids, security_ids, model_ids = (
        sorted(set(portfolio_ids)),
        sorted(set(security_ids)),
        sorted(set(model_ids)),
    )
    if not (portfolio_ids or security_ids or model_ids or all_accounts):
        return 0
    now = now or timezone.now()
    which = Q()
    if not all_accounts:
        if portfolio_ids:
            which |= Q(portfolio_id__in=portfolio_ids)
        if model_ids:
            which |= Q(model_id__in=model_ids) | Q(portfolio__model_id__in=model_ids)
        if security_ids:
            holding = Portfolio.objects.filter(positions__security_id__in=security_ids).values("pk")
            which |= Q(portfolio_id__in=holding) | Q(model__targets__security_id__in=security_ids)
            if holders := _holders_of_models_targeting(security_ids):
                # a model of models targets what its sleeves target, at any depth
                which |= Q(model_id__in=holders) | Q(portfolio__model_id__in=holders)
    not_yet = Q(inputs_changed_at__isnull=True) | Q(inputs_changed_at__lte=F("computed_at"))
    count = AccountDrift.objects.filter(which).filter(not_yet).update(inputs_changed_at=now)
    if refresh and (portfolio_ids or model_ids):
        enqueue_on_commit("portfolios.tasks.drift_refresh_accounts", portfolio_ids, model_ids)
    return count
