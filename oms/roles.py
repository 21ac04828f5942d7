"""Roles and the permission check for every action, in one place.

A role is a Django group. Each action names the roles that may take it; views,
API views and services all ask `can(user, action)` (or `require`), and the
permission matrix test walks every action against every role.
"""

from __future__ import annotations

from enum import StrEnum

from django.core.exceptions import PermissionDenied


class Role(StrEnum):
    PORTFOLIO_MANAGER = "Portfolio managers"
    TRADER = "Traders"
    COMPLIANCE = "Compliance officers"
    OPERATIONS = "Operations"


class Action(StrEnum):
    PORTFOLIO_VIEW = "portfolio.view"
    REFERENCE_VIEW = "reference.view"
    REFERENCE_MANAGE = "reference.manage"  # securities, prices, FX rates
    MODEL_MANAGE = "model.manage"
    REBALANCE_RUN = "rebalance.run"
    ORDER_VIEW = "order.view"
    ORDER_CREATE = "order.create"
    ORDER_APPROVE = "order.approve"
    ORDER_RELEASE = "order.release"
    ORDER_CANCEL = "order.cancel"
    BLOCK_VIEW = "block.view"
    BLOCK_ROUTE = "block.route"
    EXECUTION_VIEW = "execution.view"
    AUDIT_VIEW = "audit.view"


PM, TRADER, COMPLIANCE, OPS = (
    Role.PORTFOLIO_MANAGER,
    Role.TRADER,
    Role.COMPLIANCE,
    Role.OPERATIONS,
)

# Separation of duties: compliance officers cannot create or route orders;
# traders cannot create, approve or release them; portfolio managers cannot route.
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.PORTFOLIO_VIEW: frozenset({PM, COMPLIANCE, OPS}),
    Action.REFERENCE_VIEW: frozenset({PM, TRADER, COMPLIANCE, OPS}),
    Action.REFERENCE_MANAGE: frozenset({OPS}),
    Action.MODEL_MANAGE: frozenset({PM, OPS}),
    Action.REBALANCE_RUN: frozenset({PM}),
    Action.ORDER_VIEW: frozenset({PM, TRADER, COMPLIANCE, OPS}),
    Action.ORDER_CREATE: frozenset({PM}),
    Action.ORDER_APPROVE: frozenset({PM}),
    Action.ORDER_RELEASE: frozenset({PM}),
    Action.ORDER_CANCEL: frozenset({PM, TRADER}),
    Action.BLOCK_VIEW: frozenset({TRADER, COMPLIANCE, OPS}),
    Action.BLOCK_ROUTE: frozenset({TRADER}),
    Action.EXECUTION_VIEW: frozenset({TRADER, COMPLIANCE, OPS}),
    Action.AUDIT_VIEW: frozenset({COMPLIANCE, OPS}),
}


def roles_of(user) -> frozenset[Role]:
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_oms_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(role for role in Role if role.value in names)
        user._oms_roles = cached
    return cached


def can(user, action: Action) -> bool:
    return bool(roles_of(user) & PERMISSIONS[action])


def require(user, action: Action) -> None:
    if not can(user, action):
        raise PermissionDenied(f"Your role does not allow {action.value}.")


def sees_all_portfolios(user) -> bool:
    """Portfolio managers see the accounts they manage; other viewers see all."""
    roles = roles_of(user)
    return bool(roles & {COMPLIANCE, OPS, TRADER})
