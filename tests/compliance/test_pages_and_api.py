"""The rule book, restricted lists, pre-trade results and overrides in the pages and the
API: form errors and nothing saved on bad input, who may do what (the permission
matrix), the results on the order page, the override queue."""

from decimal import Decimal

import pytest
from django.urls import reverse

from compliance.models import Override, PretradeResult, Rule
from compliance.services import rules as rule_services
from oms.roles import Role
from tests.clients import api_client, page_client
from trading.models import Order
from trading.services import orders as order_services

pytestmark = pytest.mark.django_db
API = "/api/v1"


GOOD = {
    "name": "Issuer 10%",
    "kind": "max_weight",
    "severity": "soft",
    "limit": "10",
    "group_by": "issuer",
    "scope": "all",
    "when": "both",
}


def test_the_rule_form_saves_a_rule_with_its_limit_as_a_percent(compliance_officer):
    response = page_client(compliance_officer).post(reverse("compliance:rule-create"), GOOD)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = Rule.objects.get()
    assert rule.params == {"group_by": "issuer", "limit": 0.1}
    page = page_client(compliance_officer).get(reverse("compliance:rule-list"))
    assert "Issuer 10%" in page.content.decode()
    # the book shows the limit as it was typed, not as the engine keeps it
    html = page.content.decode()
    assert "<code>group by: issuer</code>" in html and "<code>limit: 10%</code>" in html, html[
        html.find("<code>") - 50 : html.find("<code>") + 200
    ]


def test_the_rule_book_shows_parameters_in_words(compliance_officer):
    from compliance.forms import rule_terms_shown

    assert rule_terms_shown("restricted", {"list": ["Firm"], "sides": ["buy", "sell_short"]}) == [
        ("list", "Firm"),
        ("sides", "buy, sell short"),
    ]
    assert rule_terms_shown("max_order_notional", {"limit": 1000000.0}) == [("limit", "1,000,000")]
    assert rule_terms_shown("min_cash", {"limit": 0.0003}) == [("limit", "0.03%")]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"limit": "-5"}, "limit", "must not be negative"),
        ({"limit": "150"}, "limit", "at most 1 (100%)"),
        ({"group_by": "sectorz"}, "group_by", "Select a valid choice"),
        ({"group_by": ""}, "group_by", "needs &#x27;group_by&#x27;"),
        ({"scope": "accounts"}, "accounts", "Choose at least one account"),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_saved(compliance_officer, change, field, words):
    response = page_client(compliance_officer).post(
        reverse("compliance:rule-create"), GOOD | change
    )
    assert response.status_code == 422
    assert words in response.content.decode()
    assert field in response.context["form"].errors
    assert not Rule.objects.exists()


def test_editing_a_rule_bumps_its_version(compliance_officer):
    rule = rule_services.rule_create(
        actor=compliance_officer,
        name="Cash",
        kind="min_cash",
        params={"limit": 0.02},
        severity="soft",
    )
    client = page_client(compliance_officer)
    form = client.get(reverse("compliance:rule-edit", args=[rule.pk]))
    assert form.context["form"].initial["limit"] == Decimal("2.00")
    response = client.post(
        reverse("compliance:rule-edit", args=[rule.pk]),
        {
            "name": "Cash",
            "kind": "min_cash",
            "severity": "soft",
            "limit": "3",
            "scope": "all",
            "when": "pre",
        },
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.version, rule.params["limit"], rule.when) == (2, 0.03, "pre")


def test_restricted_list_form_names_an_unknown_ticker(compliance_officer, book):
    client = page_client(compliance_officer)
    response = client.post(
        reverse("compliance:restricted-list-create"),
        {"name": "Firm", "level": "firm", "tickers": "AAA\nNOPE"},
    )
    assert response.status_code == 422
    assert "Unknown ticker: NOPE." in response.content.decode()
    response = client.post(
        reverse("compliance:restricted-list-create"),
        {"name": "Firm", "level": "firm", "tickers": "AAA, BBB"},
    )
    assert response.status_code == 302
    assert "AAA BBB" in client.get(reverse("compliance:restricted-list-list")).content.decode()


@pytest.mark.parametrize("who", ["pm", "trader", "ops"])
def test_only_compliance_edits_the_rule_book_in_pages_and_api(personas, who):
    user = personas[who]
    assert page_client(user).get(reverse("compliance:rule-list")).status_code == 200
    assert page_client(user).get(reverse("compliance:rule-create")).status_code == 403
    assert page_client(user).post(reverse("compliance:rule-create"), GOOD).status_code == 403
    response = api_client(user).post(
        f"{API}/rules/", {"name": "R", "kind": "no_short"}, format="json"
    )
    assert response.status_code == 403
    assert not Rule.objects.exists()


def test_the_outsider_sees_no_rule_book(outsider):
    assert page_client(outsider).get(reverse("compliance:rule-list")).status_code == 403
    assert api_client(outsider).get(f"{API}/rules/").status_code == 403


def test_the_api_creates_edits_and_refuses_rules_in_words(compliance_officer, book):
    client = api_client(compliance_officer)
    bad = client.post(
        f"{API}/rules/",
        {"name": "W", "kind": "max_weight", "params": {"group_by": "issuer", "limit": 1.2}},
        format="json",
    )
    assert bad.status_code == 400
    assert "at most 1 (100%)" in bad.json()["limit"][0]
    made = client.post(
        f"{API}/rules/",
        {
            "name": "W",
            "kind": "max_weight",
            "params": {"group_by": "sector", "limit": 0.3},
            "severity": "soft",
            "scope": "accounts",
            "accounts": ["ACC1"],
        },
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["accounts"] == ["ACC1"]
    rule_id = made.json()["id"]
    changed = client.post(
        f"{API}/rules/{rule_id}/change/",
        {"params": {"group_by": "sector", "limit": 0.35}},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["version"] == 2
    assert client.post(f"{API}/rules/{rule_id}/deactivate/").json()["is_active"] is False


@pytest.mark.parametrize(
    ("params", "stored"),
    [
        ({"group_by": "issuer", "limit": "0.1"}, {"group_by": "issuer", "limit": 0.1}),
        ({"group_by": "issuer", "limit": " 0.25 "}, {"group_by": "issuer", "limit": 0.25}),
    ],
)
def test_a_rule_limit_may_be_a_decimal_string_as_every_figure_of_the_api(
    params, stored, compliance_officer, book
):
    """The API takes figures as decimal strings (docs/api.md): a rule's limit too."""
    made = api_client(compliance_officer).post(
        f"{API}/rules/", {"name": "W", "kind": "max_weight", "params": params}, format="json"
    )
    assert made.status_code == 201, made.content
    assert made.json()["params"] == stored


@pytest.mark.parametrize(
    ("limit", "words"),
    [
        ("-0.1", "limit must not be negative (-0.1)"),
        ("ten", "limit must be a number, not 'ten'"),
        ("NaN", "limit must be a number, not 'NaN'"),
        ("1e400", "limit must be a number, not '1e400'"),
    ],
)
def test_a_rule_limit_string_that_is_no_number_is_refused(limit, words, compliance_officer, book):
    bad = api_client(compliance_officer).post(
        f"{API}/rules/",
        {"name": "W", "kind": "max_weight", "params": {"group_by": "issuer", "limit": limit}},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["limit"] == [words]
    assert not Rule.objects.filter(name="W").exists()


def test_the_ticket_shows_the_check_and_the_override_goes_through_the_queue(
    pm, compliance_officer, over_soft_limit
):
    order = over_soft_limit
    pm_client = page_client(pm)
    response = pm_client.post(reverse("trading:order-approve", args=[order.pk]), follow=True)
    assert "Needs an override: Issuer 60%" in response.content.decode()
    order.refresh_from_db()
    assert order.status == Order.Status.NEEDS_OVERRIDE
    checks = pm_client.get(reverse("compliance:order-checks", args=[order.pk])).content.decode()
    assert "Issuer 60%" in checks and "Request an override" in checks
    pm_client.post(
        reverse("compliance:order-override", args=[order.pk]),
        {"justification": "The client asked for it in writing."},
    )
    override = Override.objects.get()
    # the PM cannot decide it
    assert page_client(pm).get(reverse("compliance:override-queue")).status_code == 200
    refused = pm_client.post(
        reverse("compliance:override-decide", args=[override.pk]), {"decision": "approve"}
    )
    assert refused.status_code == 403
    queue = page_client(compliance_officer).get(reverse("compliance:override-queue"))
    assert "The client asked for it in writing." in queue.content.decode()
    page_client(compliance_officer).post(
        reverse("compliance:override-decide", args=[override.pk]),
        {"decision": "approve", "note": "Fine."},
    )
    order.refresh_from_db()
    assert order.status == Order.Status.APPROVED


def test_the_api_shows_results_and_decides_overrides_with_four_eyes(
    pm, compliance_officer, make_user, book, over_soft_limit
):
    order = over_soft_limit
    approved = api_client(pm).post(f"{API}/orders/{order.pk}/approve/")
    assert approved.status_code == 200
    assert approved.json()["status"] == "needs_override"
    assert approved.json()["compliance_note"].startswith("Needs an override: Issuer 60%")
    found = api_client(pm).get(f"{API}/pretrade-results/?order={order.pk}").json()["results"]
    assert [(r["rule"], r["status"], r["rule_version"]) for r in found] == [
        ("Issuer 60%", "fail", 1)
    ]
    asked = api_client(pm).post(
        f"{API}/overrides/",
        {"order": order.pk, "justification": "The client asked for it in writing."},
        format="json",
    )
    assert asked.status_code == 201, asked.content
    override_id = asked.json()["id"]
    assert api_client(pm).post(f"{API}/overrides/{override_id}/approve/").status_code == 403
    both = make_user("both", Role.TRADER)
    both.groups.add(compliance_officer.groups.get())
    order2 = order_services.order_create(
        actor=pm,
        portfolio=book["accounts"][0],
        security=book["securities"]["AAA"],
        side="buy",
        quantity=Decimal(41),
    )
    order_services.orders_approve(actor=pm, order_ids=[order2.pk])
    mine = api_client(both).post(
        f"{API}/overrides/",
        {"order": order2.pk, "justification": "Asked by the same person."},
        format="json",
    )
    refused = api_client(both).post(f"{API}/overrides/{mine.json()['id']}/approve/")
    assert refused.status_code == 403
    assert "another compliance officer" in refused.json()["detail"]
    done = api_client(compliance_officer).post(
        f"{API}/overrides/{override_id}/approve/", {"note": "Fine."}, format="json"
    )
    assert done.status_code == 200 and done.json()["status"] == "approved"
    assert Order.objects.get(pk=order.pk).status == "approved"
    assert PretradeResult.objects.filter(order=order).exists()
