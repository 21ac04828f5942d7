"""The Python API the Django side calls: frames or column mappings in, frames or records
out, rules as data."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from compliance.rules import (
    KINDS,
    Book,
    CheckError,
    RestrictedList,
    Rule,
    RuleError,
    check,
    exposures,
    prepare,
)

AS_OF = dt.datetime(2025, 3, 3, 15, 0, tzinfo=dt.UTC)


def book(**overrides) -> Book:
    parts = {
        "securities": pd.DataFrame(
            {
                "security": [1, 2, 3],  # database keys, not tickers
                "price": [100.0, 50.0, 20.0],
                "currency": ["USD", "USD", "EUR"],
                "issuer": ["Acme", "Bolt", None],
                "sector": ["Tech", "Industry", "Tech"],
            }
        ),
        "accounts": pd.DataFrame({"account": [10, 20], "base_currency": ["USD", "USD"]}),
        "holdings": pd.DataFrame(
            {"account": [10, 10, 20], "security": [1, 3, 2], "quantity": [10.0, 5.0, 40.0]}
        ),
        "cash": pd.DataFrame(
            {
                "account": [10, 20, 20],
                "currency": ["USD", "USD", "EUR"],
                "amount": [1000.0, 500.0, -10.0],
            }
        ),
        "fx": pd.DataFrame({"currency": ["EUR"], "base": ["USD"], "rate": [1.1]}),
        "orders": pd.DataFrame(
            {
                "order": [101, 102, 103],
                "account": [10, 20, 20],
                "security": [2, 1, 3],
                "side": ["buy", "buy", "sell_short"],
                "quantity": [4.0, 2.0, 1.0],
                "limit_price": [np.nan, 101.0, np.nan],
                "created_at": pd.to_datetime(
                    ["2025-03-03T14:59", "2025-03-03T14:50", "2025-03-03T14:58"]
                ),
            }
        ),
        "as_of": AS_OF,
    }
    parts.update(overrides)
    return Book(**parts)


RULES = [
    Rule(7, "max_weight", {"group_by": "sector", "limit": 0.5}, severity="soft", version=3),
    Rule(8, "no_overdraft"),
    Rule(9, "restricted", {"list": "firm", "sides": ["buy", "sell_short"]}, scope={20}),
    Rule(11, "duplicate_order", {"minutes": 5}),
]
LISTS = [RestrictedList("firm", securities={3})]


def test_results_echo_rule_ids_and_versions_and_keep_python_ids():
    result = check(book(), RULES, LISTS)
    ar = result.account_results
    assert ar[["account", "rule", "version"]].values.tolist() == [
        [10, 7, 3],
        [20, 7, 3],
        [10, 8, 1],
        [20, 8, 1],
        [20, 9, 1],
        [10, 11, 1],
        [20, 11, 1],
    ]
    assert isinstance(ar["account"].iloc[0], int)
    orders = result.orders.set_index("order")
    # 103: a short sale of a security on the firm list in account 20
    assert orders.loc[103, "failed"] == (9,)
    assert orders.loc[103, "status"] == "rejected"
    assert orders.loc[101, "status"] == "approved"
    # account 20: 500 USD and -10 EUR (-11 USD) before; after 102 buys 2 x 100 USD and
    # 103 sells 1 x 20 EUR short: 300 USD and +10 EUR (11 USD), the lowest balance
    od = ar[(ar["account"] == 20) & (ar["rule"] == 8)].iloc[0]
    assert (od["value_before"], od["value"]) == (pytest.approx(-11.0), pytest.approx(11.0))
    assert (od["group"], od["status"], od["passive"]) == ("EUR", "pass", False)


def test_records_match_frames_and_none_for_missing():
    result = check(book(), RULES, LISTS)
    records = result.records("account_results")
    assert len(records) == len(result.account_results)
    assert records[0]["value_before"] == result.account_results["value_before"].iloc[0]
    r9 = next(r for r in records if r["rule"] == 9)
    assert r9["value_before"] is None and r9["group"] is None
    assert set(result.records("orders")[0]) == {"order", "account", "status", "failed", "warned"}


def test_mappings_of_columns_give_the_same_answer_as_frames():
    framed = check(book(), RULES, LISTS)

    def columns(frame):
        return {c: frame[c].tolist() for c in frame.columns}

    b = book()
    mapped = Book(
        securities=columns(b.securities),
        accounts=columns(b.accounts),
        holdings=columns(b.holdings),
        cash=columns(b.cash),
        fx={"EUR": 1.1},
        orders=columns(b.orders),
        as_of=AS_OF,
    )
    other = check(mapped, RULES, LISTS)
    pd.testing.assert_frame_equal(framed.account_results, other.account_results)
    pd.testing.assert_frame_equal(framed.order_results, other.order_results)
    pd.testing.assert_frame_equal(framed.orders, other.orders)


def test_times_in_any_unit_and_zone_mean_the_same():
    # naive microseconds (pandas' default), aware nanoseconds, Python datetimes
    variants = [
        pd.to_datetime(["2025-03-03T14:59", "2025-03-03T14:50", "2025-03-03T14:58"]),
        pd.to_datetime(
            ["2025-03-03T15:59+01:00", "2025-03-03T14:50Z", "2025-03-03T14:58Z"], utc=True
        ).as_unit("ns"),
        [
            dt.datetime(2025, 3, 3, 14, 59, tzinfo=dt.UTC),
            dt.datetime(2025, 3, 3, 14, 50),
            "2025-03-03T14:58:00Z",
        ],
    ]
    live = pd.DataFrame(
        {
            "order": [900],
            "account": [10],
            "security": [2],
            "side": ["buy"],
            "quantity": [1.0],
            "created_at": [pd.Timestamp("2025-03-03T14:56Z")],
        }
    )
    values = []
    for created in variants:
        b = book()
        b.orders = b.orders.assign(created_at=created)
        b.live_orders = live
        r = check(b, [Rule("D", "duplicate_order", {"minutes": 5})])
        values.append(r.order_results["value"].tolist())
    # 101 is 3 minutes after the live order 900 (same account, security and side)
    for v in values:
        np.testing.assert_array_equal(v, [3.0, np.nan, np.nan])


def test_a_live_order_also_under_check_is_counted_once():
    b = book(live_orders=book().orders.iloc[[1]])  # order 102 passed as live too
    r = check(b, [Rule("NS", "no_short"), Rule("D", "duplicate_order", {"minutes": 60})])
    assert r.orders.set_index("order").loc[102, "status"] == "approved"


def test_prepare_once_check_with_several_rule_books():
    prepared = prepare(book())
    a = check(prepared, RULES[:2], LISTS)
    b = check(prepared, RULES, LISTS)
    pd.testing.assert_frame_equal(
        a.account_results,
        b.account_results[b.account_results["rule"].isin([7, 8])].reset_index(drop=True),
    )


def test_exposures_are_what_max_weight_measures():
    e = exposures(book(), "sector").set_index(["account", "group"])
    # account 10: 1000 + 10 x 100 + 5 x 20 x 1.1 = 2110; Tech = 1000 + 110 before
    assert e.loc[(10, "Tech"), "weight_before"] == pytest.approx(1110 / 2110)
    assert e.loc[(10, "Industry"), "value_after"] == pytest.approx(200.0)
    with pytest.raises(CheckError, match="group_by must be one of"):
        exposures(book(), "industry")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"holdings": pd.DataFrame({"account": [10], "security": [99], "quantity": [1.0]})},
            "holdings: unknown security 99",
        ),
        (
            {"holdings": pd.DataFrame({"account": [30], "security": [1], "quantity": [1.0]})},
            "holdings: unknown account 30",
        ),
        (
            {
                "orders": pd.DataFrame(
                    {
                        "order": [1],
                        "account": [10],
                        "security": [1],
                        "side": ["short"],
                        "quantity": [1.0],
                    }
                )
            },
            "orders: order 1: side must be buy, sell, sell_short, buy_to_cover, not 'short'",
        ),
        (
            {
                "orders": pd.DataFrame(
                    {
                        "order": [1, 1],
                        "account": [10, 10],
                        "security": [1, 1],
                        "side": ["buy", "buy"],
                        "quantity": [1.0, 1.0],
                    }
                )
            },
            "orders: order 1 is listed twice",
        ),
        ({"accounts": pd.DataFrame({"account": [10, 10]})}, "account: 10 is listed twice"),
        (
            {"cash": pd.DataFrame({"account": [10], "amount": [1.0]})},
            "cash has no column 'currency'",
        ),
    ],
)
def test_malformed_books_raise_check_error(change, message):
    with pytest.raises(CheckError, match=message):
        check(book(**change), RULES, LISTS)


def test_rule_errors_name_the_rule_and_the_field():
    with pytest.raises(RuleError) as err:
        Rule("R", "max_weight", {"group_by": "sector", "limit": 1.01})
    assert (err.value.rule, err.value.field) == ("R", "limit")
    with pytest.raises(RuleError) as err:
        Rule("R", "min_cash", {"limit": float("nan")})
    assert err.value.field == "limit"
    with pytest.raises(RuleError, match="unknown restricted list 'firm'"):
        check(book(), RULES)
    with pytest.raises(RuleError, match="scope must be a collection"):
        Rule("R", "no_short", scope="ACC1")


def test_defaults_of_each_kind():
    assert Rule("W", "wash_sale").params == {"days": 30}
    assert Rule("W", "wash_sale").severity == "warning"
    assert Rule("D", "duplicate_order", {"minutes": 1}).severity == "soft"
    assert Rule("L", "restricted", {"list": "x"}).params == {"list": ("x",), "sides": ("buy",)}
    assert Rule("U", "ucits_5_10_40").limit == 0.40
    assert Rule("F", "diversified_fund").limit == 0.75
    assert set(KINDS) == {
        "restricted",
        "max_weight",
        "min_cash",
        "no_overdraft",
        "no_short",
        "max_order_notional",
        "max_adv_pct",
        "price_collar",
        "ucits_5_10_40",
        "diversified_fund",
        "wash_sale",
        "duplicate_order",
    }


def test_restricted_lists_feed_the_rebalancer():
    from compliance.rules import rebalance_restrictions
    from portfolios.rebalance import Book as RebalanceBook  # the frame it is made for

    securities = {"security": ["AAA", "BBB", "CCC"], "issuer": ["Acme", "Shady Co", "Shady Co"]}
    lists = [RestrictedList("firm", {"AAA"}, {"Shady Co"}), RestrictedList("acct", {"CCC"})]
    rules = [
        Rule("F", "restricted", {"list": "firm"}),
        Rule("A", "restricted", {"list": "acct", "sides": ["buy", "sell"]}, scope={"ACC2"}),
        Rule("S", "restricted", {"list": "acct", "sides": ["sell_short"]}),
        Rule("N", "no_short"),
    ]
    frame = rebalance_restrictions(rules, lists, securities)
    assert frame.values.tolist() == [
        [None, "AAA", "do_not_buy"],
        [None, "BBB", "do_not_buy"],
        [None, "CCC", "do_not_buy"],
        ["ACC2", "CCC", "do_not_trade"],
    ]
    assert "restrictions" in RebalanceBook.__dataclass_fields__
