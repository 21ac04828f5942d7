"""The models API: targets and sleeves as JSON and CSV, copy, assign; 4xx in words."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from portfolios.models import ModelPortfolio, Portfolio

from .utils import API

pytestmark = pytest.mark.django_db


def url(model, tail=""):
    return f"{API}/models/{model.pk}/{tail}"


def composition(model):
    model.refresh_from_db()
    return model.cash_weight, sorted(model.targets.values_list("security__ticker", "weight"))


def test_a_pm_replaces_the_targets_with_a_sleeve(pm, book, client_for):
    client = client_for(pm)
    bonds = client.post(
        f"{API}/models/",
        {"name": "Bonds", "cash_weight": "0", "targets": [{"security": "CCC", "weight": "1"}]},
        format="json",
    )
    assert bonds.status_code == 201, bonds.content
    body = {
        "cash_weight": "0.05",
        "band_relative": "0.2",
        "targets": [{"security": "AAA", "weight": "0.55"}],
        "sleeves": [{"model": "Bonds", "weight": "0.4"}],
    }
    response = client.put(url(book["model"], "targets/"), body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["targets"] == [{"security": "AAA", "weight": "0.55000000"}]
    assert data["sleeves"] == [
        {"model": "Bonds", "model_id": bonds.json()["id"], "weight": "0.40000000"}
    ]
    assert data["band_relative"] == "0.20000000"
    event = AuditEvent.objects.get(kind="model.changed")
    assert len(event.before["targets"]) == 4
    assert event.after["sleeves"] == [{"model": "Bonds", "weight": "0.40000000"}]
    detail = client.get(url(book["model"])).json()
    assert detail["sleeves"][0]["model"] == "Bonds"


@pytest.mark.parametrize(
    ("targets", "cash", "field", "expected"),
    [
        (
            [{"security": "AAA", "weight": "0.5"}],
            "0.05",
            "targets",
            "Target weights and cash add up to 55% of the model, not 100%.",
        ),
        (
            [{"security": "AAA", "weight": "0.5"}, {"security": "AAA", "weight": "0.45"}],
            "0.05",
            "targets",
            "Row 2: AAA is already a target (on row 1).",
        ),
        (
            [{"security": "AAA", "weight": "1.1"}, {"security": "BBB", "weight": "-0.15"}],
            "0.05",
            "targets",
            "Row 2: the weight of BBB (-15%) must be positive.",
        ),
    ],
)
def test_bad_targets_are_a_400_in_words_and_change_nothing(
    pm, book, client_for, targets, cash, field, expected
):
    before = composition(book["model"])
    response = client_for(pm).put(
        url(book["model"], "targets/"), {"cash_weight": cash, "targets": targets}, format="json"
    )
    assert response.status_code == 400, response.content
    assert expected in response.json()[field]
    assert composition(book["model"]) == before
    assert not AuditEvent.objects.filter(kind="model.changed").exists()


def test_an_unknown_security_or_model_is_named(pm, book, client_for):
    response = client_for(pm).put(
        url(book["model"], "targets/"),
        {
            "cash_weight": "0",
            "targets": [{"security": "ZZZ", "weight": "1"}],
            "sleeves": [{"model": "Nowhere", "weight": "0"}],
        },
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body == {
        "targets": {"0": {"security": ["No security ZZZ."]}},
        "sleeves": {"0": {"model": ["No model named Nowhere."]}},
    }


def test_a_cycle_of_sleeves_is_a_400(pm, book, client_for):
    client = client_for(pm)
    outer = client.post(
        f"{API}/models/",
        {
            "name": "Outer",
            "cash_weight": "0",
            "targets": [],
            "sleeves": [{"model": "Core", "weight": "1"}],
        },
        format="json",
    )
    assert outer.status_code == 201, outer.content
    response = client.put(
        url(book["model"], "targets/"),
        {"cash_weight": "0", "targets": [], "sleeves": [{"model": "Outer", "weight": "1"}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "sleeves": ["Core cannot hold itself through its sleeves: Core → Outer → Core."]
    }


def test_the_csv_goes_out_and_comes_back(pm, book, client_for):
    client = client_for(pm)
    exported = client.get(url(book["model"], "csv/"))
    assert exported.status_code == 200
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    assert exported.content.decode() == (
        "ticker,weight\nAAA,0.4\nBBB,0.3\nCCC,0.15\nDDD,0.1\nCASH,0.05\n"
    )
    text = "ticker,weight\nAAA,45%\nBBB,0.5\nCASH,0.05\n"
    imported = client.put(url(book["model"], "csv/"), text, content_type="text/csv")
    assert imported.status_code == 200, imported.content
    assert [t["security"] for t in imported.json()["targets"]] == ["BBB", "AAA"]
    again = client.post(
        url(book["model"], "csv/"),
        exported.content,
        content_type="text/csv",
        HTTP_IDEMPOTENCY_KEY="csv-1",
    )
    assert again.status_code == 200
    assert composition(book["model"])[1][0] == ("AAA", Decimal("0.4"))


@pytest.mark.parametrize("raw", ["1e400", "250%", "1.5"])
def test_a_csv_weight_beyond_the_whole_model_is_named_on_its_line(raw, pm, book, client_for):
    """Probing: ``AAA,1e400`` answered with the sum written out in 400 digits."""
    before = composition(book["model"])
    text = f"ticker,weight\nAAA,{raw}\nCASH,0.05\n"
    response = client_for(pm).put(url(book["model"], "csv/"), text, content_type="text/csv")
    assert response.status_code == 400
    assert response.json() == {
        "csv": [f"Line 2: the weight {raw!r} is more than the whole model (100%)."]
    }
    assert composition(book["model"]) == before


def test_a_csv_with_bad_rows_is_a_400_naming_each_line(pm, book, client_for):
    before = composition(book["model"])
    text = "ticker,weight\nAAA,0.5\nZZZ,0.2\nBBB,lots\n"
    response = client_for(pm).put(url(book["model"], "csv/"), text, content_type="text/csv")
    assert response.status_code == 400
    assert response.json() == {"csv": ["Line 4: the weight 'lots' is not a number."]}
    text = "ticker,weight\nAAA,0.5\nZZZ,0.2\nBBB,0.3\n"
    response = client_for(pm).put(url(book["model"], "csv/"), text, content_type="text/csv")
    assert response.json() == {"csv": ["Line 3: no security has the ticker ZZZ."]}
    assert composition(book["model"]) == before


def test_a_csv_import_in_json_is_a_415(pm, book, client_for):
    response = client_for(pm).put(url(book["model"], "csv/"), {"a": 1}, format="json")
    assert response.status_code == 415


def test_copy_and_assign(pm, book, client_for):
    client = client_for(pm)
    copy = client.post(url(book["model"], "copy/"), {"name": "Core 2"}, format="json")
    assert copy.status_code == 201, copy.content
    assert len(copy.json()["targets"]) == 4
    taken = client.post(url(book["model"], "copy/"), {"name": "Core 2"}, format="json")
    assert taken.status_code == 400
    assert taken.json() == {"name": ["Model portfolio with this Name already exists."]}
    new = ModelPortfolio.objects.get(name="Core 2")
    assigned = client.post(url(new, "assign/"), {"portfolios": ["ACC1", "ACC2"]}, format="json")
    assert assigned.status_code == 200, assigned.content
    assert assigned.json() == {"model": "Core 2", "portfolios": ["ACC1", "ACC2"]}
    assert set(Portfolio.objects.values_list("model__name", flat=True)) == {"Core 2"}
    unknown = client.post(url(new, "assign/"), {"portfolios": ["NOPE"]}, format="json")
    assert unknown.status_code == 400
    assert unknown.json() == {"portfolios": {"0": ["No account NOPE."]}}


def test_a_pm_cannot_assign_another_pms_account(pm, other_pm, book, client_for):
    Portfolio.objects.create(code="THEIRS", name="Theirs", manager=other_pm)
    response = client_for(pm).post(
        url(book["model"], "assign/"), {"portfolios": ["ACC1", "THEIRS"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"portfolios": ["No active account you manage: THEIRS."]}
    assert not AuditEvent.objects.filter(kind="portfolio.model_assigned").exists()


@pytest.mark.parametrize("role", ["trader", "compliance"])
def test_only_model_managers_change_models(role, personas, book, client_for):
    client = client_for(personas[role])
    model = book["model"]
    body = {"cash_weight": "1", "targets": []}
    assert client.put(url(model, "targets/"), body, format="json").status_code == 403
    assert (
        client.put(
            url(model, "csv/"), "ticker,weight\nCASH,1\n", content_type="text/csv"
        ).status_code
        == 403
    )
    assert client.get(url(model, "csv/")).status_code == 200  # reading is reference data


def test_a_model_with_an_owner_is_changed_only_by_its_owner_or_operations(
    pm, other_pm, ops, book, client_for
):
    """A PM's own model drives their accounts: another PM may read, copy and follow it,
    but not change its targets (JSON or CSV); operations may. A house model (no owner)
    stays open to every model manager."""
    created = client_for(pm).post(
        f"{API}/models/",
        {"name": "Mine", "cash_weight": "0", "targets": [{"security": "AAA", "weight": "1"}]},
        format="json",
    )
    assert created.status_code == 201, created.content
    mine = ModelPortfolio.objects.get(name="Mine")
    before = composition(mine)
    other = client_for(other_pm)
    body = {"cash_weight": "0.5", "targets": [{"security": "BBB", "weight": "0.5"}]}
    refused = other.put(url(mine, "targets/"), body, format="json")
    assert refused.status_code == 403, refused.content
    assert refused.json() == {
        "detail": f"Model Mine is {pm.username}'s: only its owner or operations may change it."
    }
    csv = other.put(
        url(mine, "csv/"), "ticker,weight\nCASH,0.5\nBBB,0.5\n", content_type="text/csv"
    )
    assert csv.status_code == 403, csv.content
    assert composition(mine) == before
    assert not AuditEvent.objects.filter(kind="model.changed").exists()
    assert other.post(url(mine, "copy/"), {"name": "Theirs"}, format="json").status_code == 201
    assert client_for(ops).put(url(mine, "targets/"), body, format="json").status_code == 200
    house = book["model"]
    assert house.owner_id is None
    assert other.put(url(house, "targets/"), body, format="json").status_code == 200
