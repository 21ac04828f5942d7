"""Navigation by role, for the base template: an entry shows only to the roles
whose permission check of that page's action passes."""

from __future__ import annotations

from django.urls import reverse

from oms.roles import Action, can, roles_of

_NAV = [
    ("Accounts", "portfolios:portfolio-list", Action.PORTFOLIO_VIEW),
    ("Models", "portfolios:model-list", Action.MODEL_MANAGE),
    ("Drift", "portfolios:drift-dashboard", Action.PORTFOLIO_VIEW),
    ("Exposure", "portfolios:exposure", Action.PORTFOLIO_VIEW),
    ("Rebalances", "runs:list", Action.REBALANCE_RUN),
    ("Orders", "trading:order-list", Action.ORDER_VIEW),
    ("Blotter", "trading:blotter", Action.BLOCK_VIEW),
    ("Brokers", "trading:broker-list", Action.EXECUTION_VIEW),
    ("Reconciliation", "trading:reconciliation", Action.EXECUTION_VIEW),
    ("Quarantine", "portfolios:quarantine", Action.REFERENCE_MANAGE),
    ("Life cycle", "portfolios:lifecycle", Action.REFERENCE_MANAGE),
    ("Rule book", "compliance:rule-list", Action.COMPLIANCE_VIEW),
    ("Overrides", "compliance:override-queue", Action.OVERRIDE_DECIDE),
    ("Alerts", "compliance:alert-list", Action.ALERT_MANAGE),
    ("Audit trail", "compliance:audit-list", Action.AUDIT_VIEW),
]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_roles": []}
    items = [
        {"label": label, "url": reverse(name), "active": False}
        for label, name, action in _NAV
        if can(user, action)
    ]
    # The entry whose address is the longest prefix of this page's is the active one.
    matching = [item for item in items if request.path.startswith(item["url"])]
    if matching:
        max(matching, key=lambda item: len(item["url"]))["active"] = True
    return {"nav_items": items, "user_roles": sorted(role.value for role in roles_of(user))}
