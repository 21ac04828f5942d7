"""The model pages: edit targets (form errors, nothing saved), create, copy, CSV import
and export, assign accounts in bulk."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.models import AuditEvent
from portfolios.models import ModelPortfolio, Portfolio

pytestmark = pytest.mark.django_db


def form(targets, cash="5", sleeves=(), name="Core", **extra):
    data = {
        "name": name,
        "description": "",
        "cash_pct": cash,
        "band_absolute_pct": "1",
        "band_relative_pct": "0",
        "target_security": [t for t, _ in targets],
        "target_pct": [w for _, w in targets],
        "sleeve_model": [m for m, _ in sleeves],
        "sleeve_pct": [w for _, w in sleeves],
    }
    return data | extra


def composition(model):
    model.refresh_from_db()
    return model.cash_weight, sorted(model.targets.values_list("security__ticker", "weight"))


def test_the_editor_shows_the_targets_in_percent_with_the_live_total(pm, book, client_for):
    response = client_for(pm).get(reverse("portfolios:model-edit", args=[book["model"].pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="target_pct" value="40"' in html
    assert 'name="cash_pct" value="5"' in html
    assert "data-total" in html
    assert "js/model-edit.js" in html


def test_a_pm_reweights_removes_and_adds_targets(pm, book, client_for):
    model = book["model"]
    data = form([("AAA", "50"), ("eee", "25"), ("", ""), ("CCC", "15")], cash="10")
    response = client_for(pm).post(reverse("portfolios:model-edit", args=[model.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert composition(model) == (
        Decimal("0.1"),
        [("AAA", Decimal("0.5")), ("CCC", Decimal("0.15")), ("EEE", Decimal("0.25"))],
    )
    event = AuditEvent.objects.get(kind="model.changed")
    assert [t["security"] for t in event.before["targets"]] == ["AAA", "BBB", "CCC", "DDD"]
    assert [t["security"] for t in event.after["targets"]] == ["AAA", "EEE", "CCC"]


@pytest.mark.parametrize(
    ("targets", "cash", "expected"),
    [
        (
            [("AAA", "50"), ("BBB", "40")],
            "5",
            "Target weights and cash add up to 95% of the model, not 100%.",
        ),
        ([("AAA", "50"), ("AAA", "45")], "5", "Row 2: AAA is already a target (on row 1)."),
        ([("AAA", "50"), ("NOPE", "45")], "5", "Row 2: no security has the ticker NOPE."),
        (
            [("AAA", "105"), ("BBB", "-10")],
            "5",
            "Row 2: the weight of BBB (-10%) must be positive.",
        ),
        ([("AAA", "95"), ("BBB", "lots")], "5", "Row 2: the weight of BBB (lots) is not a number."),
        ([("AAA", "105")], "-5", "The cash weight (-5%) must be zero or more."),
    ],
)
def test_a_bad_edit_shows_a_form_error_and_saves_nothing(
    pm, book, client_for, targets, cash, expected
):
    model = book["model"]
    before = composition(model)
    response = client_for(pm).post(
        reverse("portfolios:model-edit", args=[model.pk]), form(targets, cash=cash)
    )
    assert response.status_code == 200
    assert expected in response.context["form"].non_field_errors()
    assert expected.encode() in response.content.replace(b"&#x27;", b"'")
    # What the PM typed is shown again, to correct.
    assert f'value="{targets[-1][1]}"'.encode() in response.content
    assert composition(model) == before
    assert not AuditEvent.objects.filter(kind="model.changed").exists()


def test_a_pm_creates_a_model_of_models(pm, book, client_for):
    client = client_for(pm)
    data = form([("EEE", "20")], cash="0", sleeves=[("Core", "80")], name="Core plus")
    response = client.post(reverse("portfolios:model-new"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    model = ModelPortfolio.objects.get(name="Core plus")
    page = client.get(model.get_absolute_url())
    flat = {s.ticker: w for s, w in page.context["flattened"]["targets"]}
    assert flat == {
        "AAA": Decimal("0.32"),
        "BBB": Decimal("0.24"),
        "EEE": Decimal("0.2"),
        "CCC": Decimal("0.12"),
        "DDD": Decimal("0.08"),
    }
    assert page.context["flattened"]["cash"] == Decimal("0.04")
    # Core may not now hold Core plus: that would hold itself.
    cycle = client.post(
        reverse("portfolios:model-edit", args=[book["model"].pk]),
        form([("AAA", "50")], cash="0", sleeves=[("Core plus", "50")]),
    )
    assert cycle.status_code == 200
    assert (
        "Core cannot hold itself through its sleeves: Core → Core plus → Core."
        in cycle.context["form"].non_field_errors()
    )


def test_copy_from_the_model_page(pm, book, client_for):
    client = client_for(pm)
    url = reverse("portfolios:model-copy", args=[book["model"].pk])
    response = client.post(url, {"name": "Core B"})
    copy = ModelPortfolio.objects.get(name="Core B")
    assert response["Location"] == copy.get_absolute_url()
    assert composition(copy) == composition(book["model"])
    again = client.post(url, {"name": "Core B"}, follow=True)
    assert b"Not copied: Model portfolio with this Name already exists." in again.content


def test_csv_import_names_bad_lines_and_export_downloads(pm, book, client_for):
    client = client_for(pm)
    model = book["model"]
    before = composition(model)
    url = reverse("portfolios:model-import", args=[model.pk])
    bad = SimpleUploadedFile("t.csv", b"ticker,weight\nAAA,0.5\nZZZ,0.45\nCASH,0.05\n")
    response = client.post(url, {"file": bad})
    assert response.status_code == 200
    assert (
        "Line 3: no security has the ticker ZZZ."
        in response.context["import_form"].non_field_errors()
    )
    assert composition(model) == before
    good = SimpleUploadedFile("t.csv", b"ticker,weight\nAAA,50%\nBBB,45%\nCASH,5%\n")
    assert client.post(url, {"file": good}).status_code == 302
    export = client.get(reverse("portfolios:model-export", args=[model.pk]))
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    assert export.content == b"ticker,weight\nAAA,0.5\nBBB,0.45\nCASH,0.05\n"


def test_assign_accounts_in_bulk(pm, book, client_for):
    client = client_for(pm)
    other = ModelPortfolio.objects.create(name="Cash only", cash_weight=Decimal(1))
    url = reverse("portfolios:model-assign", args=[other.pk])
    page = client.get(url)
    assert [a.code for a in page.context["accounts"]] == ["ACC1", "ACC2"]
    ids = [str(a.pk) for a in book["accounts"]]
    response = client.post(url, {"portfolios": ids})
    assert response.status_code == 302
    assert set(Portfolio.objects.values_list("model__name", flat=True)) == {"Cash only"}
    none = client.post(url, {})
    assert none.status_code == 200
    assert none.context["error"] == "Choose at least one account."


def test_a_pm_cannot_assign_another_managers_account(pm, other_pm, book, client_for):
    theirs = Portfolio.objects.create(code="THEIRS", name="Theirs", manager=other_pm)
    url = reverse("portfolios:model-assign", args=[book["model"].pk])
    response = client_for(pm).post(url, {"portfolios": [str(theirs.pk)]})
    assert response.status_code == 200
    assert response.context["error"] == "No active account you manage: THEIRS."
    theirs.refresh_from_db()
    assert theirs.model is None


def test_another_pms_model_offers_no_edit_and_refuses_one(pm, other_pm, book, client_for):
    model = book["model"]
    model.owner = pm
    model.save(update_fields=["owner"])
    before = composition(model)
    other = client_for(other_pm)
    detail = other.get(model.get_absolute_url())
    assert detail.status_code == 200
    assert reverse("portfolios:model-edit", args=[model.pk]).encode() not in detail.content
    assert other.get(reverse("portfolios:model-edit", args=[model.pk])).status_code == 403
    edited = other.post(reverse("portfolios:model-edit", args=[model.pk]), form([("AAA", "95")]))
    assert edited.status_code == 403
    csv = SimpleUploadedFile("t.csv", b"ticker,weight\nAAA,95%\nCASH,5%\n")
    imported = other.post(reverse("portfolios:model-import", args=[model.pk]), {"file": csv})
    assert imported.status_code == 403
    assert composition(model) == before
    own = client_for(pm).get(model.get_absolute_url())
    assert reverse("portfolios:model-edit", args=[model.pk]).encode() in own.content


def test_the_admin_no_longer_edits_what_the_page_does(book, superuser_client):
    page = superuser_client.get(f"/admin/portfolios/modelportfolio/{book['model'].pk}/change/")
    assert page.status_code == 200
    assert b'name="targets-0-weight"' not in page.content


def test_the_model_pages_read_in_a_fixed_number_of_queries(
    pm, book, client_for, django_assert_max_num_queries
):
    from portfolios.services.models import model_create

    client = client_for(pm)
    for n in range(8):
        model_create(
            actor=pm,
            name=f"Mix {n}",
            targets=[{"security": "EEE", "weight": Decimal("0.5")}],
            sleeves=[{"model": book["model"], "weight": Decimal("0.5")}],
        )
    mix = ModelPortfolio.objects.get(name="Mix 7")
    with django_assert_max_num_queries(4):
        assert client.get(reverse("portfolios:model-list")).status_code == 200
    # The flattened weights: the model, the sleeve graph, the models it reaches, targets.
    with django_assert_max_num_queries(13):
        assert client.get(mix.get_absolute_url()).status_code == 200
    with django_assert_max_num_queries(8):
        assert client.get(reverse("portfolios:model-edit", args=[mix.pk])).status_code == 200


@pytest.mark.django_db
def test_the_accounts_filters_name_each_field_once(pm, book):
    from django.test import Client

    client = Client()
    client.force_login(pm)
    html = client.get("/portfolios/").content.decode()
    start = html.find('<form method="get" class="filters"')
    form = html[start : html.find("</form>", start)]
    assert start >= 0
    assert form.count('name="out_of_band"') == 1
    assert form.count('name="sort"') == 1
