"""Errors speak the user's words: no permission code ("block.view"), no enum or model
repr ("RebalanceRun.Status.APPROVED", "<Order: ...>"), no exception or class name
("TransitionError", "No Order matches the given query."), on any refused page, any
API error answer, or a form sent without its security token."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from oms.roles import Action

from .test_access import PAGES, objects  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

INTERNAL = [
    re.compile(r"(?<![\w.])(" + "|".join(re.escape(a.value) for a in Action) + r")(?![\w.])"),
    re.compile(r"\b\w+\.Status\.\w+"),  # an enum member's repr
    re.compile(r"<\w+: "),  # a model instance's repr
    re.compile(r"\[['\"]"),  # a list's repr, as str(ValidationError) gives
    re.compile(r"\b\w+(Error|Exception|DoesNotExist|Denied)\b"),  # a class name
    re.compile(r"matches the given query|matching query|Object with \w+="),
    re.compile(r"CSRF|Traceback|\bNone\b"),
]


def assert_in_words(text: str, where: str) -> None:
    for pattern in INTERNAL:
        found = pattern.search(text)
        assert not found, f"{where}: {found.group(0)!r} in {text[:300]!r}"


def _message(response) -> str:
    """What the page says: the error page's text or the flash messages."""
    content = response.content.decode()
    main = re.search(r"<main[^>]*>(.*)</main>", content, re.DOTALL)
    return re.sub(r"<[^>]+>", " ", main.group(1) if main else content)


def _strings(value) -> list[str]:
    """Every message in a JSON answer (keys are field names, not messages)."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


@pytest.fixture
def everyone(personas, other_pm):
    return personas | {"other_pm": other_pm}


def test_every_refused_page_says_why_in_words(objects, everyone, client_for):  # noqa: F811
    refused = 0
    for name, (args, _expected) in PAGES.items():
        url = reverse(name, args=[objects[arg] for arg in args])
        for who, user in everyone.items():
            response = client_for(user).get(url)
            if response.status_code in (403, 404):
                refused += 1
                assert_in_words(_message(response), f"{who} {url}")
    assert refused > 30


@pytest.mark.parametrize(
    ("name", "arg", "who"),
    [
        ("trading:order-approve", "order", "trader"),
        ("trading:order-release", "order", "compliance"),
        ("trading:order-cancel", "order", "compliance"),
        ("trading:block-route", "block", "pm"),
        ("runs:approve", "run", "trader"),
        ("runs:cancel", "run", "ops"),
    ],
)
def test_a_refused_action_says_why_in_words(name, arg, who, objects, everyone, client_for):  # noqa: F811
    response = client_for(everyone[who]).post(reverse(name, args=[objects[arg]]))
    assert response.status_code == 403
    text = _message(response)
    assert "Your role does not allow you to" in text
    assert_in_words(text, f"{who} {name}")


def test_a_state_that_forbids_the_step_is_said_in_words_on_the_page(pm, proposed_run, client_for):
    client = client_for(pm)
    client.post(reverse("runs:approve", args=[proposed_run.pk]))
    again = client.post(reverse("runs:approve", args=[proposed_run.pk]), follow=True)
    text = _message(again)
    assert "is approved: it cannot become approved" in text
    assert_in_words(text, "approving an approved run")


def test_a_form_sent_without_its_security_token_says_so_in_words(pm, book):
    client = Client(enforce_csrf_checks=True)
    client.force_login(pm)
    response = client.post(reverse("trading:order-create"), {"quantity": "1"})
    assert response.status_code == 403
    text = _message(response)
    assert "reload the page and send it again" in text
    assert_in_words(text, "a form without its token")


# --- The API ---------------------------------------------------------------------


def test_api_errors_are_in_words(pm, trader, released_block):
    from rest_framework.test import APIClient

    from trading.models import Block

    def client_for(user):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    pm_api, trader_api = client_for(pm), client_for(trader)
    order = released_block.orders.first()
    answers = {
        "403 approve by a trader": trader_api.post(f"/api/v1/orders/{order.pk}/approve/"),
        "403 route by a PM": pm_api.post(f"/api/v1/blocks/{order.block_id}/route/", {}),
        "403 audit by a PM": pm_api.get("/api/v1/audit-events/"),
        "404 no such order": pm_api.get("/api/v1/orders/999999/"),
        "404 no such run": pm_api.post("/api/v1/rebalance-runs/999999/approve/"),
        "404 an id that is no number": pm_api.get("/api/v1/orders/x1/"),
        "409 approve a released order": pm_api.post(f"/api/v1/orders/{order.pk}/approve/"),
        "400 an unknown ticker": pm_api.post(
            "/api/v1/orders/",
            {"portfolio": "ACC1", "security": "NOPE", "side": "buy", "quantity": "1"},
            format="json",
        ),
        "400 another manager's account": pm_api.post(
            "/api/v1/orders/",
            {"portfolio": "ACC9", "security": "AAA", "side": "buy", "quantity": "1"},
            format="json",
        ),
        "400 an unknown broker": trader_api.post(
            f"/api/v1/blocks/{order.block_id}/route/", {"broker": "NOPE"}, format="json"
        ),
        "401 no token": client_for(None).get("/api/v1/orders/"),
    }
    for where, response in answers.items():
        assert response.status_code == int(where[:3]), (where, response.content)
        for text in _strings(response.json()):
            assert_in_words(text, where)
    assert answers["404 no such order"].json()["detail"] == (
        "No order #999999 among those you may see."
    )
    assert answers["400 an unknown ticker"].json()["security"] == ["No security NOPE."]
    assert answers["400 another manager's account"].json()["portfolio"] == [
        "No account ACC9 among yours."
    ]
    assert Block.objects.count() == 1
