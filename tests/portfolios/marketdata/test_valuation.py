"""Live valuation above the account (portfolios.valuation): a hand-made book in two
currencies with a stale and a missing price, every total worked by hand
(exposure_book.make_book), and the number of queries pinned whatever the book's size."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portfolios import quotes
from portfolios.models import CashBalance, Portfolio, Position, TaxLot
from portfolios.valuation import book_valuation

from .exposure_book import figures, make_book, money

pytestmark = pytest.mark.django_db


@pytest.fixture
def hand_book(quote_store, pm, other_pm):
    return make_book(pm, other_pm)


def ids(hand_book):
    return [a.pk for a in hand_book["accounts"].values()]


def test_each_account_in_its_base_and_the_firms_currency(hand_book):
    rows = {r["code"]: r for r in book_valuation(ids(hand_book)).totals("account")}
    a1, a2, a3 = rows["A1"], rows["A2"], rows["A3"]
    assert figures(a1) == money(24200, 1600, 25800, 6200, 2200)
    assert figures(a1["base"]) == money(24200, 1600, 25800, 6200, 2200)
    assert (a1["stale"], a1["missing"], a1["incomplete"]) == (0, 0, False)

    assert a2["base_currency"] == "EUR" and a2["currency"] == "USD"
    assert figures(a2["base"]) == money(6375, 2000, 8375, 1125, 541.67)
    assert figures(a2) == money(7650, 2400, 10050, 1350, 650)
    assert (a2["stale"], a2["missing"], a2["incomplete"]) == (1, 0, True)

    # MMM has no price: it adds nothing, and the account says it is incomplete
    assert figures(a3) == money(1100, 500, 1600, 100, 100)
    assert (a3["positions"], a3["stale"], a3["missing"], a3["incomplete"]) == (2, 0, 1, True)


def test_totals_by_model_manager_and_firm(hand_book, pm, other_pm):
    valuation = book_valuation(ids(hand_book))
    (firm,) = valuation.totals("firm")
    assert figures(firm) == money(32950, 4500, 37450, 7650, 2950)
    assert (firm["accounts"], firm["positions"], firm["stale"], firm["missing"]) == (3, 6, 1, 1)
    assert firm["incomplete"] and firm["currency"] == "USD"

    models = {r["label"]: r for r in valuation.totals("model")}
    assert figures(models["Core"]) == money(25300, 2100, 27400, 6300, 2300)
    assert (models["Core"]["accounts"], models["Core"]["missing"]) == (2, 1)
    assert figures(models["Income"]) == money(7650, 2400, 10050, 1350, 650)
    assert models["Income"]["stale"] == 1 and models["Income"]["key"] == hand_book["income"].pk

    managers = {r["key"]: r for r in valuation.totals("manager")}
    assert figures(managers[pm.pk]) == money(31850, 4000, 35850, 7550, 2850)
    assert (managers[pm.pk]["label"], managers[pm.pk]["stale"]) == ("pm", 1)
    assert figures(managers[other_pm.pk]) == money(1100, 500, 1600, 100, 100)
    assert managers[other_pm.pk]["missing"] == 1


def test_exposure_by_dimension_adds_up_to_nav(hand_book):
    valuation = book_valuation(ids(hand_book))

    def by(dimension):
        return {r["key"]: r for r in valuation.exposure(dimension)}

    currency = by("currency")
    assert currency["EUR"]["market_value"] == Decimal("22800.00")  # 19,800 DDD + 3,000 cash
    assert currency["USD"]["market_value"] == Decimal("14650.00")  # AAA, SSS, USD cash
    assert currency["EUR"]["weight"] == Decimal("0.608812")  # 22,800 / 37,450
    assert (currency["USD"]["stale"], currency["USD"]["missing"]) == (1, 1)
    assert not currency["EUR"]["incomplete"] and currency["USD"]["incomplete"]

    asset = by("asset_class")
    assert asset["equity"]["market_value"] == Decimal("32950.00")
    assert asset["equity"]["label"] == "Equity"
    assert (asset["etf"]["market_value"], asset["etf"]["missing"]) == (Decimal("0.00"), 1)
    assert asset["Cash"]["market_value"] == Decimal("4500.00")

    sector = by("sector")
    assert sector["Tech"]["market_value"] == Decimal("13150.00")
    assert sector["Industrials"]["market_value"] == Decimal("19800.00")
    assert sector["Unclassified"]["missing"] == 1
    country = by("country")
    assert (country["US"]["market_value"], country["DE"]["market_value"]) == (
        Decimal("13150.00"),
        Decimal("19800.00"),
    )
    for dimension in ("asset_class", "currency", "sector", "country"):
        rows = valuation.exposure(dimension)
        assert sum(r["market_value"] for r in rows) == Decimal("37450.00")
        assert abs(sum(r["weight"] for r in rows) - 1) < Decimal("0.00001")


def test_an_account_here_is_what_its_page_shows(hand_book):
    rows = {r["code"]: r for r in book_valuation(ids(hand_book)).totals("account")}
    for code, account in hand_book["accounts"].items():
        page = quotes.positions_valued(account)
        assert abs(rows[code]["base"]["market_value"] - page["totals"]["value_base"]) < 0.02
        assert abs(rows[code]["base"]["unrealised_pnl"] - page["totals"]["unrealised"]) < 0.02
        assert abs(rows[code]["base"]["day_pnl"] - page["totals"]["day_pnl"]) < 0.02


def test_another_firm_currency(hand_book, settings):
    settings.OMS_BASE_CURRENCY = "EUR"
    (firm,) = book_valuation(ids(hand_book)).totals("firm")
    assert firm["currency"] == "EUR"
    assert firm["nav"] == Decimal("31208.33")  # 37,450 / 1.2


def test_cash_in_a_currency_without_a_rate_is_counted_not_dropped(hand_book):
    CashBalance.objects.create(portfolio=hand_book["accounts"]["A1"], currency="JPY", amount=5)
    (firm,) = book_valuation(ids(hand_book)).totals("firm")
    assert firm["cash"] == Decimal("4500.00") and firm["cash_missing"] == 1
    assert firm["incomplete"]


def test_an_empty_selection(db):
    valuation = book_valuation([])
    (firm,) = valuation.totals("firm")
    assert figures(firm) == money(0, 0, 0, 0, 0) and firm["accounts"] == 0
    assert valuation.totals("model") == [] and valuation.exposure("sector") == []


def test_the_number_of_queries_does_not_grow_with_the_book(hand_book, pm):
    def count() -> int:
        accounts = list(Portfolio.objects.values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            valuation = book_valuation(accounts)
            valuation.totals("account"), valuation.totals("model"), valuation.exposure("sector")
        return len(queries)

    small = count()
    aaa = hand_book["securities"]["AAA"]
    ddd = hand_book["securities"]["DDD"]
    for n in range(40):
        account = Portfolio.objects.create(code=f"X{n}", name="x", manager=pm)
        for security in (aaa, ddd):
            Position.objects.create(portfolio=account, security=security, quantity=5)
            TaxLot.objects.create(
                portfolio=account, security=security, quantity=5, original_quantity=5,
                unit_cost=1, acquired_on="2026-01-02",
            )  # fmt: skip
        CashBalance.objects.create(portfolio=account, currency="EUR", amount=1)
    assert count() == small == 10  # accounts, positions, open FX forwards' legs, lots,
    # cash, prices, closes, FX (2), realised (the lot closings)


def test_realised_pnl_from_the_lots_sales_closed_is_in_every_level(hand_book):
    """The firm, manager and model totals left realised P&L out. A1 (USD) sold 20 AAA
    from its lot at 80 for 95: 300 USD short term; A2 (EUR) sold 10 DDD (EUR) bought at
    45 for 50, booked long term: 50 EUR, 60 USD at the firm's 1.2. A busted
    sale (a reversing row) nets to nothing."""
    from datetime import date

    from portfolios.models import LotClosing

    a1, a2 = hand_book["accounts"]["A1"], hand_book["accounts"]["A2"]
    aaa, ddd = hand_book["securities"]["AAA"], hand_book["securities"]["DDD"]

    def closing(account, security, quantity, cost, price, term, **extra):
        lot = TaxLot.objects.filter(portfolio=account, security=security).first()
        return LotClosing.objects.create(
            lot=lot, portfolio=account, security=security, quantity=quantity, unit_cost=cost,
            proceeds_per_unit=price, realised_gain=quantity * (price - cost), term=term,
            closed_on=date.today(), **extra,
        )  # fmt: skip

    closing(a1, aaa, 20, 80, 95, "short")
    closing(a2, ddd, 10, 45, 50, "long")
    busted = closing(a1, aaa, 5, 80, 100, "short")
    closing(a1, aaa, -5, 80, 100, "short", reverses=busted)

    valuation = book_valuation(ids(hand_book))
    rows = {r["code"]: r for r in valuation.totals("account")}
    assert rows["A1"]["realised_pnl"] == Decimal("300.00")
    assert rows["A1"]["base"]["realised_pnl"] == Decimal("300.00")
    assert rows["A2"]["base"]["realised_pnl"] == Decimal("50.00")
    assert rows["A2"]["realised_pnl"] == Decimal("60.00")
    assert rows["A3"]["realised_pnl"] == Decimal("0.00")
    (firm,) = valuation.totals("firm")
    assert firm["realised_pnl"] == Decimal("360.00")
    models = {r["label"]: r["realised_pnl"] for r in valuation.totals("model")}
    assert models == {"Core": Decimal("300.00"), "Income": Decimal("60.00")}
