"""The OpenAPI schema is valid and complete, and no request built from it gets a 5xx.

Schemathesis generates requests for every operation of /api/schema/ (paths, query
strings, headers and bodies, valid and invalid) and sends them, with the token of
a user who holds every role and manages the book's accounts, to the application
running in-process on the test database. Bounded (a few examples per operation, no
shrinking) to stay well under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token

from config.wsgi import application
from oms.roles import Role

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)

EXPECTED_PATHS = {
    "/api/v1/securities/",
    "/api/v1/securities/{id}/",
    "/api/v1/prices/",
    "/api/v1/portfolios/",
    "/api/v1/portfolios/{id}/",
    "/api/v1/portfolios/{id}/rebalance/",
    "/api/v1/models/",
    "/api/v1/models/{id}/",
    "/api/v1/rebalance-runs/",
    "/api/v1/rebalance-runs/{id}/",
    "/api/v1/rebalance-runs/{id}/approve/",
    "/api/v1/rebalance-runs/{id}/release/",
    "/api/v1/rebalance-runs/{id}/cancel/",
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
def integrator_token(in_test_transaction, pm, book):
    """The book's PM, given every other role too, so that every operation is reachable."""
    for role in Role:
        pm.groups.add(Group.objects.get(name=role.value))
    return Token.objects.create(user=pm).key


# The application runs in this thread, on this test's database connection: it sees the
# test's data without a commit, and what it writes is rolled back after each operation
# (the equivalent of a transactional test, without emptying every table each time).
@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=5,
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
def test_no_request_gets_a_server_error(case, integrator_token):
    response = case.call(headers={"Authorization": f"Token {integrator_token}"})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} → {response.status_code}\n"
        f"{case.as_curl_command()}\n{response.text[:2000]}"
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
