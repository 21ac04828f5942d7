"""Hypothesis properties over random books: every rule holds for every trade."""

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portfolios.rebalance import Book, Options, compute_drift, rebalance
from portfolios.rebalance.checks import check_trades

AS_OF = dt.date(2026, 11, 24)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def books(draw, *, tax=False, at_target=False):
    n_sec = draw(st.integers(2, 6))
    secs = []
    for i in range(n_sec):
        kind = draw(st.sampled_from(["lot1", "lot1", "lot10", "lot100", "frac"]))
        secs.append(
            {
                "security": f"S{i}",
                "price": draw(st.sampled_from([0.5, 3.0, 12.5, 41.5, 99.99, 250.0, 730.0])),
                "lot": {"lot1": 1.0, "lot10": 10.0, "lot100": 100.0, "frac": 1.0}[kind],
                "fractional": kind == "frac",
                "increment": 0.001,
                "min_qty": draw(st.sampled_from([0.0, 0.0, 0.0, 5.0])),
            }
        )
    n_models = draw(st.integers(1, 2))
    model_rows, cash_rows = [], []
    for m in range(n_models):
        chosen = draw(st.lists(st.integers(0, n_sec - 1), min_size=1, max_size=n_sec, unique=True))
        raw = np.array(
            draw(st.lists(st.integers(1, 20), min_size=len(chosen), max_size=len(chosen)))
        )
        cash = draw(st.sampled_from([0.0, 0.0, 0.02, 0.1]))
        w = raw / raw.sum() * (1 - cash)
        for s, wt in zip(chosen, w, strict=True):
            model_rows.append({"model": f"M{m}", "security": f"S{s}", "weight": float(wt)})
        cash_rows.append({"model": f"M{m}", "cash": cash})
    n_acc = draw(st.integers(1, 4))
    accts, hold, restr, lots, sales = [], [], [], [], []
    for a in range(n_acc):
        acc = f"A{a}"
        accts.append(
            {
                "account": acc,
                "model": f"M{draw(st.integers(0, n_models - 1))}",
                "cash": float(draw(st.sampled_from([0.0, 150.0, 2500.0, 20_000.0, 80_000.0]))),
                "cash_floor": float(draw(st.sampled_from([0.0, 0.0, 500.0, 3000.0]))),
                "cash_need": float(draw(st.sampled_from([0.0, 0.0, 0.0, 1000.0, -1000.0]))),
                "min_trade_value": float(draw(st.sampled_from([0.0, 0.0, 100.0, 1500.0]))),
                "min_trade_pct": float(draw(st.sampled_from([0.0, 0.0, 0.01]))),
                "gains_cap": draw(st.sampled_from([np.nan, np.nan, 0.0, 300.0])) if tax else np.nan,
            }
        )
        for i, sec in enumerate(secs):
            if draw(st.integers(0, 2)) == 0:
                continue
            if sec["fractional"]:
                qty = round(draw(st.floats(0.0, 900.0)), 3)
            else:
                qty = sec["lot"] * draw(st.integers(0, 30))
                if draw(st.integers(0, 5)) == 0:
                    qty += draw(st.integers(1, 9))  # an odd lot
            if qty <= 0:
                continue
            hold.append({"account": acc, "security": f"S{i}", "quantity": qty})
            if tax:
                first = round(qty / 2, 3) if sec["fractional"] else float(int(qty // 2))
                for part, q in (("a", first), ("b", qty - first)):
                    if q <= 0:
                        continue
                    unit = sec["price"] * draw(st.sampled_from([0.5, 0.9, 1.0, 1.2, 1.6]))
                    days = draw(st.sampled_from([5, 20, 200, 900]))
                    lots.append(
                        {
                            "account": acc,
                            "security": f"S{i}",
                            "lot": f"{acc}-{i}-{part}",
                            "quantity": q,
                            "cost": q * unit,
                            "acquired": AS_OF - dt.timedelta(days=days),
                        }
                    )
            if tax and draw(st.integers(0, 4)) == 0:
                sales.append(
                    {
                        "account": acc,
                        "security": f"S{draw(st.integers(0, n_sec - 1))}",
                        "date": AS_OF - dt.timedelta(days=draw(st.sampled_from([3, 40]))),
                        "gain": -50.0,
                    }
                )
        for _ in range(draw(st.integers(0, 2))):
            restr.append(
                {
                    "account": draw(st.sampled_from([acc, None])),
                    "security": f"S{draw(st.integers(0, n_sec - 1))}",
                    "restriction": draw(
                        st.sampled_from(["do_not_buy", "do_not_sell", "do_not_trade"])
                    ),
                }
            )
    book = Book(
        securities=pd.DataFrame(secs),
        accounts=pd.DataFrame(accts),
        holdings=pd.DataFrame(hold, columns=["account", "security", "quantity"]),
        models=pd.DataFrame(model_rows),
        model_cash=pd.DataFrame(cash_rows),
        restrictions=pd.DataFrame(restr, columns=["account", "security", "restriction"]),
        lots=pd.DataFrame(lots) if lots else None,
        sales=pd.DataFrame(sales) if sales else None,
        as_of=AS_OF,
    )
    if at_target:
        book.accounts["cash_need"] = 0.0
        book.accounts["cash_floor"] = 0.0
        book = _model_from_holdings(book)
    return book


@st.composite
def options(draw, tax=False):
    return Options(
        trade_to=draw(st.sampled_from(["target", "target", "band_edge"])),
        band_abs=draw(st.sampled_from([None, None, 0.02, 0.1])),
        band_rel=draw(st.sampled_from([None, None, 0.25])),
        lot_selection=draw(st.sampled_from(["fifo", "hifo", "min_tax"])) if tax else "fifo",
    )


def _cash_after_need(book):
    acc = book.accounts.set_index("account")
    return acc["cash"] - acc["cash_need"], acc["cash_floor"]


def assert_rules(book, opts):
    res = rebalance(book, opts)
    bad = check_trades(book, res, opts)
    assert bad.empty, bad.to_string()
    cash, floor = _cash_after_need(book)
    feasible = cash >= floor - 1e-9  # trading nothing breaks no rule
    acc = res.accounts.set_index("account")
    ok = feasible.reindex(acc.index).to_numpy()
    # never more residual drift than trading nothing
    assert (acc["drift_after"] <= acc["drift_before"] + 1e-9)[ok].all()
    # buys never exceed the cash plus the sells, less the floor and the cash need
    tr = res.trades
    signed = tr["value"].where(tr["side"] == "buy", -tr["value"])
    net = signed.groupby(tr["account"]).sum().reindex(acc.index).fillna(0.0)
    room = (cash - floor).reindex(acc.index)
    assert (net <= room + 1e-6).all()
    # nothing trades at a zero price; skipped accounts do not trade; only a position out of
    # its band trades -- or, where cash is the only thing out of its band, one whose move
    # brings cash toward its target -- and always towards its target (unless the floor
    # forces cash to be raised)
    assert (tr["price"] > 0).all()
    assert not tr["account"].isin(res.skipped["account"]).any()
    drift = compute_drift(book, opts)
    pos = drift.positions
    m = tr.merge(pos, on=["account", "security"], suffixes=("", "_d"))
    assert len(m) == len(tr)
    m = m[feasible.reindex(m["account"]).to_numpy()]
    dacc = drift.accounts.set_index("account")
    rows_out = pos.groupby("account")["out_of_band"].any().reindex(dacc.index).fillna(False)
    cash_alone = (dacc["out_of_band"] & ~rows_out.astype(bool)).reindex(m["account"]).to_numpy()
    gap = (dacc["cash_weight"] - dacc["cash_target"]).reindex(m["account"]).to_numpy()
    helps_cash = np.where(gap > 0, m["quantity"] > 0, m["quantity"] < 0)
    assert (m["out_of_band"].to_numpy() | (cash_alone & helps_cash)).all()
    assert (np.sign(m["quantity"]) == np.sign(m["target_d"] - m["weight"])).all()
    return res


@SETTINGS
@given(data=st.data())
def test_rules_hold_on_random_books(data):
    book = data.draw(books())
    assert_rules(book, data.draw(options()))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_rules_hold_with_tax_lots(data):
    book = data.draw(books(tax=True))
    res = assert_rules(book, data.draw(options(tax=True)))
    # the lots a sell takes add up to the sell, and the gains to its realised gain
    if len(res.lots):
        taken = res.lots.groupby(["account", "security"])["quantity"].sum()
        sells = res.trades[res.trades["side"] == "sell"].set_index(["account", "security"])
        for key, q in taken.items():
            assert q <= -sells.loc[key, "quantity"] + 1e-6


def _model_from_holdings(book: Book) -> Book:
    """One model per account whose targets are exactly the account's current weights."""
    drift = compute_drift(book, Options())
    pos = drift.positions
    acc = drift.accounts.set_index("account")
    rows, cash_rows, accts = [], [], book.accounts.copy()
    for a in acc.index:
        p = pos[(pos["account"] == a) & (pos["quantity"] > 0)]
        for r in p.itertuples(index=False):
            rows.append({"model": f"own-{a}", "security": r.security, "weight": r.weight})
        cash_rows.append({"model": f"own-{a}", "cash": acc.loc[a, "cash_weight"]})
    accts["model"] = "own-" + accts["account"]
    return Book(
        securities=book.securities,
        accounts=accts,
        holdings=book.holdings,
        models=pd.DataFrame(rows, columns=["model", "security", "weight"]),
        model_cash=pd.DataFrame(cash_rows),
        as_of=book.as_of,
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_account_at_its_targets_gets_no_trade(data):
    book = data.draw(books(at_target=True))
    res = rebalance(book, data.draw(options()))
    usable = res.accounts["account"]
    assert res.trades[res.trades["account"].isin(usable)].empty
    assert (res.accounts["drift_after"] < 1e-9).all()
