"""The OpenAPI schema is valid and complete, and the API answers as it says.

Schemathesis generates requests for every operation of /api/schema/ (paths, query
strings, headers and bodies, valid and invalid: its coverage phase's boundary
cases, then fuzzed ones) and sends them to the application running in-process on
the test database, each with the token of one persona in turn (PM, trader,
compliance officer, operations, a user with no role), aimed at objects in every
state. Every answer must be no 5xx, with a documented status code, content type
and body. Bounded (a few fuzzed examples per operation, no shrinking, derandomized
in CI) to take about a minute on PostgreSQL.
"""

from __future__ import annotations

import collections
import itertools
import os
from decimal import Decimal

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application

# Fuzzed examples per operation, on top of the coverage phase's cases (which are most
# of the run's ~2,500 requests). OMS_SCHEMATHESIS_EXAMPLES raises it for a longer probe.
MAX_EXAMPLES = int(os.environ.get("OMS_SCHEMATHESIS_EXAMPLES", "6"))

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

EXPECTED_PATHS = {
    "/api/v1/securities/",
    "/api/v1/securities/{id}/",
    "/api/v1/prices/",
    "/api/v1/quotes/",
    "/api/v1/quotes/import/",
    "/api/v1/quotes/changes/",
    "/api/v1/portfolios/",
    "/api/v1/portfolios/{id}/",
    "/api/v1/portfolios/{id}/rebalance/",
    "/api/v1/portfolios/{id}/raise-cash/",
    "/api/v1/models/",
    "/api/v1/models/{id}/",
    "/api/v1/models/{id}/targets/",
    "/api/v1/models/{id}/csv/",
    "/api/v1/models/{id}/copy/",
    "/api/v1/models/{id}/assign/",
    "/api/v1/drift/",
    "/api/v1/exposure/totals/",
    "/api/v1/exposure/breakdown/",
    "/api/v1/lifecycle-events/",
    "/api/v1/lifecycle-events/{id}/",
    "/api/v1/rebalance-runs/",
    "/api/v1/rebalance-runs/{id}/",
    "/api/v1/rebalance-runs/{id}/approve/",
    "/api/v1/rebalance-runs/{id}/release/",
    "/api/v1/rebalance-runs/{id}/cancel/",
    "/api/v1/rebalance-runs/{id}/rerun/",
    "/api/v1/rebalance-runs/{id}/orders/{order_id}/quantity/",
    "/api/v1/rebalance-runs/{id}/totals/",
    "/api/v1/cash-flows/",
    "/api/v1/cash-flows/{id}/",
    "/api/v1/cash-flows/import/",
    "/api/v1/cash-flows/{id}/cancel/",
    "/api/v1/orders/",
    "/api/v1/orders/{id}/",
    "/api/v1/orders/{id}/approve/",
    "/api/v1/orders/{id}/release/",
    "/api/v1/orders/{id}/cancel/",
    "/api/v1/blocks/",
    "/api/v1/blocks/{id}/",
    "/api/v1/blocks/{id}/route/",
    "/api/v1/blocks/{id}/done-for-day/",
    "/api/v1/routes/{id}/cancel/",
    "/api/v1/routes/{id}/replace/",
    "/api/v1/routes/",
    "/api/v1/routes/{id}/",
    "/api/v1/executions/",
    "/api/v1/executions/{id}/",
    "/api/v1/allocations/",
    "/api/v1/allocations/{id}/",
    "/api/v1/brokers/",
    "/api/v1/brokers/{id}/",
    "/api/v1/audit-events/",
    "/api/v1/audit-events/{id}/",
    "/api/v1/audit-events/chain/",
    "/api/v1/audit-events/verify/",
    "/api/v1/rules/",
    "/api/v1/rules/{id}/",
    "/api/v1/rules/{id}/change/",
    "/api/v1/rules/{id}/deactivate/",
    "/api/v1/restricted-lists/",
    "/api/v1/restricted-lists/{id}/",
    "/api/v1/restricted-lists/{id}/change/",
    "/api/v1/pretrade-results/",
    "/api/v1/pretrade-results/{id}/",
    "/api/v1/overrides/",
    "/api/v1/overrides/{id}/",
    "/api/v1/overrides/{id}/approve/",
    "/api/v1/overrides/{id}/reject/",
    "/api/v1/alerts/",
    "/api/v1/alerts/{id}/",
    "/api/v1/alerts/{id}/assign/",
    "/api/v1/alerts/{id}/comment/",
    "/api/v1/alerts/{id}/resolve/",
}


def test_every_endpoint_is_in_the_schema():
    assert set(schema.raw_schema["paths"]) == EXPECTED_PATHS


def test_every_post_documents_idempotency_key_and_errors():
    for path, operations in schema.raw_schema["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
            if method == "post":
                headers = {
                    p["name"] for p in operation.get("parameters", []) if p["in"] == "header"
                }
                assert "Idempotency-Key" in headers, path
                assert {"400", "409", "422"} <= set(operation["responses"]), path


def test_only_a_read_of_a_list_is_documented_as_paged():
    """A POST that answers with a list (a load of prices) answers with the list itself,
    never a page of it: documented so (a page was documented, and schemathesis's
    generated loads found the answer did not match)."""
    paged = []
    for path, operations in schema.raw_schema["paths"].items():
        for method, operation in operations.items():
            if method in ("get", "parameters"):
                continue
            for code, answer in operation["responses"].items():
                for body in answer.get("content", {}).values():
                    if "Paginated" in body["schema"].get("$ref", ""):
                        paged.append((method, path, code))
    assert paged == []
    created = schema.raw_schema["paths"]["/api/v1/prices/"]["post"]["responses"]["201"]
    body = created["content"]["application/json"]["schema"]
    assert body == {"type": "array", "items": {"$ref": "#/components/schemas/Price"}}


def test_the_schema_generates_without_errors_or_warnings(tmp_path):
    # --validate checks the result against the OpenAPI 3 specification; a warning
    # (a type drf-spectacular had to guess, an ambiguous enum name) fails the command.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )
    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3")


@pytest.fixture
def in_test_transaction():
    """Requests reach the WSGI application directly, not through Django's test client:
    like the test client, keep Django from closing the connection at the end of each
    request, which would close the test's transaction with it (on PostgreSQL)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_objects(pm, trader, book, eager_celery, django_capture_on_commit_callbacks):
    """Objects in each state the API's actions start from, made through the services,
    so that generated requests reach real objects and not only 404s: a draft, an
    approved and a released order (an open block), a block routed, filled and
    allocated, and a proposed rebalance run. Returns the ids per collection and the
    codes a body names objects by."""
    from audit.models import AuditEvent
    from portfolios.models import ModelPortfolio, Portfolio, RebalanceRun, Security
    from trading.models import Allocation, Block, Broker, Execution, Order, Route
    from trading.services import orders as order_services
    from trading.services import routes as route_services

    from .utils import proposed_run

    accounts, securities = book["accounts"], book["securities"]

    def order(account, ticker, quantity, upto):
        made = order_services.order_create(
            actor=pm,
            portfolio=accounts[account],
            security=securities[ticker],
            side="buy",
            quantity=Decimal(quantity),
        )
        if upto in ("approved", "released"):
            order_services.orders_approve(actor=pm, order_ids=[made.pk])
        if upto == "released":
            order_services.orders_release(actor=pm, order_ids=[made.pk])
        made.refresh_from_db()
        return made

    order(0, "AAA", "10", "draft")
    order(1, "BBB", "10", "approved")
    order(1, "CCC", "10", "released")
    filled = order(0, "DDD", "20", "released")
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_create(actor=trader, block_id=filled.block_id, broker=book["broker"])
    proposed_run(pm, book)

    def ids(model):
        return list(model.objects.order_by("pk").values_list("pk", flat=True))

    return {
        "ids": {
            "securities": ids(Security),
            "portfolios": ids(Portfolio),
            "models": ids(ModelPortfolio),
            "rebalance-runs": ids(RebalanceRun),
            "orders": ids(Order),
            "blocks": ids(Block),
            "routes": ids(Route),
            "executions": ids(Execution),
            "allocations": ids(Allocation),
            "brokers": ids(Broker),
            "audit-events": ids(AuditEvent)[-5:],
        },
        "codes": {
            "portfolio": [a.code for a in accounts],
            "security": sorted(securities),
            "broker": [book["broker"].code],
        },
    }


@pytest.fixture
def role_tokens(in_test_transaction, personas, api_objects):
    """A token per persona: each role sees and may do something else (the outsider
    nothing at all)."""
    return [(name, Token.objects.create(user=user).key) for name, user in personas.items()]


# Each generated request goes out with one role's token, the next request of the same
# operation with the next role's: every role meets every operation, and the run costs
# a fifth of sending each request five times (most of which would be the same 403).
_turns: dict[str, itertools.count] = collections.defaultdict(itertools.count)


def _pick(generated, choices):
    """Most generated values become one of `choices`, chosen by the generated value
    itself (a replay sends the same request); a quarter stay as generated."""
    text = str(generated)
    if not choices or len(text) % 4 == 3:
        return generated
    return choices[sum(map(ord, text)) % len(choices)]


_keys = itertools.count()


def _aim_at_real_objects(case, known: dict) -> None:
    """Point path ids and the codes in a body at the objects made above, so that
    requests get past "not found" to the answers whose bodies are checked; make most
    Idempotency-Keys unique, or every request after the first would be a 422."""
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and key.strip() and len(key) < 200:
        case.headers["Idempotency-Key"] = _pick(key, [f"{key}-{next(_keys)}"])
    if case.path_parameters and "id" in case.path_parameters:
        generated = str(case.path_parameters["id"])
        if generated.isdigit():
            collection = case.operation.path.split("/")[3]
            case.path_parameters["id"] = str(_pick(generated, known["ids"].get(collection)))
    rows = case.body if isinstance(case.body, list) else [case.body]  # a price load is a list
    for row in rows:
        if not isinstance(row, dict):
            continue
        for name, codes in known["codes"].items():
            if isinstance(row.get(name), str):
                row[name] = _pick(row[name], codes)
        targets = row.get("targets")
        for target in targets if isinstance(targets, list) else []:
            if isinstance(target, dict) and isinstance(target.get("security"), str):
                target["security"] = _pick(target["security"], known["codes"]["security"])


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The application runs in this thread, on this test's database connection: it sees the
# test's data without a commit, and what it writes is rolled back after each operation
# (the equivalent of a transactional test, without emptying every table each time).
@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_every_role_gets_documented_answers_and_no_server_error(case, role_tokens, api_objects):
    """No 5xx, and every answer as documented: its status code, its content type and
    its body against the response schema, for each role's token."""
    _aim_at_real_objects(case, api_objects)
    role, token = role_tokens[next(_turns[case.operation.label]) % len(role_tokens)]
    response = case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
    if os.environ.get("OMS_SCHEMATHESIS_LOG"):  # what a probe sent and got, for reading
        with open(os.environ["OMS_SCHEMATHESIS_LOG"], "a") as log:
            log.write(
                f"{case.method} {case.operation.path} {role} {response.status_code} "
                f"{case.body!r:.300} {response.text[:300]}\n"
            )


def test_the_interactive_docs_work_offline(client, settings):
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()
    assert client.get("/api/schema/?format=json").json()["info"]["title"] == "OMS API"
