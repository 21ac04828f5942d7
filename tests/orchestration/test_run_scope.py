"""A run over a scope, not only a hand-picked selection: all of a PM's accounts,
those on a model, those out of band (by their stored drift); in the page and the API,
never reaching another manager's accounts."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from portfolios.models import AccountDrift, ModelPortfolio, Portfolio, RebalanceRun
from portfolios.services.drift import drift_refresh
from tests.clients import page_client as page

pytestmark = pytest.mark.django_db


@pytest.fixture
def third(book, other_pm):
    """A third account, another manager's, on the same model."""
    acc1 = book["accounts"][0]
    return Portfolio.objects.create(
        code="ACC3", name="Theirs", manager=other_pm, model=acc1.model, base_currency="USD"
    )


def run_accounts(run) -> list[str]:
    return sorted(run.portfolios.values_list("code", flat=True))


def test_all_my_accounts_in_the_page(pm, book, third):
    answer = page(pm).post(reverse("runs:create"), {"scope": "all"})
    assert answer.status_code == 302, answer.content.decode()[:3000]
    assert run_accounts(RebalanceRun.objects.get()) == ["ACC1", "ACC2"]  # not ACC3


def test_a_model_s_accounts_in_the_page(pm, book, third):
    acc1, acc2 = book["accounts"]
    other = ModelPortfolio.objects.create(name="Other", cash_weight=1)
    Portfolio.objects.filter(pk=acc2.pk).update(model=other)
    answer = page(pm).post(reverse("runs:create"), {"scope": "model", "model": acc1.model_id})
    assert answer.status_code == 302
    assert run_accounts(RebalanceRun.objects.get()) == ["ACC1"]


def test_out_of_band_accounts_by_their_stored_drift(pm, book):
    acc1, acc2 = book["accounts"]
    drift_refresh()
    AccountDrift.objects.filter(portfolio=acc2).update(out_of_band=False)  # in band, fresh
    AccountDrift.objects.filter(portfolio=acc1).update(out_of_band=True)
    answer = page(pm).post(reverse("runs:create"), {"scope": "out_of_band"})
    assert answer.status_code == 302
    assert run_accounts(RebalanceRun.objects.get()) == ["ACC1"]


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"scope": "selected"}, "portfolios", "Choose at least one account."),
        ({"scope": "model"}, "model", "Choose the model whose accounts to rebalance."),
        ({"scope": "everything"}, "scope", "Select a valid choice."),
    ],
)
def test_a_scope_without_what_it_needs_is_a_form_error(pm, book, data, field, words):
    answer = page(pm).post(reverse("runs:create"), data)
    assert answer.status_code == 422
    assert any(words in e for e in answer.context["form"].errors[field])
    assert not RebalanceRun.objects.exists()


def test_a_scope_with_no_account_says_so(pm, book):
    drift_refresh()
    AccountDrift.objects.update(out_of_band=False)
    answer = page(pm).post(reverse("runs:create"), {"scope": "out_of_band"})
    assert answer.status_code == 422
    assert answer.context["form"].errors["scope"] == ["None of your accounts is out of band."]
    assert not RebalanceRun.objects.exists()


def test_scopes_through_the_api(pm, book, third):
    api = APIClient()
    api.force_authenticate(pm)
    url = "/api/v1/rebalance-runs/"
    assert api.post(url, {"scope": "selected"}, format="json").json() == {
        "portfolios": ["Name at least one account."]
    }
    unknown = api.post(url, {"scope": "model", "model": "Nope"}, format="json")
    assert unknown.status_code == 400 and unknown.json() == {"model": ["No model named 'Nope'."]}
    answer = api.post(url, {"scope": "model", "model": book["model"].name}, format="json")
    assert answer.status_code == 201, answer.json()
    assert sorted(answer.json()["portfolios"]) == ["ACC1", "ACC2"]  # not the other PM's ACC3
