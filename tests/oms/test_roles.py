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
    Action.AUDIT_VIEW: {CO, OP},
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
