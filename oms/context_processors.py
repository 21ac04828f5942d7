"""Navigation by role, for the base template."""

from __future__ import annotations

from django.urls import reverse

from oms.roles import Action, can, roles_of

_NAV = [
    ("Accounts", "portfolios:portfolio-list", Action.PORTFOLIO_VIEW),
    ("Rebalances", "portfolios:run-list", Action.REBALANCE_RUN),
    ("Orders", "trading:order-list", Action.ORDER_VIEW),
    ("Blotter", "trading:blotter", Action.BLOCK_VIEW),
    ("Audit trail", "compliance:audit-list", Action.AUDIT_VIEW),
]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_roles": []}
    items = [
        {"label": label, "url": reverse(name), "active": request.path.startswith(reverse(name))}
        for label, name, action in _NAV
        if can(user, action)
    ]
    return {"nav_items": items, "user_roles": sorted(role.value for role in roles_of(user))}
