"""min_cash, no_overdraft and no_short, in one currency and several."""

import pytest

from .helpers import account_result, base_check, buy, has_result, order, order_result, run, sell

MIN_CASH = {"id": "C", "kind": "min_cash", "limit": 0.9, "severity": "hard"}
OVERDRAFT = {"id": "OD", "kind": "no_overdraft", "severity": "hard"}
NO_SHORT = {"id": "NS", "kind": "no_short", "severity": "hard"}


def test_min_cash_at_under_and_over():
    # 9,000 of 10,000 in cash: exactly 90%
    _, answer = run(base_check(rules=[MIN_CASH]))
    assert account_result(answer, "ACC1", "C") | {"version": None} == {
        "rule": "C",
        "version": None,
        "kind": "min_cash",
        "severity": "hard",
        "status": "pass",
        "value": 0.9,
        "value_before": 0.9,
        "limit": 0.9,
        "group": None,
        "passive": False,
        "orders_failed": 0,
    }
    # a buy of 0.01 AAA takes one dollar: 8,999 / 10,000 is short of 90%, laid on every
    # buy of the account and on no sale
    data = base_check(
        rules=[MIN_CASH],
        orders=[buy("O1", "AAA", 0.01), buy("O2", "BBB", 0.02), sell("O3", "AAA", 0.01)],
    )
    _, answer = run(data)
    r = account_result(answer, "ACC1", "C")
    assert r["value"] == pytest.approx(0.9 - 0.0001)
    assert (r["status"], r["orders_failed"]) == ("fail", 2)
    assert [order(answer, o)["status"] for o in ("O1", "O2", "O3")] == [
        "rejected",
        "rejected",
        "approved",
    ]


def test_min_cash_passive_when_a_sale_raises_cash_that_stays_short():
    data = base_check(rules=[MIN_CASH], orders=[sell("O1", "AAA", 5)])
    data["accounts"][0]["holdings"] = {"AAA": 20}
    data["accounts"][0]["cash"] = {"USD": 8000.0}  # 80% cash before, 85% after
    _, answer = run(data)
    r = account_result(answer, "ACC1", "C")
    assert (r["value_before"], r["value"]) == (0.8, 0.85)
    assert (r["status"], r["passive"]) == ("warn", True)
    assert order(answer, "O1")["status"] == "approved"
    # the same account buying instead: active, the buy rejected
    data["orders"] = [buy("O1", "AAA", 1)]
    _, answer = run(data)
    assert account_result(answer, "ACC1", "C")["status"] == "fail"
    assert order(answer, "O1")["failed"] == ["C"]


def test_min_cash_counts_cash_in_every_currency():
    data = base_check(rules=[MIN_CASH])
    data["accounts"][0]["cash"] = {"USD": 8000.0, "EUR": 1000.0}  # 8,000 + 1,080 of 10,080
    _, answer = run(data)
    r = account_result(answer, "ACC1", "C")
    assert r["value"] == pytest.approx(9080 / 10080)
    assert answer["accounts"][0]["nav_before"] == pytest.approx(10080)


def test_no_overdraft_to_zero_passes_below_fails():
    data = base_check(rules=[OVERDRAFT], orders=[buy("O1", "AAA", 90)])
    _, answer = run(data)
    r = account_result(answer, "ACC1", "OD")
    assert (r["value"], r["status"], r["group"]) == (0.0, "pass", "USD")
    data["orders"] = [buy("O1", "AAA", 90.01)]
    _, answer = run(data)
    r = account_result(answer, "ACC1", "OD")
    assert r["value"] == pytest.approx(-1.0)
    assert (r["status"], r["group"]) == ("fail", "USD")
    assert order(answer, "O1")["failed"] == ["OD"]
    # a sale in the same check funds it
    data["orders"].append(sell("O2", "AAA", 1))
    _, answer = run(data)
    assert account_result(answer, "ACC1", "OD")["status"] == "pass"


def test_no_overdraft_in_a_currency_the_account_holds_no_cash_in():
    # plenty of USD, no EUR: a EUR buy leaves EUR negative; the USD buy is not blamed
    data = base_check(rules=[OVERDRAFT], orders=[buy("O1", "EEE", 2), buy("O2", "BBB", 1)])
    _, answer = run(data)
    r = account_result(answer, "ACC1", "OD")
    # -200 EUR at 1.08 = -216 USD, the lowest balance
    assert (r["value"], r["value_before"], r["group"]) == (pytest.approx(-216.0), 0.0, "EUR")
    assert r["status"] == "fail"
    assert order(answer, "O1")["failed"] == ["OD"]
    assert order_result(answer, "O1", "OD")["value"] == pytest.approx(-216.0)
    assert order(answer, "O2")["status"] == "approved"


def test_no_overdraft_passive_when_a_sale_reduces_it():
    data = base_check(rules=[OVERDRAFT], orders=[sell("O1", "EEE", 1), buy("O2", "AAA", 1)])
    data["accounts"][0]["cash"]["EUR"] = -300.0
    data["accounts"][0]["holdings"]["EEE"] = 5
    _, answer = run(data)
    r = account_result(answer, "ACC1", "OD")
    assert r["value_before"] == pytest.approx(-324.0)
    assert r["value"] == pytest.approx(-216.0)
    assert (r["status"], r["passive"]) == ("warn", True)
    assert order(answer, "O2")["status"] == "approved"


def test_no_short_sells_down_to_zero_but_not_below():
    data = base_check(rules=[NO_SHORT], orders=[sell("O1", "AAA", 10)])
    _, answer = run(data)
    assert account_result(answer, "ACC1", "NS")["status"] == "pass"
    assert order_result(answer, "O1", "NS") == {
        "rule": "NS",
        "kind": "no_short",
        "status": "pass",
        "value": 0.0,
        "limit": 0.0,
        "group": "AAA",
    }
    data["orders"] = [sell("O1", "AAA", 10.5)]
    _, answer = run(data)
    r = account_result(answer, "ACC1", "NS")
    assert (r["value"], r["group"], r["status"]) == (-0.5, "AAA", "fail")
    assert order(answer, "O1")["status"] == "rejected"
    data["orders"] = [sell("O1", "BBB", 1, side="sell_short")]
    _, answer = run(data)
    assert order(answer, "O1")["failed"] == ["NS"]


def test_no_short_leaves_a_currency_sold_forward_out():
    # selling EUR/USD forward in a long-only account is a trade in cash, not a short sale
    data = base_check(rules=[NO_SHORT], orders=[sell("O1", "EURUSD", 50_000)])
    data["securities"].append(
        {
            "ticker": "EURUSD",
            "price": 1.09,
            "asset_class": "fx_forward",
            "currency_trade": True,
            "base_currency": "EUR",
        }
    )
    _, answer = run(data)
    assert account_result(answer, "ACC1", "NS")["status"] == "pass"
    assert order(answer, "O1")["status"] == "approved"
    data["securities"][-1]["currency_trade"] = False  # the same sale as a security: short
    _, answer = run(data)
    assert order(answer, "O1")["failed"] == ["NS"]


def test_no_short_counts_the_other_live_orders():
    # the probing of the issue: two sells of the whole holding, each checked alone
    data = base_check(
        rules=[NO_SHORT],
        orders=[sell("O2", "AAA", 10)],
        live_orders=[sell("O1", "AAA", 10)],
    )
    _, answer = run(data)
    assert order(answer, "O2")["status"] == "rejected"
    assert order_result(answer, "O2", "NS")["value"] == -10.0
    assert account_result(answer, "ACC1", "NS")["value_before"] == 0.0


def test_no_short_nets_a_buy_and_a_sale_and_binds_long_only_accounts_only():
    data = base_check(rules=[NO_SHORT], orders=[sell("O1", "AAA", 15), buy("O2", "AAA", 5)])
    _, answer = run(data)
    assert order(answer, "O1")["status"] == "approved"
    data["accounts"][0]["long_only"] = False
    data["orders"] = [sell("O1", "AAA", 50)]
    _, answer = run(data)
    assert order(answer, "O1")["status"] == "approved"
    assert not has_result(answer, "ACC1", "NS")


def test_no_short_a_short_held_before_is_passive_and_selling_more_is_active():
    data = base_check(rules=[NO_SHORT], orders=[buy("O1", "BBB", 4, side="buy_to_cover")])
    data["accounts"][0]["holdings"]["BBB"] = -10
    _, answer = run(data)
    r = account_result(answer, "ACC1", "NS")
    assert (r["value_before"], r["value"], r["status"], r["passive"]) == (-10, -6, "warn", True)
    data["orders"] = [sell("O1", "BBB", 1)]
    _, answer = run(data)
    assert account_result(answer, "ACC1", "NS")["status"] == "fail"
    assert order(answer, "O1")["failed"] == ["NS"]


EURUSD = {
    "ticker": "EURUSD",
    "price": 1.09,
    "currency": "USD",
    "base_currency": "EUR",
    "asset_class": "fx_spot",
    "currency_trade": True,
}


def test_no_overdraft_sees_the_base_leg_of_a_currency_sold():
    # selling 5,000 EUR/USD with no euro in the account leaves EUR -5,000: an overdraft
    data = base_check(rules=[OVERDRAFT], orders=[sell("O1", "EURUSD", 5000)])
    data["securities"].append(dict(EURUSD))
    _, answer = run(data)
    r = account_result(answer, "ACC1", "OD")
    assert r["status"] == "fail"
    assert r["value"] == pytest.approx(-5000 * 1.08)
    assert r["group"] == "EUR"
    assert order(answer, "O1")["failed"] == ["OD"]
    # with the euros in the account the sale passes
    data["accounts"][0]["cash"]["EUR"] = 6000.0
    _, answer = run(data)
    assert account_result(answer, "ACC1", "OD")["status"] == "pass"
    assert order(answer, "O1")["status"] == "approved"


def test_a_currency_bought_is_cash_in_its_base_currency_not_a_security():
    # buying 5,000 EUR/USD: USD 9,000 - 5,450 and EUR 5,000 (5,400 USD): 8,950 of the
    # 10,000 NAV (an order moves no NAV) is still cash, none of it a security
    data = base_check(rules=[MIN_CASH], orders=[buy("O1", "EURUSD", 5000)])
    data["securities"].append(dict(EURUSD))
    _, answer = run(data)
    r = account_result(answer, "ACC1", "C")
    assert r["value"] == pytest.approx((3550 + 5400) / 10_000)
