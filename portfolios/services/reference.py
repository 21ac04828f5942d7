"""Writes to reference data from the API: securities and prices (model portfolios:
portfolios.services.models).

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
from oms.roles import Action, require
from portfolios.models import Price, Security
from portfolios.services.drift import drift_mark_stale
from portfolios.terms import INSTRUMENT_FIELDS

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
    *INSTRUMENT_FIELDS,
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
    if errors := _new_contract_errors(security):
        raise ValidationError(errors)
    with audited_transaction():
        security.save(force_insert=True)
        audit_record(
            actor=actor,
            kind="security.created",
            obj=security,
            after={name: getattr(security, name) for name in SECURITY_FIELDS}
            | {"underlying": security.underlying.ticker if security.underlying else None},
        )
    return security


def _new_contract_errors(security: Security) -> dict[str, list[str]]:
    """What an option being added gets wrong that the model's clean does not see: a
    currency other than its underlying's (its exercise books the underlying at the
    strike in one currency; a quanto would only be refused at expiry, "book its
    exercise by hand"). A contract past its expiry may be added (the history of a book
    taken on from elsewhere holds them); it cannot be ordered."""
    underlying = security.underlying if security.underlying_id else None
    if security.asset_class != "option" or underlying is None:
        return {}
    if underlying.currency == security.currency:
        return {}
    return {
        "currency": [
            f"An option on {underlying.ticker} is in its currency, "
            f"{underlying.currency}, not {security.currency}."
        ]
    }


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
        drift_mark_stale(security_ids={p.security.pk for p in created}, refresh=False)
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
