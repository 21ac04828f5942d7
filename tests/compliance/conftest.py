"""What the compliance suites share: a soft limit, and the order that breaks it."""

from decimal import Decimal

import pytest

from compliance.services import rules as rule_services
from trading.services import orders as order_services


@pytest.fixture
def soft_issuer_limit(compliance_officer):
    """A soft 60% issuer limit: an order of 40 AAA for ACC1 breaks it, so its approval
    needs an override."""
    return rule_services.rule_create(
        actor=compliance_officer,
        name="Issuer 60%",
        kind="max_weight",
        params={"group_by": "issuer", "limit": 0.60},
        severity="soft",
    )


@pytest.fixture
def over_soft_limit(pm, book, soft_issuer_limit):
    """The PM's draft order of 40 AAA for ACC1, which the soft issuer limit holds."""
    return order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["AAA"],
        side="buy",
        quantity=Decimal(40),
    )


@pytest.fixture
def order_value_limit(compliance_officer):
    """Make the hard "Order value" rule: an order worth more than `limit` is rejected
    (AAA is at 100 USD in the book)."""

    def make(limit):
        return rule_services.rule_create(
            actor=compliance_officer,
            name="Order value",
            kind="max_order_notional",
            params={"limit": limit},
            severity="hard",
        )

    return make
