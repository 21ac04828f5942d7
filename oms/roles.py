"""Roles and the one permission predicate, in one place.

A role is a Django group. Each action names the roles that may take it
(`PERMISSIONS`); a portfolio manager's grants reach only the accounts they
manage, every other role's reach every account. Views, API views and services
all ask the same two questions:

* `can(user, action)`: may the user take this action at all (on some account)?
* `may_act_for(user, action, portfolio)`: may the user take it on this account?

and `require` raises PermissionDenied, in the user's words, where the answer is
no. A user in several roles gets, per action, only what one of their roles
grants: a portfolio manager who is also a compliance officer still approves
orders only for the accounts they manage, since compliance grants no approval.
The permission matrix tests walk every action against every role and against
users in several roles.
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
    BREAK_RESOLVE = "break.resolve"  # trade busts, statement differences
    AUDIT_VIEW = "audit.view"
    COMPLIANCE_VIEW = "compliance.view"  # the rule book, restricted lists, check results
    RULE_MANAGE = "rule.manage"  # rules and restricted lists
    OVERRIDE_REQUEST = "override.request"
    OVERRIDE_DECIDE = "override.decide"
    ALERT_MANAGE = "alert.manage"  # assign, comment on and resolve post-trade alerts


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
    Action.BREAK_RESOLVE: frozenset({OPS}),
    Action.AUDIT_VIEW: frozenset({COMPLIANCE, OPS}),
    Action.COMPLIANCE_VIEW: frozenset({PM, TRADER, COMPLIANCE, OPS}),
    # Compliance keeps the rule book and decides overrides; those who trade ask for them.
    Action.RULE_MANAGE: frozenset({COMPLIANCE}),
    Action.OVERRIDE_REQUEST: frozenset({PM, TRADER}),
    Action.OVERRIDE_DECIDE: frozenset({COMPLIANCE}),
    Action.ALERT_MANAGE: frozenset({COMPLIANCE}),
}


#: What each action lets its holder do, in the words a refusal uses.
ACTION_LABELS: dict[Action, str] = {
    Action.PORTFOLIO_VIEW: "see accounts",
    Action.REFERENCE_VIEW: "see reference data",
    Action.REFERENCE_MANAGE: "change reference data (securities, prices, FX rates)",
    Action.MODEL_MANAGE: "change model portfolios",
    Action.REBALANCE_RUN: "rebalance accounts",
    Action.ORDER_VIEW: "see orders",
    Action.ORDER_CREATE: "create orders",
    Action.ORDER_APPROVE: "approve orders",
    Action.ORDER_RELEASE: "release orders to the trading desk",
    Action.ORDER_CANCEL: "cancel orders",
    Action.BLOCK_VIEW: "see the trading blotter",
    Action.BLOCK_ROUTE: "route or cancel orders with brokers",
    Action.EXECUTION_VIEW: "see executions and brokers",
    Action.BREAK_RESOLVE: "resolve breaks (trade busts, statement differences)",
    Action.AUDIT_VIEW: "see the audit trail",
    Action.COMPLIANCE_VIEW: "see the rule book and compliance results",
    Action.RULE_MANAGE: "change compliance rules and restricted lists",
    Action.OVERRIDE_REQUEST: "request compliance overrides",
    Action.OVERRIDE_DECIDE: "approve or reject compliance overrides",
    Action.ALERT_MANAGE: "assign, comment on or resolve compliance alerts",
}

#: Roles whose grants reach only the accounts the user manages.
MANAGED_ACCOUNTS_ONLY: frozenset[Role] = frozenset({PM})


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
    """Whether any of the user's roles grants the action (on some account at least)."""
    return bool(roles_of(user) & PERMISSIONS[action])


def sees_all_accounts(user, action: Action = Action.PORTFOLIO_VIEW) -> bool:
    """Whether one of the user's roles grants the action over every account, not
    only over those the user manages."""
    return bool((roles_of(user) & PERMISSIONS[action]) - MANAGED_ACCOUNTS_ONLY)


def may_act_for(user, action: Action, portfolio) -> bool:
    """The one predicate for "may this user take this action on this account"."""
    if not can(user, action):
        return False
    return sees_all_accounts(user, action) or portfolio.manager_id == user.pk


def may_change_model(user, model) -> bool:
    """A model with an owner drives its owner's accounts: it is changed by its owner or by
    a role over every account (operations); a house model (no owner) by every model
    manager. Reading, copying and following a model need no more than MODEL_MANAGE."""
    if not can(user, Action.MODEL_MANAGE):
        return False
    return (
        model.owner_id is None
        or model.owner_id == user.pk
        or sees_all_accounts(user, Action.MODEL_MANAGE)
    )


def require_model_change(user, model) -> None:
    """Raise PermissionDenied, naming the owner, unless the user may change the model."""
    require(user, Action.MODEL_MANAGE)
    if not may_change_model(user, model):
        raise PermissionDenied(
            f"Model {model.name} is {model.owner.get_username()}'s: "
            "only its owner or operations may change it."
        )


def refusal(action: Action) -> str:
    return f"Your role does not allow you to {ACTION_LABELS[action]}."


def require(user, action: Action, portfolio=None) -> None:
    """Raise PermissionDenied unless the user may take the action (on `portfolio`,
    when the action is about one account)."""
    if not can(user, action):
        raise PermissionDenied(refusal(action))
    if portfolio is not None and not may_act_for(user, action, portfolio):
        raise PermissionDenied(f"You do not manage account {portfolio.code}.")
