"""The whole chain through the API, as three integrators with tokens would run it:
the PM rebalances, approves and releases; the trader routes to the simulated
broker and follows the fills to allocation; compliance reads every step, by actor,
in the audit trail."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.services import verify_audit_chain

from .utils import API, results

pytestmark = pytest.mark.django_db


def test_pm_trader_and_compliance_run_the_chain(
    pm,
    trader,
    compliance_officer,
    book,
    client_for,
    eager_celery,
    django_capture_on_commit_callbacks,
):
    acc1 = book["accounts"][0]
    desk, officer, manager = client_for(trader), client_for(compliance_officer), client_for(pm)

    # The PM sees ACC1 drifting, rebalances it, approves and releases the proposal.
    [drifting] = results(manager.get(f"{API}/portfolios/?q={acc1.code}"))
    assert drifting["drift"]["out_of_band"] is True
    response = manager.post(
        f"{API}/portfolios/{acc1.pk}/rebalance/",
        {"min_trade_value": 100},
        format="json",
        HTTP_IDEMPOTENCY_KEY="walk-rebalance",
    )
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["status"] == "proposed"
    assert run["orders"], "a drifting account gets orders"
    assert run["summary"]["ACC1"]["drift_after"] < run["summary"]["ACC1"]["drift_before"]
    approved = manager.post(f"{API}/rebalance-runs/{run['id']}/approve/").json()
    assert {o["status"] for o in approved["orders"]} == {"approved"}
    released = manager.post(f"{API}/rebalance-runs/{run['id']}/release/").json()
    assert released["status"] == "released"
    assert {o["status"] for o in released["orders"]} == {"released"}

    # The trader finds the blocks and routes each to the simulated broker; it fills.
    blocks = results(desk.get(f"{API}/blocks/?status=open"))
    assert sorted(o for b in blocks for o in b["orders"]) == sorted(o["id"] for o in run["orders"])
    for block in blocks:
        with django_capture_on_commit_callbacks(execute=True):
            response = desk.post(
                f"{API}/blocks/{block['id']}/route/", {"broker": "SIM"}, format="json"
            )
        assert response.status_code == 201, response.content
        route = desk.get(f"{API}/routes/{response.json()['id']}/").json()
        assert route["status"] == "filled"
        fills = results(desk.get(f"{API}/executions/?cl_ord_id={route['cl_ord_id']}"))
        trades = [f for f in fills if f["exec_type"] == "trade"]
        assert sum(Decimal(f["last_quantity"]) for f in trades) == Decimal(block["quantity"])
    assert {b["status"] for b in results(desk.get(f"{API}/blocks/"))} == {"allocated"}

    # The PM sees the orders allocated and the account's holdings changed.
    orders = results(manager.get(f"{API}/orders/?rebalance_run={run['id']}"))
    assert {o["status"] for o in orders} == {"allocated"}
    allocations = results(manager.get(f"{API}/allocations/"))
    assert {a["order"] for a in allocations} == {o["id"] for o in orders}
    after = manager.get(f"{API}/portfolios/{acc1.pk}/").json()
    held = {p["security"]: Decimal(p["quantity"]) for p in after["positions"]}
    for order in orders:
        before = {"AAA": 600, "BBB": 100, "EEE": 500}.get(order["security"], 0)
        change = Decimal(order["filled_quantity"])
        expected = before + (change if order["side"] == "buy" else -change)
        assert held.get(order["security"], Decimal(0)) == expected, order
    assert after["drift"]["drift"] < drifting["drift"]["drift"]

    # Compliance finds every step, naming who took it.
    def actors(kind):
        return {e["actor_name"] for e in results(officer.get(f"{API}/audit-events/?kind={kind}"))}

    assert actors("rebalance.created") == {"pm"}
    assert actors("rebalance.approved") == {"pm"}
    assert actors("orders.approved") == {"pm"}  # one event for the run's orders
    assert actors("rebalance.released") == {"pm"}
    assert actors("orders.released") == {"pm"}
    assert actors("route.created") == {"trader"}
    assert actors("execution.trade") == {"broker:SIM"}
    assert actors("order.allocated") and actors("block.allocated")
    created = results(officer.get(f"{API}/audit-events/?kind=rebalance.created"))
    assert created[0]["origin"].startswith("api")
    assert verify_audit_chain().ok
