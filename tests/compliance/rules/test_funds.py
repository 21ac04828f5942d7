"""ucits_5_10_40 and diversified_fund on hand-made funds of 10,000 USD."""

import pytest

from .helpers import account_result, order, order_result, run


def fund(weights: dict, *, cash: float, orders=(), extra_securities=(), rules=("U", "D")):
    """A fund whose issuer X<i> is one security priced 1.0, held at ``weights`` x 10,000."""
    securities = [
        {"ticker": t, "price": 1.0, "issuer": f"Issuer {t}", "shares_outstanding": 1e9}
        for t in weights
    ] + list(extra_securities)
    return {
        "currency": "USD",
        "securities": securities,
        "accounts": [
            {
                "id": "F",
                "cash": {"USD": cash},
                "holdings": {t: w * 10_000 for t, w in weights.items()},
            }
        ],
        "rules": [
            r
            for r in (
                {"id": "U", "kind": "ucits_5_10_40"},
                {"id": "D", "kind": "diversified_fund", "severity": "soft"},
            )
            if r["id"] in rules
        ],
        "orders": list(orders),
    }


def buy(oid, ticker, qty):
    return {"id": oid, "account": "F", "ticker": ticker, "side": "buy", "quantity": qty}


def sell(oid, ticker, qty):
    return {"id": oid, "account": "F", "ticker": ticker, "side": "sell", "quantity": qty}


AT_LIMITS = {"A": 0.10, "B": 0.09, "C": 0.08, "D": 0.07, "E": 0.06, "F": 0.05, "G": 0.05}


def test_ucits_exactly_at_10_and_40_passes():
    # above 5%: 10 + 9 + 8 + 7 + 6 = 40%; F and G at exactly 5% are not above it
    _, answer = run(fund(AT_LIMITS, cash=5000))
    r = account_result(answer, "F", "U")
    assert r["value"] == pytest.approx(0.40)
    assert r["max_issuer"] == pytest.approx(0.10)
    assert (r["status"], r["group"], r["limit"]) == ("pass", "Issuer A", 0.4)


def test_ucits_40_percent_just_over_is_active_on_buys_of_issuers_above_5():
    data = fund(
        AT_LIMITS | {"H": 0.0},
        cash=5000,
        orders=[buy("O1", "F", 1), buy("O2", "H", 400)],
        rules=("U",),
    )
    _, answer = run(data)
    r = account_result(answer, "F", "U")
    # F goes to 5.01% and joins the sum: 40.0 + 5.01 = 45.01%
    assert r["value"] == pytest.approx(0.4501)
    assert r["value_before"] == pytest.approx(0.40)
    assert (r["status"], r["passive"]) == ("fail", False)
    assert order(answer, "O1")["failed"] == ["U"]
    # H stays at 4%: its buy moves nothing above 5%
    assert order(answer, "O2")["status"] == "approved"


def test_ucits_an_issuer_over_10_percent():
    weights = {"A": 0.10, "B": 0.06}
    data = fund(weights, cash=8400, orders=[buy("O1", "A", 1), buy("O2", "B", 10)], rules=("U",))
    _, answer = run(data)
    r = account_result(answer, "F", "U")
    assert r["max_issuer"] == pytest.approx(0.1001)
    assert r["max_issuer_before"] == pytest.approx(0.10)
    assert r["value"] == pytest.approx(0.1001 + 0.061)
    assert r["status"] == "fail"
    # only the issuer over 10% is blamed: the 40% sum is not breached
    assert order(answer, "O1")["failed"] == ["U"]
    assert order_result(answer, "O1", "U")["group"] == "Issuer A"
    assert order(answer, "O2")["status"] == "approved"


def test_ucits_passive_when_sales_reduce_it_and_government_left_out():
    gov = {"ticker": "UST", "price": 1.0, "issuer": "US Treasury", "government": True}
    weights = {"A": 0.12, "B": 0.11, "C": 0.10, "D": 0.09, "E": 0.08}  # 50% above 5%
    data = fund(
        weights, cash=1000, orders=[sell("O1", "A", 100)], extra_securities=[gov], rules=("U",)
    )
    data["accounts"][0]["holdings"]["UST"] = 4000  # 40% in government securities
    _, answer = run(data)
    r = account_result(answer, "F", "U")
    assert (r["value_before"], r["value"]) == (pytest.approx(0.50), pytest.approx(0.49))
    assert (r["status"], r["passive"], r["group"]) == ("warn", True, "Issuer A")
    assert order(answer, "O1")["status"] == "approved"


def test_diversified_fund_75_percent():
    # cash 30%, government 20%, a fund 10%, ten issuers of 1.5% and one of 25%:
    # qualifying 30 + 20 + 10 + 15 = 75%, exactly the minimum
    gov = {"ticker": "UST", "price": 1.0, "issuer": "US Treasury", "government": True}
    etf = {"ticker": "FND", "price": 1.0, "issuer": "Fund Co", "asset_class": "fund"}
    weights = {f"S{i}": 0.015 for i in range(10)} | {"BIG": 0.25}
    data = fund(weights, cash=3000, extra_securities=[gov, etf], rules=("D",))
    data["accounts"][0]["holdings"] |= {"UST": 2000, "FND": 1000}
    _, answer = run(data)
    r = account_result(answer, "F", "D")
    assert r["value"] == pytest.approx(0.75)
    assert (r["status"], r["group"], r["limit"]) == ("pass", "Issuer BIG", 0.75)
    # S0 bought from 1.5% to 5.5% with cash no longer counts: 26 - 0.1 + 20.1 + 10 + 13.5
    data["orders"] = [buy("O1", "S0", 400), buy("O2", "UST", 10)]
    _, answer = run(data)
    r = account_result(answer, "F", "D")
    assert r["value"] == pytest.approx(0.695)
    assert r["status"] == "fail"
    assert order(answer, "O1")["status"] == "needs_override"
    assert order(answer, "O1")["failed"] == ["D"]
    assert order(answer, "O2")["status"] == "approved"


def test_diversified_fund_10_percent_of_voting_securities():
    # S0 weighs 1% of the fund but is 11% of its issuer's voting shares: it does not count
    weights = {"S0": 0.01, "BIG": 0.24}
    data = fund(weights, cash=7500)
    data["securities"][0]["shares_outstanding"] = 100 / 0.11
    _, answer = run(data)
    r = account_result(answer, "F", "D")
    assert r["value"] == pytest.approx(0.75)
    assert (r["status"], r["group"]) == ("pass", "Issuer BIG")
    data["accounts"][0]["cash"]["USD"] = 7400
    data["accounts"][0]["holdings"]["BIG"] = 2500  # 74% qualifying of 10,000
    _, answer = run(data)
    r = account_result(answer, "F", "D")
    assert r["value"] == pytest.approx(0.74)
    assert (r["status"], r["passive"]) == ("warn", True)
    data["securities"][0]["shares_outstanding"] = 100 / 0.10  # exactly 10%: qualifies
    _, answer = run(data)
    assert account_result(answer, "F", "D")["value"] == pytest.approx(0.75)
