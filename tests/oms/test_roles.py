"""The permission matrix: every action against every role.

The expected matrix is written out here independently of oms.roles, as the
product's rule book; the services are then called by each persona.
"""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from oms.roles import Action, Role, can
from trading.services import orders as order_services
from trading.services import routes as route_services

PM, TR, CO, OP, NONE = "pm", "trader", "compliance", "ops", "outsider"

EXPECTED = {
    Action.PORTFOLIO_VIEW: {PM, CO, OP},
    Action.REFERENCE_VIEW: {PM, TR, CO, OP},
    Action.REFERENCE_MANAGE: {OP},
    Action.MODEL_MANAGE: {PM, OP},
    Action.REBALANCE_RUN: {PM},
    Action.ORDER_VIEW: {PM, TR, CO, OP},
    Action.ORDER_CREATE: {PM},
    Action.ORDER_APPROVE: {PM},
    Action.ORDER_RELEASE: {PM},
    Action.ORDER_CANCEL: {PM, TR},
    Action.BLOCK_VIEW: {TR, CO, OP},
    Action.BLOCK_ROUTE: {TR},
    Action.EXECUTION_VIEW: {TR, CO, OP},
    Action.BREAK_RESOLVE: {OP},
    Action.AUDIT_VIEW: {CO, OP},
    Action.COMPLIANCE_VIEW: {PM, TR, CO, OP},
    Action.RULE_MANAGE: {CO},
    Action.OVERRIDE_REQUEST: {PM, TR},
    Action.OVERRIDE_DECIDE: {CO},
    Action.ALERT_MANAGE: {CO},
}


def test_every_action_is_in_the_matrix():
    assert set(EXPECTED) == set(Action)


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(Action))
def test_can_matches_the_matrix(action, personas):
    for name, user in personas.items():
        assert can(user, action) == (name in EXPECTED[action]), f"{name} / {action}"


@pytest.mark.django_db
def test_inactive_user_can_do_nothing(pm):
    pm.is_active = False
    pm.save()
    assert not any(can(pm, action) for action in Action)


@pytest.mark.django_db
def test_separation_of_duties_in_the_services(personas, book, eager_celery):
    pm = personas["pm"]
    account, security = book["accounts"][0], book["securities"]["AAA"]

    def create(user):
        return order_services.order_create(
            actor=user, portfolio=account, security=security, side="buy", quantity=Decimal(10)
        )

    for name in (TR, CO, OP, NONE):
        with pytest.raises(PermissionDenied):
            create(personas[name])
    order = create(pm)
    for name in (TR, CO, OP, NONE):
        with pytest.raises(PermissionDenied):
            order_services.orders_approve(actor=personas[name], order_ids=[order.pk])
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    for name in (TR, CO, OP, NONE):
        with pytest.raises(PermissionDenied):
            order_services.orders_release(actor=personas[name], order_ids=[order.pk])
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    for name in (PM, CO, OP, NONE):
        with pytest.raises(PermissionDenied):
            route_services.route_create(
                actor=personas[name], block_id=order.block_id, broker=book["broker"]
            )
    route_services.route_create(actor=personas[TR], block_id=order.block_id, broker=book["broker"])


def test_roles_are_the_four_groups():
    assert {r.value for r in Role} == {
        "Portfolio managers",
        "Traders",
        "Compliance officers",
        "Operations",
    }


# --- Users in several roles ---------------------------------------------------------
#
# Per action, a user gets what one of their roles grants, never more: a portfolio
# manager's grants reach the accounts they manage; the other roles' reach every
# account, but only for the actions those roles have. So a PM who is also a
# compliance officer, a trader or in operations still creates, approves and
# releases orders only for their own accounts.

ACCOUNT_ACTIONS = (
    Action.ORDER_CREATE,
    Action.ORDER_APPROVE,
    Action.ORDER_RELEASE,
    Action.REBALANCE_RUN,
)


@pytest.fixture
def multi_role(make_user):
    def make(name, *roles):
        from django.contrib.auth.models import Group

        user = make_user(name)
        for role in roles:
            user.groups.add(Group.objects.get_or_create(name=role.value)[0])
        return user

    return make


@pytest.mark.django_db
@pytest.mark.parametrize(
    "other_role", [Role.COMPLIANCE, Role.TRADER, Role.OPERATIONS], ids=lambda r: r.name
)
@pytest.mark.parametrize("action", ACCOUNT_ACTIONS)
def test_a_pm_in_another_role_acts_only_for_their_own_accounts(
    multi_role, book, other_pm, other_role, action
):
    from oms.roles import may_act_for

    user = multi_role(f"pm-and-{other_role.name.lower()}", Role.PORTFOLIO_MANAGER, other_role)
    own = book["accounts"][0]
    own.manager = user
    own.save(update_fields=["manager"])
    others = book["accounts"][1]
    assert may_act_for(user, action, own)
    assert not may_act_for(user, action, others)


@pytest.mark.django_db
def test_a_pm_and_trader_cannot_work_another_managers_account_through_the_services(
    multi_role, book, pm
):
    """Probing: a user in the PM and trader groups created, approved, released and
    routed an order on another manager's account."""
    user = multi_role("pm-trader", Role.PORTFOLIO_MANAGER, Role.TRADER)
    account = book["accounts"][0]  # managed by `pm`, not by `user`
    with pytest.raises(PermissionDenied, match=f"do not manage account {account.code}"):
        order_services.order_create(
            actor=user,
            portfolio=account,
            security=book["securities"]["AAA"],
            side="buy",
            quantity=Decimal(10),
        )
    order = order_services.order_create(
        actor=pm,
        portfolio=account,
        security=book["securities"]["AAA"],
        side="buy",
        quantity=Decimal(10),
    )
    with pytest.raises(PermissionDenied):
        order_services.orders_approve(actor=user, order_ids=[order.pk])
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    with pytest.raises(PermissionDenied):
        order_services.orders_release(actor=user, order_ids=[order.pk])
    # cancelling is a trader's right on any account: the trader role grants it
    order_services.order_cancel(actor=user, order_id=order.pk, reason="desk")


@pytest.mark.django_db
def test_a_pm_and_compliance_officer_cannot_rebalance_another_managers_account(multi_role, book):
    from orchestration.services import rebalance_run_create

    user = multi_role("pm-compliance", Role.PORTFOLIO_MANAGER, Role.COMPLIANCE)
    with pytest.raises(PermissionDenied, match="do not manage account"):
        rebalance_run_create(actor=user, portfolios=[book["accounts"][0]])


@pytest.mark.django_db
def test_a_pm_and_compliance_officer_sees_every_account(multi_role, book):
    from portfolios.selectors import portfolios_visible_to

    user = multi_role("pm-compliance-2", Role.PORTFOLIO_MANAGER, Role.COMPLIANCE)
    assert set(portfolios_visible_to(user)) == set(book["accounts"])


@pytest.mark.django_db
def test_a_refusal_names_the_action_in_words(personas):
    from oms.roles import require

    with pytest.raises(PermissionDenied) as refused:
        require(personas[PM], Action.BLOCK_VIEW)
    assert str(refused.value) == "Your role does not allow you to see the trading blotter."
    assert "block.view" not in str(refused.value)
