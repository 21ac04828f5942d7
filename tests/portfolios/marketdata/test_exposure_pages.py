"""The exposure page and its CSV: who sees it and what, the totals of the hand-made
book (exposure_book.make_book), filters, stale markers, and its queries pinned."""

from __future__ import annotations

import csv
import io

import pytest

from portfolios.models import CashBalance, Portfolio, Position

from .exposure_book import make_book

pytestmark = pytest.mark.django_db


@pytest.fixture
def hand_book(quote_store, pm, other_pm):
    return make_book(pm, other_pm)


def rows_of(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize(
    ("persona", "status"),
    [("pm", 200), ("compliance", 200), ("ops", 200), ("trader", 403), ("outsider", 403)],
)
def test_who_may_see_the_exposure_page(client, hand_book, personas, persona, status):
    client.force_login(personas[persona])
    assert client.get("/portfolios/exposure/").status_code == status
    assert client.get("/portfolios/exposure/sector.csv").status_code == status


def test_a_logged_out_visitor_is_sent_to_log_in(client, hand_book):
    response = client.get("/portfolios/exposure/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_firm_sees_every_account_with_stale_and_missing_marked(
    client, hand_book, compliance_officer
):
    client.force_login(compliance_officer)
    html = client.get("/portfolios/exposure/").content.decode()
    assert "Firm: NAV" in html and "37,450" in html  # every account
    assert '<span class="badge badge-stale" data-incomplete>incomplete</span>' in html
    assert "1 position valued at a stale price or FX rate." in html
    assert "1 position with no price or FX rate, not in the figures." in html
    assert 'data-flag="stale"' in html and 'data-flag="missing"' in html
    assert "js/exposure.js" in html and "vendor/plotly.min.js" in html and "cdn" not in html
    for dimension in ("asset_class", "currency", "sector", "country"):
        assert f'data-breakdown="{dimension}"' in html
        assert f'id="chart-{dimension}" class="chart" data-chart="exposure"' in html
    assert "Exposure</a>" in html  # in the navigation


def test_a_pm_sees_only_their_accounts(client, hand_book, pm, other_pm):
    client.force_login(pm)
    html = client.get("/portfolios/exposure/").content.decode()
    assert "Your accounts: NAV" in html and "35,850" in html and "37,450" not in html
    assert "pm2" not in html.split('id="exposure-managers"')[1].split("</table>")[0]
    accounts = rows_of(client.get("/portfolios/exposure/account.csv"))
    assert [r["account"] for r in accounts] == ["A1", "A2"]
    client.force_login(other_pm)
    (firm,) = rows_of(client.get("/portfolios/exposure/firm.csv"))
    assert (firm["nav"], firm["accounts"], firm["missing"], firm["incomplete"]) == (
        "1600.00", "1", "1", "True",
    )  # fmt: skip


def test_filters_by_manager_model_and_currency(client, hand_book, ops, pm):
    client.force_login(ops)
    (firm,) = rows_of(client.get("/portfolios/exposure/firm.csv", {"manager": pm.pk}))
    assert firm["nav"] == "35850.00"
    (firm,) = rows_of(
        client.get("/portfolios/exposure/firm.csv", {"model": hand_book["income"].pk})
    )
    assert (firm["nav"], firm["stale"]) == ("10050.00", "1")
    (firm,) = rows_of(client.get("/portfolios/exposure/firm.csv", {"currency": "USD"}))
    assert firm["nav"] == "27400.00"  # A1 and A3
    bad = client.get("/portfolios/exposure/firm.csv", {"model": "999999"})
    assert bad.status_code == 400 and "model" in bad.content.decode()
    page = client.get("/portfolios/exposure/", {"model": "999999"})
    assert page.status_code == 200 and "Select a valid choice" in page.content.decode()


def test_each_breakdown_and_level_as_csv(client, hand_book, ops):
    client.force_login(ops)
    rows = rows_of(client.get("/portfolios/exposure/currency.csv"))
    assert list(rows[0]) == [
        "currency", "valuation_currency", "market_value", "weight", "positions", "stale",
        "missing", "cash_missing", "incomplete",
    ]  # fmt: skip
    currency = {r["currency"]: r for r in rows}
    assert (currency["EUR"]["market_value"], currency["EUR"]["weight"]) == ("22800.00", "0.608812")
    assert currency["USD"]["valuation_currency"] == "USD" and currency["USD"]["missing"] == "1"
    sector = {r["sector"]: r for r in rows_of(client.get("/portfolios/exposure/sector.csv"))}
    assert sector["Tech"]["market_value"] == "13150.00" and sector["Tech"]["stale"] == "1"
    assert sector["Cash"]["market_value"] == "4500.00"
    assert sector["Unclassified"]["missing"] == "1"
    asset = {
        r["asset_class"]: r for r in rows_of(client.get("/portfolios/exposure/asset_class.csv"))
    }
    assert asset["Equity"]["weight"] == "0.879840"  # 32,950 / 37,450
    models = {r["model"]: r for r in rows_of(client.get("/portfolios/exposure/model.csv"))}
    assert (models["Core"]["nav"], models["Core"]["accounts"]) == ("27400.00", "2")
    accounts = {r["account"]: r for r in rows_of(client.get("/portfolios/exposure/account.csv"))}
    assert (accounts["A2"]["nav"], accounts["A2"]["nav_base"]) == ("10050.00", "8375.00")
    assert accounts["A2"]["base_currency"] == "EUR"
    assert client.get("/portfolios/exposure/nothing.csv").status_code == 404


def test_a_label_a_spreadsheet_would_run_goes_out_as_text(client, hand_book, ops):
    security = hand_book["securities"]["AAA"]
    security.sector = "=HYPERLINK(1)"
    security.save(update_fields=["sector"])
    client.force_login(ops)
    sectors = [r["sector"] for r in rows_of(client.get("/portfolios/exposure/sector.csv"))]
    assert "'=HYPERLINK(1)" in sectors and "=HYPERLINK(1)" not in sectors


def test_the_results_alone_for_the_pages_refresh(client, hand_book, ops):
    client.force_login(ops)
    partial = client.get(
        "/portfolios/exposure/", headers={"HX-Request": "true", "HX-Target": "exposure-results"}
    ).content.decode()
    assert "<html" not in partial and 'id="exposure-valued"' in partial


def test_the_page_costs_the_same_queries_for_a_larger_book(
    client, hand_book, ops, django_assert_num_queries
):
    client.force_login(ops)
    # the valuation with its realised P&L and its open forwards (one query, not per row)
    with django_assert_num_queries(16):
        client.get("/portfolios/exposure/")
    aaa = hand_book["securities"]["AAA"]
    for n in range(30):
        account = Portfolio.objects.create(
            code=f"X{n}", name="x", manager=ops, model=hand_book["core"]
        )
        Position.objects.create(portfolio=account, security=aaa, quantity=3)
        CashBalance.objects.create(portfolio=account, currency="EUR", amount=1)
    with django_assert_num_queries(16):
        client.get("/portfolios/exposure/")
