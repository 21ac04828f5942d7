"""Every allowed and every forbidden transition of the four state machines.

The maps are walked pair by pair through `check_transition`, the one gate every
service passes; then the services are driven into forbidden moves to show that
they use the gate and leave nothing half-written.
"""

from decimal import Decimal
from itertools import product

import pytest

from compliance.models import Alert, Override
from oms.state import TransitionError, check_transition, terminal_states
from orchestration.models import CashFlow
from portfolios.models import RebalanceRun
from trading.models import Block, Order, Route
from trading.services import orders as order_services
from trading.services import routes as route_services

MACHINES = {
    "order": (Order, Order.Status.DRAFT),
    "block": (Block, Block.Status.OPEN),
    "route": (Route, Route.Status.PENDING_NEW),
    "rebalance_run": (RebalanceRun, RebalanceRun.Status.DRAFT),
    "cash_flow": (CashFlow, CashFlow.Status.PENDING),
    "override": (Override, Override.Status.REQUESTED),
    "alert": (Alert, Alert.Status.OPEN),
}


class _Stub:
    def __init__(self, status):
        self.status = status


def _pairs(model):
    return list(product(model.Status.values, repeat=2))


@pytest.mark.parametrize("name", MACHINES)
def test_every_pair_is_allowed_exactly_when_the_map_says(name):
    model, _ = MACHINES[name]
    allowed = forbidden = 0
    for current, target in _pairs(model):
        obj = _Stub(current)
        if target in model.TRANSITIONS[current]:
            check_transition(obj, model.TRANSITIONS, target)
            allowed += 1
        else:
            with pytest.raises(TransitionError):
                check_transition(obj, model.TRANSITIONS, target)
            forbidden += 1
    assert allowed > 0 and forbidden > 0


@pytest.mark.parametrize("name", MACHINES)
def test_map_covers_every_state_and_every_state_is_reachable(name):
    model, initial = MACHINES[name]
    assert set(model.TRANSITIONS) == set(model.Status.values)
    for targets in model.TRANSITIONS.values():
        assert targets <= set(model.Status.values)
    seen, frontier = {initial}, [initial]
    while frontier:
        for target in model.TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(model.Status.values), f"unreachable: {set(model.Status.values) - seen}"


def test_terminal_states():
    assert terminal_states(Order.TRANSITIONS) == {Order.Status.REJECTED, Order.Status.ALLOCATED}
    assert terminal_states(Block.TRANSITIONS) == {Block.Status.ALLOCATED}
    assert {
        Route.Status.FILLED,
        Route.Status.CANCELLED,
        Route.Status.REJECTED,
        Route.Status.EXPIRED,
        Route.Status.DONE_FOR_DAY,
    } == Route.TERMINAL_STATES


def test_route_rules_from_the_fix_state_matrices():
    route = Route.TRANSITIONS
    # A fill after a cancel request is legal; a cancel reject restores the prior state.
    assert {Route.Status.PARTIALLY_FILLED, Route.Status.FILLED} <= route[
        Route.Status.PENDING_CANCEL
    ]
    assert {Route.Status.NEW, Route.Status.PARTIALLY_FILLED} <= route[Route.Status.PENDING_CANCEL]
    # Unconfirmed is settled only by the broker's answer, never by giving up.
    assert Route.Status.PENDING_NEW not in route[Route.Status.UNCONFIRMED]
    assert route[Route.Status.FILLED] == frozenset()


@pytest.mark.django_db
class TestServicesRefuseForbiddenMoves:
    def _draft(self, pm, book):
        return order_services.order_create(
            actor=pm,
            portfolio=book["accounts"][0],
            security=book["securities"]["AAA"],
            side="buy",
            quantity=Decimal(10),
        )

    def test_release_of_a_draft_is_refused_and_nothing_changes(self, pm, book):
        order = self._draft(pm, book)
        with pytest.raises(TransitionError):
            order_services.orders_release(actor=pm, order_ids=[order.pk])
        order.refresh_from_db()
        assert order.status == Order.Status.DRAFT
        assert order.block_id is None
        assert not Block.objects.exists()

    def test_approving_twice_is_refused(self, pm, book):
        order = self._draft(pm, book)
        order_services.orders_approve(actor=pm, order_ids=[order.pk])
        with pytest.raises(TransitionError):
            order_services.orders_approve(actor=pm, order_ids=[order.pk])

    def test_cancelled_order_cannot_be_approved(self, pm, book):
        order = self._draft(pm, book)
        order_services.order_cancel(actor=pm, order_id=order.pk)
        with pytest.raises(TransitionError):
            order_services.orders_approve(actor=pm, order_ids=[order.pk])

    def test_batch_with_one_bad_order_writes_nothing(self, pm, book):
        good, bad = self._draft(pm, book), self._draft(pm, book)
        order_services.order_cancel(actor=pm, order_id=bad.pk)
        with pytest.raises(TransitionError):
            order_services.orders_approve(actor=pm, order_ids=[good.pk, bad.pk])
        good.refresh_from_db()
        assert good.status == Order.Status.DRAFT

    def test_allocated_block_cannot_be_routed(
        self, pm, trader, book, eager_celery, django_capture_on_commit_callbacks
    ):
        order = self._draft(pm, book)
        order_services.orders_approve(actor=pm, order_ids=[order.pk])
        order_services.orders_release(actor=pm, order_ids=[order.pk])
        order.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            route_services.route_create(
                actor=trader, block_id=order.block_id, broker=book["broker"]
            )
        assert Block.objects.get(pk=order.block_id).status == Block.Status.ALLOCATED
        with pytest.raises(TransitionError, match="allocated"):
            route_services.route_create(
                actor=trader, block_id=order.block_id, broker=book["broker"]
            )


#: Models with a status that is not a state machine: a verdict written once (a
#: check's result), or a row claimed set-based in one statement from one state.
NOT_MACHINES = {
    "compliance.PretradeResult": "a rule's verdict on an order, written once",
    "orchestration.ProposalCheck": "the pre-trade verdict a run stored, written once",
    "orchestration.RunAccount": "claimed from pending by its chunk, in one statement",
}


def test_every_model_with_a_status_has_a_transition_map():
    from django.apps import apps

    missing = [
        model._meta.label
        for model in apps.get_models()
        if "status" in {f.name for f in model._meta.fields}
        and not hasattr(model, "TRANSITIONS")
        and model._meta.label not in NOT_MACHINES
    ]
    assert missing == []
