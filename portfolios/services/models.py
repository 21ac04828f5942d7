"""Model portfolios: create, edit, copy, import from CSV, assign to accounts.

Every write here locks the model it changes, checks the whole composition against
the one rule (`model_targets_errors`: securities, sleeves and cash add up to exactly
100%, each security and sleeve once, weights positive, no model holding itself
through its sleeves), writes, and records the change with the model as it was
and as it is (its targets as a list) in the same transaction. A refused change
writes nothing. The pages, the API and the admin all come through here.

A target names a security (a `Security`, or its ticker); a sleeve names another
model (a `ModelPortfolio`, or its name): each a dict with its ``weight`` and,
optionally, the ``line`` of the file it came from or the ``label`` of the form's row,
which the messages name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection

from audit.services import audit_record, audit_record_many, audited_transaction
from oms.numbers import WEIGHT_PLACES, ZERO
from oms.roles import Action, require, require_model_change
from portfolios import model_csv
from portfolios.models import ModelPortfolio, ModelSleeve, ModelTarget, Portfolio, Security
from portfolios.rebalance.sleeves import find_cycle, reachable
from portfolios.services.drift import drift_mark_stale

#: Taken by every change to a model's composition: a cycle of sleeves could otherwise
#: be closed by two edits that each see no cycle (A holds B while B is given A).
_SLEEVE_GRAPH_LOCK = 7_340_131
MAX_TARGETS = 1000


def _prefix(item: dict, number: int) -> str:
    if item.get("label"):
        return f"{item['label']}: "
    line = item.get("line")
    return f"Line {line}: " if line is not None else f"Row {number + 1}: "


def _too_precise(weight: Decimal | None) -> bool:
    """More places than the column keeps: stored, the weights would no longer add up."""
    if weight is None or not weight.is_finite():
        return False
    return weight.normalize().as_tuple().exponent < -WEIGHT_PLACES


def _pct(weight: Decimal) -> str:
    return f"{(weight * 100).normalize():f}%"


def model_targets_errors(
    cash_weight: Decimal | None,
    targets: Sequence[dict],
    sleeves: Sequence[dict] = (),
    *,
    unknown_weight: Decimal = ZERO,
) -> list[str]:
    """What is wrong with a model's composition: the one statement of the rule.

    Targets (each a dict of a `Security` and a weight) and sleeves (a
    `ModelPortfolio` and a weight): at least one of them; every weight positive;
    each security once and active; each sleeve once; the cash weight zero or more;
    and with the cash weight they add up to exactly 1 (100%). `unknown_weight`: the
    weights of rows that named nothing known, counted in the sum as the user wrote it."""
    errors: list[str] = []
    if not targets and not sleeves:
        errors.append("A model needs at least one target.")
    if cash_weight is not None and cash_weight < 0:
        errors.append(f"The cash weight ({_pct(cash_weight)}) must be zero or more.")
    # A target names a security, a sleeve a model: each once, at a positive weight.
    for items, key, noun, named in (
        (targets, "security", "target", ""),
        (sleeves, "model", "sleeve", "sleeve "),
    ):
        seen: dict[int, str] = {}
        for number, item in enumerate(items):
            held, weight = item[key], item["weight"]
            prefix = _prefix(item, number)
            if weight is None or weight <= 0:
                shown = "" if weight is None else f" ({_pct(weight)})"
                errors.append(f"{prefix}the weight of {named}{held}{shown} must be positive.")
            if held.pk in seen:
                errors.append(f"{prefix}{held} is already a {noun} (on {seen[held.pk]}).")
            elif key == "security" and not held.is_active:
                errors.append(f"{prefix}{held} is not active.")
            seen.setdefault(held.pk, prefix.rstrip(": ").lower())
    for items, key in ((targets, "security"), (sleeves, "model")):
        for number, item in enumerate(items):
            if _too_precise(item["weight"]):
                errors.append(
                    f"{_prefix(item, number)}the weight of {item[key]} has more than "
                    f"{WEIGHT_PLACES} decimal places ({WEIGHT_PLACES - 2} in percent)."
                )
    if _too_precise(cash_weight):
        errors.append(f"The cash weight has more than {WEIGHT_PLACES} decimal places.")
    weights = [item["weight"] or ZERO for item in (*targets, *sleeves)]
    total = (cash_weight or ZERO) + sum(weights, ZERO) + unknown_weight
    if (targets or sleeves or unknown_weight) and total != 1:
        errors.append(f"Target weights and cash add up to {_pct(total)} of the model, not 100%.")
    return errors


def _resolve(
    targets: Iterable[dict], sleeves: Iterable[dict], errors: list[str]
) -> tuple[list[dict], list[dict], Decimal]:
    """Targets and sleeves with their tickers and model names looked up (one query
    each); one that names nothing known is an error naming its line, its weight
    returned apart (for the sum as written)."""
    # Each row keeps its number (or line) in the messages, though the unknown are dropped.
    targets = [
        t if t.get("label") or t.get("line") is not None else t | {"label": f"Row {n}"}
        for n, t in enumerate(targets, start=1)
    ]
    sleeves = [
        s if s.get("label") or s.get("line") is not None else s | {"label": f"Row {n}"}
        for n, s in enumerate(sleeves, start=1)
    ]
    tickers = {t["security"].strip().upper() for t in targets if isinstance(t["security"], str)}
    names = {s["model"].strip() for s in sleeves if isinstance(s["model"], str)}
    securities = {s.ticker: s for s in Security.objects.filter(ticker__in=tickers)}
    models = {m.name: m for m in ModelPortfolio.objects.filter(name__in=names)}
    resolved_targets, resolved_sleeves = [], []
    unknown_weight = ZERO
    for number, target in enumerate(targets):
        security = target["security"]
        if isinstance(security, str):
            ticker = security.strip().upper()
            if ticker not in securities:
                errors.append(f"{_prefix(target, number)}no security has the ticker {ticker}.")
                unknown_weight += target["weight"] or ZERO
                continue
            security = securities[ticker]
        resolved_targets.append(target | {"security": security})
    for number, sleeve in enumerate(sleeves):
        model = sleeve["model"]
        if isinstance(model, str):
            if model.strip() not in models:
                errors.append(f"{_prefix(sleeve, number)}no model is named {model.strip()!r}.")
                unknown_weight += sleeve["weight"] or ZERO
                continue
            model = models[model.strip()]
        resolved_sleeves.append(sleeve | {"model": model})
    return resolved_targets, resolved_sleeves, unknown_weight


def _lock_sleeve_graph() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SLEEVE_GRAPH_LOCK])
    # SQLite writes one transaction at a time: nothing to take.


def _cycle_error(model: ModelPortfolio, sleeves: list[dict]) -> str | None:
    """Why these sleeves cannot be the model's: one of them holds it (or is it)."""
    if not sleeves:
        return None
    graph: dict[int, set[int]] = defaultdict(set)
    for holder, sleeve in ModelSleeve.objects.exclude(model=model).values_list(
        "model_id", "sleeve_id"
    ):
        graph[holder].add(sleeve)
    graph[model.pk] = {s["model"].pk for s in sleeves}
    cycle = find_cycle(graph, model.pk)
    if cycle is None:
        return None
    names = dict(ModelPortfolio.objects.filter(pk__in=cycle).values_list("pk", "name"))
    if len(cycle) == 2:
        return f"{model.name} cannot hold itself as a sleeve."
    path = " → ".join(names.get(pk, str(pk)) for pk in cycle)
    return f"{model.name} cannot hold itself through its sleeves: {path}."


def _holders(model_id: int) -> set[int]:
    """The model and every model holding it as a sleeve, however deep (one query)."""
    held_by: dict[int, set[int]] = defaultdict(set)
    for holder, sleeve in ModelSleeve.objects.values_list("model_id", "sleeve_id"):
        held_by[sleeve].add(holder)
    return reachable({model_id}, held_by)


def model_snapshot(model: ModelPortfolio) -> dict:
    """The model as the audit trail records it: its settings and targets as lists."""
    targets = ModelTarget.objects.filter(model=model).select_related("security")
    sleeves = ModelSleeve.objects.filter(model=model).select_related("sleeve")
    return _as_snapshot(
        model,
        [{"security": t.security, "weight": t.weight} for t in targets],
        [{"model": s.sleeve, "weight": s.weight} for s in sleeves],
    )


def _as_snapshot(model: ModelPortfolio, targets: list[dict], sleeves: list[dict]) -> dict:
    """`model_snapshot` of the model as it would be saved with this composition."""
    return {
        "name": model.name,
        "description": model.description,
        "cash_weight": model.cash_weight,
        "band_absolute": model.band_absolute,
        "band_relative": model.band_relative,
        "targets": [
            {"security": t["security"].ticker, "weight": t["weight"]}
            for t in sorted(targets, key=lambda t: (-t["weight"], t["security"].ticker))
        ],
        "sleeves": [
            {"model": s["model"].name, "weight": s["weight"]}
            for s in sorted(sleeves, key=lambda s: (-s["weight"], s["model"].name))
        ],
    }


def _check(
    model: ModelPortfolio,
    targets: list[dict],
    sleeves: list[dict],
    errors: list[str],
    unknown_weight: Decimal = ZERO,
) -> dict[str, list[str]]:
    """Every reason the model (its fields set) and this composition are refused."""
    found: dict[str, list[str]] = defaultdict(list)
    if len(targets) + len(sleeves) > MAX_TARGETS:
        found["targets"].append(f"At most {MAX_TARGETS} targets per model.")
    try:
        model.full_clean(exclude=["cash_weight", "owner"])
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            found[field] += messages
    for field, label in (("band_absolute", "absolute"), ("band_relative", "relative")):
        value = getattr(model, field)
        if value is not None and value < 0:
            found[field].append(f"The {label} band must be zero or more.")
    found["targets"] += errors + model_targets_errors(
        model.cash_weight, targets, sleeves, unknown_weight=unknown_weight
    )
    if model.pk is not None and (cycle := _cycle_error(model, sleeves)):
        found["sleeves"].append(cycle)
    return {field: messages for field, messages in found.items() if messages}


def _write_composition(model: ModelPortfolio, targets: list[dict], sleeves: list[dict]) -> None:
    ModelTarget.objects.filter(model=model).delete()
    ModelSleeve.objects.filter(model=model).delete()
    ModelTarget.objects.bulk_create(
        ModelTarget(model=model, security=t["security"], weight=t["weight"]) for t in targets
    )
    ModelSleeve.objects.bulk_create(
        ModelSleeve(model=model, sleeve=s["model"], weight=s["weight"]) for s in sleeves
    )


def model_create(
    *,
    actor,
    name: str,
    targets: Sequence[dict],
    sleeves: Sequence[dict] = (),
    cash_weight: Decimal = ZERO,
    band_absolute: Decimal = Decimal("0.02"),
    band_relative: Decimal = ZERO,
    description: str = "",
) -> ModelPortfolio:
    """Add a model portfolio: target weights, sleeves and a cash weight that add up
    to exactly one, with its tolerance bands."""
    require(actor, Action.MODEL_MANAGE)
    model = ModelPortfolio(
        name=name,
        description=description,
        cash_weight=cash_weight,
        band_absolute=band_absolute,
        band_relative=band_relative,
        owner=actor,
    )
    with audited_transaction():
        _lock_sleeve_graph()
        unknown: list[str] = []
        targets, sleeves, unknown_weight = _resolve(targets, sleeves, unknown)
        if errors := _check(model, targets, sleeves, unknown, unknown_weight):
            raise ValidationError(errors)
        model.save(force_insert=True)
        _write_composition(model, targets, sleeves)
        model.refresh_from_db()  # the figures as stored (rounded to the column)
        audit_record(actor=actor, kind="model.created", obj=model, after=model_snapshot(model))
    return model


def model_update(
    *,
    actor,
    model_id: int,
    targets: Sequence[dict],
    sleeves: Sequence[dict] = (),
    cash_weight: Decimal,
    band_absolute: Decimal | None = None,
    band_relative: Decimal | None = None,
    name: str | None = None,
    description: str | None = None,
    reason: str = "",
) -> ModelPortfolio:
    """Replace a model's targets, sleeves and cash weight (and, when given, its bands,
    name and description): all of it checked together, all or nothing."""
    require(actor, Action.MODEL_MANAGE)
    with audited_transaction():
        model = ModelPortfolio.objects.select_for_update().get(pk=model_id)
        require_model_change(actor, model)
        _lock_sleeve_graph()
        before = model_snapshot(model)
        model.cash_weight = cash_weight
        for field, value in (
            ("band_absolute", band_absolute),
            ("band_relative", band_relative),
            ("name", name),
            ("description", description),
        ):
            if value is not None:
                setattr(model, field, value)
        unknown: list[str] = []
        targets, sleeves, unknown_weight = _resolve(targets, sleeves, unknown)
        if errors := _check(model, targets, sleeves, unknown, unknown_weight):
            raise ValidationError(errors)
        if _as_snapshot(model, targets, sleeves) == before:
            return model  # saved as it was: nothing to write, nothing to record
        model.save(
            update_fields=["name", "description", "cash_weight", "band_absolute", "band_relative"]
        )
        _write_composition(model, targets, sleeves)
        model.refresh_from_db()  # the figures as stored (rounded to the column)
        # The drift of every account run against it, or against a model holding it.
        drift_mark_stale(model_ids=_holders(model.pk))
        audit_record(
            actor=actor,
            kind="model.changed",
            obj=model,
            before=before,
            after=model_snapshot(model),
            reason=reason,
        )
    return model


def model_targets_import(*, actor, model_id: int, text: str) -> ModelPortfolio:
    """Replace a model's targets, sleeves and cash weight with those of a CSV file
    (portfolios.model_csv): every bad row named with its line, nothing applied
    unless the whole file is right. The bands stay as they are."""
    # Whose model it is comes before what the file says (model_update checks again, locked).
    require_model_change(actor, ModelPortfolio.objects.select_related("owner").get(pk=model_id))
    rows, errors = model_csv.parse(text)
    if errors:
        raise ValidationError({"csv": errors})
    targets = [
        {"security": r.name, "weight": r.weight, "line": r.line}
        for r in rows
        if r.kind == "security"
    ]
    sleeves = [
        {"model": r.name, "weight": r.weight, "line": r.line} for r in rows if r.kind == "sleeve"
    ]
    cash = next((r.weight for r in rows if r.kind == "cash"), ZERO)
    try:
        return model_update(
            actor=actor,
            model_id=model_id,
            targets=targets,
            sleeves=sleeves,
            cash_weight=cash,
            reason="imported from CSV",
        )
    except ValidationError as error:
        messages = [m for field in error.message_dict.values() for m in field]
        raise ValidationError({"csv": messages}) from error


def model_targets_export(*, model: ModelPortfolio) -> str:
    """The model's targets, sleeves and cash as the CSV the import reads."""
    snapshot = model_snapshot(model)
    return model_csv.render(
        [(t["security"], t["weight"]) for t in snapshot["targets"]],
        [(s["model"], s["weight"]) for s in snapshot["sleeves"]],
        model.cash_weight,
    )


def model_copy(
    *, actor, model_id: int, name: str, description: str | None = None
) -> ModelPortfolio:
    """A new model with another's targets, sleeves, cash weight and bands, under a new
    name (owned by whoever copies it)."""
    require(actor, Action.MODEL_MANAGE)
    with audited_transaction():
        source = ModelPortfolio.objects.select_for_update().get(pk=model_id)
        _lock_sleeve_graph()
        model = ModelPortfolio(
            name=name,
            description=source.description if description is None else description,
            cash_weight=source.cash_weight,
            band_absolute=source.band_absolute,
            band_relative=source.band_relative,
            owner=actor,
        )
        targets = [
            {"security": t.security, "weight": t.weight}
            for t in ModelTarget.objects.filter(model=source).select_related("security")
        ]
        sleeves = [
            {"model": s.sleeve, "weight": s.weight}
            for s in ModelSleeve.objects.filter(model=source).select_related("sleeve")
        ]
        errors: dict[str, list[str]] = defaultdict(list)
        try:
            model.full_clean(exclude=["owner"])
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                errors[field] += messages
        if errors:
            raise ValidationError(dict(errors))
        model.save(force_insert=True)
        _write_composition(model, targets, sleeves)
        audit_record(
            actor=actor,
            kind="model.copied",
            obj=model,
            after=model_snapshot(model) | {"copied_from": source.name},
            reason=f"copy of {source.name}",
        )
    return model


def model_assign(*, actor, model_id: int, portfolio_ids: Iterable[int]) -> list[Portfolio]:
    """Put these accounts on this model, in one go: each must be one the actor may
    manage models for (a portfolio manager's own accounts), else nothing changes.
    Each account moved is recorded with its model before and after; an account
    already on the model is left as it is."""
    require(actor, Action.MODEL_MANAGE)
    from portfolios.selectors import portfolios_for_action

    wanted = sorted(set(portfolio_ids))
    if not wanted:
        raise ValidationError({"portfolios": ["Choose at least one account."]})
    with audited_transaction():
        model = ModelPortfolio.objects.select_for_update().get(pk=model_id)
        allowed = portfolios_for_action(actor, Action.MODEL_MANAGE).filter(pk__in=wanted)
        portfolios = list(
            Portfolio.objects.select_for_update(of=("self",))
            .filter(pk__in=allowed.values("pk"))
            .select_related("model")
            .order_by("pk")
        )
        missing = set(wanted) - {p.pk for p in portfolios}
        if missing:
            codes = dict(Portfolio.objects.filter(pk__in=missing).values_list("pk", "code"))
            named = ", ".join(codes.get(pk, f"#{pk}") for pk in sorted(missing))
            raise ValidationError({"portfolios": [f"No active account you manage: {named}."]})
        moved = [p for p in portfolios if p.model_id != model.pk]
        if moved:
            before = {p.pk: p.model.name if p.model else None for p in moved}
            Portfolio.objects.filter(pk__in=[p.pk for p in moved]).update(model=model)
            drift_mark_stale(portfolio_ids=[p.pk for p in moved])
            audit_record_many(
                actor=actor,
                kind="portfolio.model_assigned",
                entries=[(p, {"model": before[p.pk]}, {"model": model.name}) for p in moved],
            )
            for p in moved:
                p.model = model
    return portfolios
