"""Who may open which page: every page against every persona.

200: the page; 403: the role may not; 404: another manager's account; 302: to the login.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

ALL = ("pm", "other_pm", "trader", "compliance", "ops", "outsider", "anonymous")


def expect(allowed: dict[str, int] | set[str]) -> dict[str, int]:
    """Expected status per persona: 200 for the allowed, 403 for the rest."""
    if isinstance(allowed, set):
        allowed = dict.fromkeys(allowed, 200)
    return {who: allowed.get(who, 403) for who in ALL} | {"anonymous": 302}


PM_ONLY = {"pm", "other_pm"}
VIEWERS = {"pm", "other_pm", "compliance", "ops"}

PAGES = {
    "portfolios:portfolio-list": ((), expect(VIEWERS)),
    "portfolios:portfolio-detail": (
        ("account",),
        expect({"pm": 200, "other_pm": 404, "compliance": 200, "ops": 200}),
    ),
    "portfolios:model-detail": (("model",), expect(VIEWERS)),
    "portfolios:model-list": ((), expect(VIEWERS)),
    "portfolios:model-export": (("model",), expect(VIEWERS)),
    "portfolios:model-new": ((), expect(PM_ONLY | {"ops"})),
    "portfolios:model-edit": (("model",), expect(PM_ONLY | {"ops"})),
    "portfolios:model-assign": (("model",), expect(PM_ONLY | {"ops"})),
    "portfolios:exposure": ((), expect(VIEWERS)),
    "portfolios:lifecycle": ((), expect(VIEWERS)),
    "runs:list": ((), expect(PM_ONLY)),
    "runs:create": ((), expect(PM_ONLY)),
    "runs:detail": (("run",), expect({"pm": 200, "other_pm": 404})),
    "trading:order-list": ((), expect(VIEWERS | {"trader"})),
    "trading:order-create": ((), expect(PM_ONLY)),
    "trading:order-detail": (
        ("order",),
        expect({"pm": 200, "other_pm": 404, "trader": 200, "compliance": 200, "ops": 200}),
    ),
    "trading:blotter": ((), expect({"trader", "compliance", "ops"})),
    "trading:blotter-rows": ((), expect({"trader", "compliance", "ops"})),
    "trading:reconciliation": ((), expect({"trader", "compliance", "ops"})),
    "trading:block-detail": (("block",), expect({"trader", "compliance", "ops"})),
    "trading:block-row": (("block",), expect({"trader", "compliance", "ops"})),
    "compliance:audit-list": ((), expect({"compliance", "ops"})),
    "compliance:audit-verify": ((), expect({"compliance", "ops"})),
    "compliance:audit-export": ((), expect({"compliance", "ops"})),
}


@pytest.fixture
def objects(book, released_block, proposed_run):
    order = released_block.orders.first()
    return {
        "account": book["accounts"][0].pk,
        "model": book["model"].pk,
        "run": proposed_run.pk,
        "order": order.pk,
        "block": released_block.pk,
    }


@pytest.fixture
def everyone(personas, other_pm):
    return personas | {"other_pm": other_pm, "anonymous": None}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_access_matrix(name, objects, everyone, client_for):
    args, expected = PAGES[name]
    url = reverse(name, args=[objects[arg] for arg in args])
    got = {who: client_for(user).get(url).status_code for who, user in everyone.items()}
    assert got == expected


@pytest.mark.django_db
def test_anonymous_is_sent_to_the_login(client_for):
    response = client_for(None).get(reverse("portfolios:portfolio-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "landing"),
    [
        ("pm", "portfolios:portfolio-list"),
        ("trader", "trading:blotter"),
        ("compliance", "compliance:audit-list"),
        ("ops", "compliance:audit-list"),
    ],
)
def test_home_sends_each_role_to_its_first_page(who, landing, personas, client_for):
    response = client_for(personas[who]).get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse(landing)


@pytest.mark.django_db
def test_a_user_without_role_sees_the_no_role_page_and_no_navigation(outsider, client_for):
    response = client_for(outsider).get(reverse("home"))
    assert response.status_code == 403
    assert b"No role yet" in response.content
    assert response.context["nav_items"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "labels"),
    [
        ("pm", ["Accounts", "Models", "Drift", "Exposure", "Rebalances", "Orders", "Rule book"]),
        ("trader", ["Orders", "Blotter", "Brokers", "Reconciliation", "Rule book"]),
        (
            "compliance",
            [
                "Accounts",
                "Drift",
                "Exposure",
                "Orders",
                "Blotter",
                "Brokers",
                "Reconciliation",
                "Rule book",
                "Overrides",
                "Alerts",
                "Audit trail",
            ],
        ),
        (
            "ops",
            [
                "Accounts",
                "Models",
                "Drift",
                "Exposure",
                "Orders",
                "Blotter",
                "Brokers",
                "Reconciliation",
                "Quarantine",
                "Life cycle",
                "Rule book",
                "Audit trail",
            ],
        ),
    ],
)
def test_navigation_follows_the_role(who, labels, personas, client_for):
    response = client_for(personas[who]).get(reverse("trading:order-list"))
    assert [item["label"] for item in response.context["nav_items"]] == labels
    active = [item["label"] for item in response.context["nav_items"] if item["active"]]
    assert active == ["Orders"]


@pytest.mark.django_db
def test_login_page_logs_in_and_logout_logs_out(pm, client_for):
    client = client_for(None)
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "pm", "password": "pw-pm"})
    assert response.status_code == 302
    assert client.get(reverse("portfolios:portfolio-list")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("portfolios:portfolio-list")).status_code == 302


@pytest.mark.django_db
def test_wrong_password_shows_an_error(pm, client_for):
    response = client_for(None).post(reverse("login"), {"username": "pm", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


@pytest.mark.django_db
def test_error_pages_render_without_collected_static_files(pm, client_for):
    # The manifest storage has no manifest before collectstatic: the page still renders.
    response = client_for(pm).get("/no/such/page/")
    assert response.status_code == 404
    assert b"Not found" in response.content
    assert b"/static/css/oms.css" in response.content
