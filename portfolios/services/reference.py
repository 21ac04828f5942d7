"""Writes to reference data from the API: securities, prices and model portfolios.

Each write is checked against the actor's role, validated against the model's
own rules, and recorded in the audit trail in the same (audited) transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.services import audit_record, audited_transaction
from oms.numbers import ZERO
from oms.roles import Action, require
from portfolios.models import ModelPortfolio, ModelTarget, Price, Security

SECURITY_FIELDS = (
    "ticker",
    "name",
    "asset_class",
    "currency",
    "isin",
    "cusip",
    "figi",
    "sector",
    "issuer",
    "government",
    "country",
    "round_lot",
    "min_quantity",
    "tick_size",
    "multiplier",
    "fractional",
    "is_active",
)
MAX_PRICES_PER_LOAD = 1000


def security_create(*, actor, ticker: str, name: str, **fields) -> Security:
    """Add a security to the reference data."""
    require(actor, Action.REFERENCE_MANAGE)
    unknown = set(fields) - set(SECURITY_FIELDS)
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
    security = Security(ticker=ticker, name=name, **fields)
    security.full_clean()
    with audited_transaction():
        security.save(force_insert=True)
        audit_record(
            actor=actor,
            kind="security.created",
            obj=security,
            after={name: getattr(security, name) for name in SECURITY_FIELDS},
        )
    return security


def prices_create(*, actor, prices: list[dict]) -> list[Price]:
    """Load prices, each a dict of security, as_of, price and (optionally) source.

    All or nothing: one price that is wrong, or already known for its security and
    day, refuses the whole load with a message naming its row.
    """
    require(actor, Action.REFERENCE_MANAGE)
    if not prices:
        raise ValidationError({"prices": ["Send at least one price."]})
    if len(prices) > MAX_PRICES_PER_LOAD:
        raise ValidationError(
            {"prices": [f"At most {MAX_PRICES_PER_LOAD} prices per load; send several loads."]}
        )
    errors: dict[str, list[str]] = defaultdict(list)
    today = timezone.now().date()
    rows: list[Price] = []
    seen: dict[tuple[int, date], int] = {}
    for number, spec in enumerate(prices):
        price = Price(
            security=spec["security"],
            as_of=spec["as_of"],
            price=spec["price"],
            source=spec.get("source", ""),
        )
        try:
            price.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                errors[field] += [f"Row {number}: {message}" for message in messages]
            continue
        if price.price <= Decimal(0):
            errors["price"].append(f"Row {number}: must be positive.")
            continue
        if price.as_of > today:
            errors["as_of"].append(f"Row {number}: {price.as_of} is in the future.")
            continue
        key = (price.security.pk, price.as_of)
        if key in seen:
            errors["as_of"].append(
                f"Row {number}: repeats row {seen[key]} ({price.security} on {price.as_of})."
            )
            continue
        seen[key] = number
        rows.append(price)
    if rows:
        known = set(
            Price.objects.filter(
                security__in={p.security.pk for p in rows}, as_of__in={p.as_of for p in rows}
            ).values_list("security_id", "as_of")
        )
        for price in rows:
            if (price.security.pk, price.as_of) in known:
                errors["as_of"].append(
                    f"Row {seen[(price.security.pk, price.as_of)]}: {price.security} already "
                    f"has a price on {price.as_of}."
                )
    if errors:
        raise ValidationError(dict(errors))
    with audited_transaction():
        created = Price.objects.bulk_create(rows)
        for price in created:
            audit_record(
                actor=actor,
                kind="price.created",
                obj=price,
                after={
                    "security": price.security.ticker,
                    "as_of": price.as_of,
                    "price": price.price,
                    "source": price.source,
                },
            )
    return created


def model_targets_errors(cash_weight: Decimal, targets: list[dict]) -> list[str]:
    """What is wrong with a model's targets (each a dict of security and weight):
    the one statement of the rule, used by the services and by the admin's form.
    Weights are positive, each security once and active, and with the cash weight
    they add up to exactly 1 (100%)."""
    errors: list[str] = []
    if not targets:
        errors.append("A model needs at least one target.")
    seen: set[int] = set()
    for number, target in enumerate(targets):
        security, weight = target["security"], target["weight"]
        if weight is None or weight <= 0:
            errors.append(f"Row {number}: the weight of {security} must be positive.")
        if security.pk in seen:
            errors.append(f"Row {number}: {security} is already a target.")
        if not security.is_active:
            errors.append(f"Row {number}: {security} is not active.")
        seen.add(security.pk)
    total = (cash_weight or ZERO) + sum((t["weight"] or ZERO for t in targets), ZERO)
    if targets and total != 1:
        errors.append(
            f"Target weights and cash add up to {(total * 100).normalize():f}% of the "
            "model, not 100%."
        )
    return errors


def model_create(
    *,
    actor,
    name: str,
    targets: list[dict],
    cash_weight: Decimal = ZERO,
    band_absolute: Decimal = Decimal("0.02"),
    band_relative: Decimal = ZERO,
    description: str = "",
) -> ModelPortfolio:
    """Add a model portfolio: target weights (each a dict of security and weight) and a
    cash weight that add up to exactly one, with its tolerance bands."""
    require(actor, Action.MODEL_MANAGE)
    errors: dict[str, list[str]] = defaultdict(list)
    model = ModelPortfolio(
        name=name,
        description=description,
        cash_weight=cash_weight,
        band_absolute=band_absolute,
        band_relative=band_relative,
        owner=actor,
    )
    try:
        model.full_clean()
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            errors[field] += messages
    for field in ("band_absolute", "band_relative"):
        if getattr(model, field) < 0:
            errors[field].append("Must be zero or more.")
    if target_errors := model_targets_errors(cash_weight, targets):
        errors["targets"] += target_errors
    if errors:
        raise ValidationError(dict(errors))
    with audited_transaction():
        model.save(force_insert=True)
        ModelTarget.objects.bulk_create(
            ModelTarget(model=model, security=t["security"], weight=t["weight"]) for t in targets
        )
        audit_record(
            actor=actor,
            kind="model.created",
            obj=model,
            after={
                "name": model.name,
                "cash_weight": model.cash_weight,
                "band_absolute": model.band_absolute,
                "band_relative": model.band_relative,
                "targets": {t["security"].ticker: t["weight"] for t in targets},
            },
        )
    return model
