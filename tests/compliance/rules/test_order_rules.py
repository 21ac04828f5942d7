"""The order-level rules: restricted, max_order_notional, max_adv_pct, price_collar,
wash_sale and duplicate_order."""

import pytest

from compliance.rules import Rule, RuleError

from .helpers import account_result, base_check, buy, order, order_result, run, sell

LISTS = [{"name": "firm", "tickers": ["BBB"], "issuers": ["Euro AG"]}]


def test_restricted_by_ticker_and_by_issuer_on_buys_only_by_default():
    rule = {"id": "RL", "kind": "restricted", "list": "firm"}
    data = base_check(
        rules=[rule],
        restricted_lists=LISTS,
        orders=[
            buy("O1", "BBB", 1),
            buy("O2", "EEE", 1),
            buy("O3", "AAA", 1),
            sell("O4", "AAA", 1),
            sell("O5", "BBB", 1, side="sell_short"),
        ],
    )
    _, answer = run(data)
    assert order_result(answer, "O1", "RL") | {"kind": None} == {
        "rule": "RL",
        "kind": None,
        "status": "fail",
        "value": 1.0,
        "limit": 0.0,
        "group": "BBB",
    }
    assert order_result(answer, "O2", "RL")["group"] == "Euro AG"
    assert [order(answer, o)["status"] for o in ("O1", "O2", "O3", "O4", "O5")] == [
        "rejected",
        "rejected",
        "approved",
        "approved",
        "approved",
    ]
    assert order_result(answer, "O3", "RL")["status"] == "pass"
    assert order_result(answer, "O4", "RL") is None  # a sale is not measured
    r = account_result(answer, "ACC1", "RL")
    assert (r["status"], r["value"], r["orders_failed"]) == ("fail", 1.0, 2)
    rule["sides"] = ["sell_short"]
    data["rules"] = [rule]
    _, answer = run(data)
    assert order(answer, "O5")["failed"] == ["RL"]
    assert order(answer, "O1")["status"] == "approved"


def test_max_order_notional_in_base_currency():
    rule = {"id": "N", "kind": "max_order_notional", "limit": 10_800.0}
    data = base_check(rules=[rule], orders=[buy("O1", "AAA", 108), buy("O2", "EEE", 100)])
    data["accounts"][0]["cash"]["EUR"] = 20_000.0
    _, answer = run(data)
    # 108 x 100 = 10,800 USD; 100 x 100 EUR x 1.08 = 10,800 USD: both exactly at the limit
    assert order_result(answer, "O1", "N")["value"] == 10_800.0
    assert order_result(answer, "O2", "N")["value"] == pytest.approx(10_800.0)
    assert order(answer, "O1")["status"] == order(answer, "O2")["status"] == "approved"
    data["orders"] = [buy("O1", "AAA", 108.01), sell("O2", "EEE", 101)]
    _, answer = run(data)
    assert order(answer, "O1")["failed"] == ["N"]
    assert order(answer, "O2")["failed"] == ["N"]  # sells count too
    r = account_result(answer, "ACC1", "N")
    assert r["value"] == pytest.approx(101 * 108.0)  # the largest order


def test_max_order_notional_uses_the_multiplier():
    rule = {"id": "N", "kind": "max_order_notional", "limit": 10_000.0}
    data = base_check(rules=[rule], orders=[buy("O1", "FUT", 2)])
    data["securities"].append({"ticker": "FUT", "price": 50.0, "multiplier": 100})
    _, answer = run(data)
    assert order_result(answer, "O1", "N")["value"] == 10_000.0
    data["orders"] = [buy("O1", "FUT", 3)]
    _, answer = run(data)
    assert order(answer, "O1")["status"] == "rejected"


def test_max_adv_pct_and_an_unknown_volume():
    rule = {"id": "V", "kind": "max_adv_pct", "limit": 0.1, "severity": "soft"}
    data = base_check(rules=[rule], orders=[buy("O1", "AAA", 100), buy("O2", "EEE", 1)])
    _, answer = run(data)
    assert order_result(answer, "O1", "V")["value"] == 0.1  # 100 of an ADV of 1,000
    assert order(answer, "O1")["status"] == "approved"
    # no ADV for EEE: the order cannot be shown to be small enough
    assert order_result(answer, "O2", "V")["value"] is None
    assert order(answer, "O2")["status"] == "needs_override"
    data["orders"] = [buy("O1", "AAA", 101)]
    _, answer = run(data)
    assert order(answer, "O1")["failed"] == ["V"]


def test_price_collar_on_limit_orders_only():
    rule = {"id": "P", "kind": "price_collar", "limit": 0.05}
    data = base_check(
        rules=[rule],
        orders=[
            buy("O1", "AAA", 1, limit_price=105.0),
            sell("O2", "AAA", 1, limit_price=95.0),
            buy("O3", "AAA", 1),
            buy("O4", "AAA", 1, limit_price=105.01),
        ],
    )
    _, answer = run(data)
    assert order_result(answer, "O1", "P")["value"] == pytest.approx(0.05)
    assert [order(answer, o)["status"] for o in ("O1", "O2", "O3", "O4")] == [
        "approved",
        "approved",
        "approved",
        "rejected",
    ]
    assert order_result(answer, "O3", "P") is None


WASH = {"id": "W", "kind": "wash_sale"}


@pytest.mark.parametrize(
    ("date", "gain", "warned"),
    [
        ("2025-02-21", -120.0, True),  # 10 days before
        ("2025-02-01", -120.0, True),  # exactly 30 days before: inside the window
        ("2025-01-31", -120.0, False),  # 31 days before
        ("2025-02-21", 50.0, False),  # a sale at a gain
    ],
)
def test_wash_sale_window(date, gain, warned):
    data = base_check(rules=[WASH], orders=[buy("O1", "AAA", 1), sell("O2", "AAA", 1)])
    data["accounts"][0]["sales"] = [{"ticker": "AAA", "date": date, "gain": gain}]
    _, answer = run(data)
    o = order(answer, "O1")
    # the default severity of wash_sale is a warning: the buy goes through, warned
    assert o["status"] == "approved"
    assert o["warned"] == (["W"] if warned else [])
    assert order_result(answer, "O2", "W") is None
    if warned:
        days = 30 if date == "2025-02-01" else 10
        assert order_result(answer, "O1", "W")["value"] == days
        assert account_result(answer, "ACC1", "W")["status"] == "warn"


def test_wash_sale_other_security_or_account_and_a_custom_window():
    data = base_check(rules=[{**WASH, "days": 61}], orders=[buy("O1", "AAA", 1)])
    data["accounts"][0]["sales"] = [
        {"ticker": "BBB", "date": "2025-02-21", "gain": -10.0},
        {"ticker": "AAA", "date": "2025-01-01", "gain": -10.0},  # 61 days before
    ]
    _, answer = run(data)
    assert order(answer, "O1")["warned"] == ["W"]
    assert order_result(answer, "O1", "W")["value"] == 61


DUP = {"id": "D", "kind": "duplicate_order", "minutes": 5}


@pytest.mark.parametrize(
    ("created", "side", "flagged"),
    [
        ("2025-03-03T14:57:00Z", "buy", True),  # 3 minutes before
        ("2025-03-03T14:55:00Z", "buy", True),  # exactly 5 minutes
        ("2025-03-03T14:54:59Z", "buy", False),
        ("2025-03-03T14:58:00Z", "sell", False),  # another side
    ],
)
def test_duplicate_order_against_live_orders(created, side, flagged):
    live = {
        "id": "L1",
        "account": "ACC1",
        "ticker": "AAA",
        "side": side,
        "quantity": 3,
        "created_at": created,
    }
    data = base_check(
        rules=[DUP],
        orders=[buy("O1", "AAA", 3, created_at="2025-03-03T15:00:00Z")],
        live_orders=[live],
    )
    _, answer = run(data)
    o = order(answer, "O1")
    assert o["status"] == ("needs_override" if flagged else "approved")  # soft by default
    if flagged:
        assert order_result(answer, "O1", "D")["value"] == pytest.approx(
            3.0 if created.endswith("57:00Z") else 5.0
        )


def test_duplicate_orders_in_the_same_check_flag_each_other():
    data = base_check(
        rules=[DUP], orders=[buy("O1", "AAA", 3), buy("O2", "AAA", 3), buy("O3", "BBB", 3)]
    )
    _, answer = run(data)
    assert [order(answer, o)["failed"] for o in ("O1", "O2", "O3")] == [["D"], ["D"], []]
    assert order_result(answer, "O1", "D")["value"] == 0.0
    assert order_result(answer, "O3", "D")["value"] is None


@pytest.mark.parametrize("severity", ["soft", "hard"])
def test_a_wash_sale_is_a_warning_only(severity):
    # a loss sale before a buy is for the tax report, never a reason to hold the buy
    with pytest.raises(RuleError, match="a wash sale is a warning") as caught:
        Rule("W", "wash_sale", {"days": 30}, severity=severity)
    assert caught.value.field == "severity"
    assert Rule("W", "wash_sale", severity="warning").severity == "warning"
