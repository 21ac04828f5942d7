"""max_weight: the largest group weight after, at, just under and just over the limit;
active breaches laid on buys, passive ones blocking nothing."""

import pytest

from .helpers import account_result, base_check, buy, order, order_result, run, sell

SOFT_ISSUER = {
    "id": "R1",
    "kind": "max_weight",
    "group_by": "issuer",
    "limit": 0.10,
    "severity": "soft",
}


def test_exactly_at_the_limit_passes():
    # 10 AAA at 100 in a NAV of 10,000: exactly 10%
    _, answer = run(base_check(rules=[SOFT_ISSUER]))
    r = account_result(answer, "ACC1", "R1")
    assert r["value"] == 0.1
    assert r["status"] == "pass"
    assert r["group"] == "Acme"


def test_just_under_passes_and_just_over_fails():
    under = base_check(rules=[SOFT_ISSUER])
    under["accounts"][0]["holdings"] = {"AAA": 9.99}
    under["accounts"][0]["cash"] = {"USD": 9001.0}
    _, answer = run(under)
    assert account_result(answer, "ACC1", "R1")["value"] == pytest.approx(0.0999)
    assert account_result(answer, "ACC1", "R1")["status"] == "pass"
    # a buy of 0.01 share: 1001 / 10000 = 10.01%, an active breach of a soft rule
    _, answer = run(base_check(rules=[SOFT_ISSUER], orders=[buy("O1", "AAA", 0.01)]))
    r = account_result(answer, "ACC1", "R1")
    assert r["value"] == pytest.approx(0.1001)
    assert r["value_before"] == 0.1
    assert (r["status"], r["passive"]) == ("fail", False)
    assert order(answer, "O1")["status"] == "needs_override"
    assert order(answer, "O1")["failed"] == ["R1"]
    assert order_result(answer, "O1", "R1")["value"] == pytest.approx(0.1001)


def test_tolerance_is_relative_1e9():
    # AAA at 100.0000000001: 1000.000000001 / 10000.000000001 is above 10% by about
    # 9e-14, within the tolerance: passes; at 100.00001 it is above by 9e-8: a breach
    # (passive, with no order)
    for extra, status in ((1e-9, "pass"), (1e-4, "warn")):
        data = base_check(rules=[SOFT_ISSUER])
        data["securities"][0]["price"] = 100.0 + extra / 10
        _, answer = run(data)
        assert account_result(answer, "ACC1", "R1")["status"] == status, extra


def test_passive_breach_reported_and_a_reducing_sale_not_blocked():
    data = base_check(rules=[SOFT_ISSUER], orders=[sell("O1", "AAA", 3)])
    data["accounts"][0]["holdings"] = {"AAA": 15}  # 1500 / 10500
    data["accounts"][0]["cash"] = {"USD": 9000.0}
    _, answer = run(data)
    r = account_result(answer, "ACC1", "R1")
    # after: 1200 / 10500
    assert r["value"] == pytest.approx(1200 / 10500)
    assert r["value_before"] == pytest.approx(1500 / 10500)
    assert (r["status"], r["passive"]) == ("warn", True)
    assert order(answer, "O1") | {"results": None} == {
        "id": "O1",
        "account": "ACC1",
        "status": "approved",
        "failed": [],
        "warned": [],
        "results": None,
    }


def test_a_buy_that_makes_a_passive_breach_worse_is_active():
    data = base_check(rules=[SOFT_ISSUER], orders=[buy("O1", "AAA", 1), buy("O2", "BBB", 2)])
    data["accounts"][0]["holdings"] = {"AAA": 15}
    _, answer = run(data)
    r = account_result(answer, "ACC1", "R1")
    assert r["value"] == pytest.approx(1600 / 10500)
    assert (r["status"], r["passive"]) == ("fail", False)
    # laid on the buy of the breaching issuer only: Bolt is at 100 / 10500
    assert order(answer, "O1")["failed"] == ["R1"]
    assert order(answer, "O2")["status"] == "approved"
    assert order_result(answer, "O2", "R1") is None


def test_a_new_breach_in_another_group_is_active_even_if_the_worst_improves():
    # Acme at 15% (a passive breach) is sold down to 12%; Bolt is bought from 0 to 11%
    data = base_check(rules=[SOFT_ISSUER], orders=[sell("O1", "AAA", 3), buy("O2", "BBB", 22)])
    data["accounts"][0]["holdings"] = {"AAA": 15}
    data["accounts"][0]["cash"] = {"USD": 8500.0}
    _, answer = run(data)
    r = account_result(answer, "ACC1", "R1")
    assert (r["value_before"], r["value"], r["group"]) == (0.15, 0.12, "Acme")
    assert (r["status"], r["passive"]) == ("fail", False)
    assert order(answer, "O2")["failed"] == ["R1"]
    assert order_result(answer, "O2", "R1")["group"] == "Bolt"
    assert order_result(answer, "O2", "R1")["value"] == 0.11
    assert order(answer, "O1")["status"] == "approved"


@pytest.mark.parametrize(
    ("group_by", "group", "weight"),
    [
        ("security", "AAA", 0.1),
        ("issuer", "Acme", 0.1),
        ("sector", "Technology", 0.1),
        ("country", "US", 0.1),
        ("asset_class", "equity", 0.1),
        ("currency", "USD", 1.0),  # the USD group counts the USD cash
    ],
)
def test_every_grouping(group_by, group, weight):
    rule = {"id": "R", "kind": "max_weight", "group_by": group_by, "limit": 1.0}
    _, answer = run(base_check(rules=[rule]))
    r = account_result(answer, "ACC1", "R")
    assert (r["group"], r["value"], r["status"]) == (group, weight, "pass")


def test_sector_sums_issuers_and_a_missing_attribute_is_its_own_group():
    rule = {"id": "R", "kind": "max_weight", "group_by": "sector", "limit": 0.15}
    data = base_check(rules=[rule], orders=[buy("O1", "EEE", 5)])
    data["securities"].append({"ticker": "NOS", "price": 10.0})  # no sector
    data["accounts"][0]["holdings"]["NOS"] = 120  # 1,200
    data["accounts"][0]["cash"]["EUR"] = 1000.0  # 1080 USD
    _, answer = run(data)
    r = account_result(answer, "ACC1", "R")
    # NAV 9000 + 1000 + 1200 + 1080 = 12,280; Technology after = AAA 1000 + EEE 5*108 = 1540
    assert r["value"] == pytest.approx(1540 / 12280)
    assert r["group"] == "Technology"
    assert r["status"] == "pass"
    data["rules"][0]["limit"] = 0.09
    _, answer = run(data)
    r = account_result(answer, "ACC1", "R")
    assert (r["status"], r["group"]) == ("fail", "Technology")
    assert order(answer, "O1")["failed"] == ["R"]
    # NOS has no sector: it is measured alone (1200 / 12,280 = 9.77%), a breach of 9%
    # that is passive, and Technology is not lumped with it
    data["rules"][0]["limit"] = 0.12
    _, answer = run(data)
    r = account_result(answer, "ACC1", "R")
    assert r["status"] == "fail"
    assert order_result(answer, "O1", "R") == {
        "rule": "R",
        "kind": "max_weight",
        "status": "fail",
        "value": 1540 / 12280,
        "limit": 0.12,
        "group": "Technology",
    }
    data["rules"][0]["limit"] = 0.09
    data["orders"] = []
    _, answer = run(data)
    r = account_result(answer, "ACC1", "R")
    assert (r["status"], r["passive"], r["group"]) == ("warn", True, "NOS")
    data["securities"][-1]["sector"] = "Technology"
    _, answer = run(data)
    r = account_result(answer, "ACC1", "R")
    assert (r["value"], r["group"]) == (pytest.approx(2200 / 12280), "Technology")


def test_currency_group_counts_cash_and_a_buy_in_that_currency_does_not_move_it():
    rule = {"id": "R", "kind": "max_weight", "group_by": "currency", "limit": 0.05}
    data = base_check(rules=[rule], orders=[buy("O1", "EEE", 5)])
    data["accounts"][0]["cash"]["EUR"] = 1000.0  # 1080 USD in a NAV of 11,080
    _, answer = run(data)
    r = account_result(answer, "ACC1", "R")
    # USD is the largest (10,000 / 11,080); EUR holds 1,080 of cash before, and after the
    # buy 540 of EEE plus 540 of cash: the same 1,080
    assert r["group"] == "USD"
    assert r["value"] == pytest.approx(10000 / 11080)
    assert r["value_before"] == pytest.approx(10000 / 11080)
    assert (r["status"], r["passive"]) == ("warn", True)
    assert order(answer, "O1")["status"] == "approved"
