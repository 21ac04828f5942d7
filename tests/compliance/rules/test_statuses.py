"""An order's status is the worst of what it failed; scope; accounts that cannot be valued;
several currencies and base currencies."""

import pytest

from compliance.rules import Book, Rule, check

from .helpers import account_result, base_check, buy, has_result, order, run, sell

NOTIONAL = {"id": "HARD", "kind": "max_order_notional", "limit": 150.0, "severity": "hard"}
ADV = {"id": "SOFT", "kind": "max_adv_pct", "limit": 0.001, "severity": "soft"}
COLLAR = {"id": "WARN", "kind": "price_collar", "limit": 0.01, "severity": "warning"}


@pytest.mark.parametrize(
    ("qty", "limit_price", "status", "failed", "warned"),
    [
        (1, None, "approved", [], []),  # 100 notional, 0.1% of ADV, a market order
        (1, 110.0, "approved", [], ["WARN"]),  # a warning lets it through, recorded
        (1.5, 110.0, "needs_override", ["SOFT"], ["WARN"]),  # 0.15% of ADV
        (2, 110.0, "rejected", ["HARD", "SOFT"], ["WARN"]),  # 200 notional: hard wins
        (2, None, "rejected", ["HARD", "SOFT"], []),
    ],
)
def test_worst_of_what_it_failed(qty, limit_price, status, failed, warned):
    data = base_check(
        rules=[NOTIONAL, ADV, COLLAR], orders=[buy("O1", "AAA", qty, limit_price=limit_price)]
    )
    _, answer = run(data)
    o = order(answer, "O1")
    assert (o["status"], o["failed"], o["warned"]) == (status, failed, warned)


def test_a_passive_breach_blocks_nothing_and_is_not_on_the_order():
    rule = {"id": "R", "kind": "max_weight", "group_by": "security", "limit": 0.05}
    _, answer = run(base_check(rules=[rule], orders=[sell("O1", "AAA", 1)]))
    assert account_result(answer, "ACC1", "R")["status"] == "warn"
    assert order(answer, "O1") == {
        "id": "O1",
        "account": "ACC1",
        "status": "approved",
        "failed": [],
        "warned": [],
        "results": [],
    }


def test_every_account_in_scope_gets_a_result_with_or_without_orders():
    data = base_check(
        rules=[
            {"id": "ALL", "kind": "min_cash", "limit": 0.5},
            {"id": "ONE", "kind": "min_cash", "limit": 0.5, "scope": {"accounts": ["ACC2"]}},
        ],
        orders=[buy("O1", "AAA", 1)],
    )
    data["accounts"].append({"id": "ACC2", "cash": {"USD": 100.0}, "holdings": {"BBB": 100}})
    _, answer = run(data)
    assert has_result(answer, "ACC1", "ALL") and not has_result(answer, "ACC1", "ONE")
    r = account_result(answer, "ACC2", "ONE")
    # 100 / 5,100 in cash: a passive breach of an account with no order
    assert (r["value"], r["status"], r["passive"]) == (pytest.approx(100 / 5100), "warn", True)


def test_an_account_that_cannot_be_valued_is_skipped_and_its_orders_unchecked():
    book = Book(
        securities={
            "security": ["AAA", "JPY1"],
            "price": [100.0, 2000.0],
            "currency": ["USD", "JPY"],
        },
        accounts={"account": ["OK", "NOFX"]},
        holdings={"account": ["OK", "NOFX"], "security": ["AAA", "JPY1"], "quantity": [1.0, 1.0]},
        orders={
            "order": ["O1", "O2"],
            "account": ["OK", "NOFX"],
            "security": ["AAA", "AAA"],
            "side": ["buy", "buy"],
            "quantity": [1.0, 1.0],
        },
    )
    result = check(book, [Rule("R", "no_overdraft")])
    assert result.skipped.to_dict("records") == [
        {"account": "NOFX", "reason": "no FX rate for JPY into USD"}
    ]
    assert result.orders["status"].tolist() == ["rejected", "unchecked"]
    assert result.account_results["account"].tolist() == ["OK"]


def test_an_account_in_another_base_currency_with_cross_rates():
    # EUR account; rates given into USD only: USD -> EUR by the inverse, GBP -> EUR across
    data = base_check(rules=[{"id": "C", "kind": "min_cash", "limit": 0.0}])
    data["fx"] = {"EUR": 1.25, "GBP": 1.5}
    data["securities"].append({"ticker": "GGG", "price": 10.0, "currency": "GBP"})
    data["accounts"] = [
        {
            "id": "E",
            "currency": "EUR",
            "cash": {"EUR": 100.0, "USD": 125.0, "GBP": 50.0},
            "holdings": {"GGG": 5, "AAA": 1},
        }
    ]
    _, answer = run(data)
    nav = answer["accounts"][0]["nav_before"]
    # 100 + 125 / 1.25 + 50 x 1.2 + 5 x 10 x 1.2 + 100 / 1.25 = 100 + 100 + 60 + 60 + 80
    assert nav == pytest.approx(400.0)
    assert account_result(answer, "E", "C")["value"] == pytest.approx(260 / 400)
