"""The permission matrix of the API: every action by every role, and anonymous.

The expected answers are written out, not derived from oms.roles, so that a change
of who may do what shows up here as a deliberate edit. Writes start from an object
in the state the action needs (made through the services), owned by the PM, so
that a refusal can only come from the role.
"""

from __future__ import annotations

import pytest

from orchestration import services as run_services
from portfolios.models import RebalanceRun

from .utils import API, proposed_run

pytestmark = pytest.mark.django_db

ROLES = ["pm", "trader", "compliance", "ops", "outsider"]

# endpoint: expected status for pm, trader, compliance, ops, outsider
READS = {
    "securities": (200, 200, 200, 200, 403),
    "prices": (200, 200, 200, 200, 403),
    "portfolios": (200, 403, 200, 200, 403),
    "models": (200, 200, 200, 200, 403),
    "rebalance-runs": (200, 403, 200, 200, 403),
    "orders": (200, 200, 200, 200, 403),
    "blocks": (403, 200, 200, 200, 403),
    "routes": (403, 200, 200, 200, 403),
    "executions": (403, 200, 200, 200, 403),
    "allocations": (200, 200, 200, 200, 403),
    "brokers": (200, 200, 200, 200, 403),
    "audit-events": (403, 403, 200, 200, 403),
    "exposure/totals": (200, 403, 200, 200, 403),
    "lifecycle-events": (200, 403, 200, 200, 403),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", READS)
def test_read_matrix(endpoint, role, personas, book, client_for):
    expected = READS[endpoint][ROLES.index(role)]
    response = client_for(personas[role]).get(f"{API}/{endpoint}/")
    assert response.status_code == expected, response.content


@pytest.mark.parametrize("endpoint", READS)
def test_anonymous_is_asked_to_authenticate(endpoint, client_for, db):
    response = client_for(None).get(f"{API}/{endpoint}/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- Writes: each starts from its object in the right state -----------------------------


def _security(ctx):
    return "securities/", {
        "ticker": "NEW1",
        "name": "New One",
        "asset_class": "equity",
        "currency": "USD",
    }


def _prices(ctx):
    return "prices/", [{"security": "EEE", "as_of": "2020-01-02", "price": "9.5"}]


def _model(ctx):
    return "models/", {
        "name": "Balanced",
        "cash_weight": "0.1",
        "targets": [{"security": "AAA", "weight": "0.5"}, {"security": "CCC", "weight": "0.4"}],
    }


def _model_copy(ctx):
    return f"models/{ctx['book']['model'].pk}/copy/", {"name": "Core copy"}


def _model_assign(ctx):
    return f"models/{ctx['book']['model'].pk}/assign/", {"portfolios": ["ACC1"]}


def _order_create(ctx):
    account = ctx["book"]["accounts"][0]
    return "orders/", {"portfolio": account.code, "security": "AAA", "side": "buy", "quantity": 5}


def _order_approve(ctx):
    return f"orders/{ctx['make_order']().pk}/approve/", {}


def _order_release(ctx):
    return f"orders/{ctx['make_order'](upto='approved').pk}/release/", {}


def _order_cancel(ctx):
    return f"orders/{ctx['make_order']().pk}/cancel/", {"reason": "test"}


def _rebalance(ctx):
    return f"portfolios/{ctx['book']['accounts'][0].pk}/rebalance/", {}


def _run_approve(ctx):
    return f"rebalance-runs/{proposed_run(ctx['pm'], ctx['book']).pk}/approve/", {}


def _run_release(ctx):
    run = proposed_run(ctx["pm"], ctx["book"])
    run_services.rebalance_run_approve(actor=ctx["pm"], run_id=run.pk)
    assert RebalanceRun.objects.get(pk=run.pk).status == "approved"
    return f"rebalance-runs/{run.pk}/release/", {}


def _run_cancel(ctx):
    return f"rebalance-runs/{proposed_run(ctx['pm'], ctx['book']).pk}/cancel/", {}


def _block_route(ctx):
    block_id = ctx["make_order"](upto="released").block_id
    return f"blocks/{block_id}/route/", {"broker": "SIM"}


# action: (setup, expected status for pm, trader, compliance, ops, outsider)
WRITES = {
    "securities.create": (_security, (403, 403, 403, 201, 403)),
    "prices.create": (_prices, (403, 403, 403, 201, 403)),
    "models.create": (_model, (201, 403, 403, 201, 403)),
    "models.copy": (_model_copy, (201, 403, 403, 201, 403)),
    "models.assign": (_model_assign, (200, 403, 403, 200, 403)),
    "orders.create": (_order_create, (201, 403, 403, 403, 403)),
    "orders.approve": (_order_approve, (200, 403, 403, 403, 403)),
    "orders.release": (_order_release, (200, 403, 403, 403, 403)),
    "orders.cancel": (_order_cancel, (200, 200, 403, 403, 403)),
    "portfolios.rebalance": (_rebalance, (201, 403, 403, 403, 403)),
    "rebalance-runs.approve": (_run_approve, (200, 403, 403, 403, 403)),
    "rebalance-runs.release": (_run_release, (200, 403, 403, 403, 403)),
    "rebalance-runs.cancel": (_run_cancel, (200, 403, 403, 403, 403)),
    "blocks.route": (_block_route, (403, 201, 403, 403, 403)),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", WRITES)
def test_write_matrix(name, role, personas, pm, book, make_order, client_for):
    setup, statuses = WRITES[name]
    path, body = setup({"pm": pm, "book": book, "make_order": make_order})
    response = client_for(personas[role]).post(f"{API}/{path}", body, format="json")
    assert response.status_code == statuses[ROLES.index(role)], response.content


@pytest.mark.parametrize("name", WRITES)
def test_anonymous_cannot_write(name, pm, book, make_order, client_for):
    setup, _ = WRITES[name]
    path, body = setup({"pm": pm, "book": book, "make_order": make_order})
    assert client_for(None).post(f"{API}/{path}", body, format="json").status_code == 401
