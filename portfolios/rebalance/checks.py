"""An independent check of proposed trades against the rules (used by tests and benchmarks).

It recomputes everything from the book with plain pandas rather than from the engine's
internal arrays, so that a bug in the engine does not hide itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .book import Book, Options
from .drift import compute_drift
from .engine import RebalanceResult
from .prepare import today

__all__ = ["check_trades"]

TOL = 1e-6


def _frac_off(q: np.ndarray, step: np.ndarray) -> np.ndarray:
    k = q / step
    return np.abs(k - np.round(k)) > 1e-6


def check_trades(
    book: Book, result: RebalanceResult, options: Options | None = None
) -> pd.DataFrame:
    """Every broken rule as a row (``account``, ``security``, ``rule``, ``detail``);
    an empty frame when the trades respect them all."""
    options = options or Options()
    out: list[dict] = []

    def bad(mask, frame, rule, detail):
        for _, r in frame[mask].iterrows():
            out.append(
                {
                    "account": r["account"],
                    "security": r.get("security"),
                    "rule": rule,
                    "detail": detail(r) if callable(detail) else detail,
                }
            )

    tr = result.trades.copy()
    secs = book.securities.copy()
    for col, default in (
        ("lot", 1.0),
        ("min_qty", 0.0),
        ("fractional", False),
        ("increment", 1e-6),
    ):
        if col not in secs.columns:
            secs[col] = default
    secs["fractional"] = secs["fractional"].fillna(False).astype(bool)
    secs["lot"] = secs["lot"].fillna(1.0)
    secs["min_qty"] = secs["min_qty"].fillna(0.0)
    secs["increment"] = secs["increment"].fillna(1e-6)
    accts = book.accounts.copy()
    for col, default in (
        ("cash", 0.0),
        ("cash_floor", 0.0),
        ("cash_need", 0.0),
        ("min_trade_value", 0.0),
        ("min_trade_pct", 0.0),
        ("long_only", True),
    ):
        if col not in accts.columns:
            accts[col] = default
        accts[col] = accts[col].fillna(default)
    hold = (
        book.holdings.groupby(["account", "security"], as_index=False)["quantity"].sum()
        if len(book.holdings)
        else pd.DataFrame(columns=["account", "security", "quantity"])
    )
    drift = compute_drift(book, options)
    dacc = drift.accounts.set_index("account")

    skipped = set(result.skipped["account"])
    if len(tr):
        tr = tr.merge(
            secs[["security", "lot", "min_qty", "fractional", "increment", "price"]],
            on="security",
            how="left",
            suffixes=("", "_sec"),
        )
        tr = tr.merge(hold, on=["account", "security"], how="left").fillna({"quantity_y": 0.0})
        tr = tr.rename(columns={"quantity_x": "quantity", "quantity_y": "held"})
        tr = tr.merge(accts, on="account", how="left")
        q = tr["quantity"].to_numpy(float)
        held = tr["held"].to_numpy(float)
        step = np.where(tr["fractional"], tr["increment"], tr["lot"]).astype(float)
        closeout = np.abs(q + held) < 1e-9
        bad(tr["account"].isin(skipped), tr, "skipped account traded", "")
        bad(~(tr["price_sec"] > 0), tr, "no price", "traded without a positive price")
        bad(_frac_off(q, step) & ~closeout, tr, "lot", lambda r: f"quantity {r['quantity']}")
        bad(
            np.abs(q) < tr["min_qty"].to_numpy(float) - 1e-9,
            tr,
            "min quantity",
            lambda r: f"quantity {r['quantity']} < {r['min_qty']}",
        )
        bad(
            tr["long_only"].astype(bool).to_numpy() & (held + q < -1e-9),
            tr,
            "short sale",
            lambda r: f"holds {r['held']}, sells {-r['quantity']}",
        )
        value = dacc["value"].reindex(tr["account"]).to_numpy(float)
        min_val = np.maximum(
            tr["min_trade_value"].to_numpy(float), tr["min_trade_pct"].to_numpy(float) * value
        )
        bad(
            tr["value"].to_numpy(float) < min_val - 1e-6,
            tr,
            "min trade value",
            lambda r: f"value {r['value']:.2f}",
        )
        # restrictions
        if book.restrictions is not None and len(book.restrictions):
            rs = book.restrictions.copy()
            if "account" not in rs.columns:
                rs["account"] = None
            rs["restriction"] = rs["restriction"].astype(str).str.lower().str.replace("-", "_")
            firm = rs[rs["account"].isna()]
            own = rs[rs["account"].notna()]
            for kind, side in (("do_not_buy", "buy"), ("do_not_sell", "sell")):
                kinds = (kind, "do_not_trade")
                fs = set(firm.loc[firm["restriction"].isin(kinds), "security"])
                os_ = set(
                    map(
                        tuple,
                        own.loc[own["restriction"].isin(kinds), ["account", "security"]].itertuples(
                            index=False, name=None
                        ),
                    )
                )
                hit = (tr["side"] == side) & (
                    tr["security"].isin(fs)
                    | pd.Series(list(zip(tr["account"], tr["security"], strict=True))).isin(os_)
                )
                bad(hit, tr, kind.replace("_", "-"), lambda r: f"{r['side']} {r['quantity']}")
        # positions inside their band and accounts inside theirs are left alone
        pos = drift.positions.set_index(["account", "security"])["out_of_band"]
        key = pd.MultiIndex.from_frame(tr[["account", "security"]])
        pos_out = pos.reindex(key).fillna(False).to_numpy(bool)
        acc_out = dacc["out_of_band"].reindex(tr["account"]).fillna(False).to_numpy(bool)
        cash_short = dacc["cash"] < accts.set_index("account")["cash_floor"].reindex(dacc.index)
        forced = cash_short.reindex(tr["account"]).fillna(False).to_numpy(bool)
        # ... except where cash is the only thing out of its band: then a position may
        # move toward its target, in the direction that brings cash toward its own.
        pos_rows = drift.positions.set_index(["account", "security"])
        weight = pos_rows["weight"].reindex(key).to_numpy(float)
        target = pos_rows["target"].reindex(key).to_numpy(float)
        rows_out = drift.positions.groupby("account")["out_of_band"].any()
        cash_gap = dacc["cash_weight"] - dacc["cash_target"]
        cash_alone = (dacc["out_of_band"] & ~rows_out.reindex(dacc.index).fillna(False)).astype(
            bool
        )
        alone = cash_alone.reindex(tr["account"]).fillna(False).to_numpy(bool)
        gap = cash_gap.reindex(tr["account"]).to_numpy(float)
        buying = (tr["side"] == "buy").to_numpy()
        toward = np.where(gap > 0, buying & (weight < target), ~buying & (weight > target))
        bad(~acc_out, tr, "account in band traded", "")
        bad(acc_out & ~pos_out & ~forced & ~(alone & toward), tr, "position in band traded", "")
        # wash sale: no buy of a security sold at a loss within the window
        if book.sales is not None and len(book.sales) and options.wash_sale_days > 0:
            as_of = pd.Timestamp(book.as_of if book.as_of is not None else today())
            s = book.sales
            age = (as_of - pd.to_datetime(s["date"])).dt.days
            recent = s[(s["gain"] < 0) & (age >= 0) & (age <= options.wash_sale_days)]
            keys = set(zip(recent["account"], recent["security"], strict=True))
            hit = (tr["side"] == "buy") & pd.Series(
                list(zip(tr["account"], tr["security"], strict=True))
            ).isin(keys)
            bad(hit, tr, "wash sale buy", "")
    # wash sale: no loss sale of a security bought within the window
    if (
        book.lots is not None
        and len(book.lots)
        and "acquired" in book.lots.columns
        and options.wash_sale_days > 0
        and len(result.lots)
    ):
        as_of = pd.Timestamp(book.as_of if book.as_of is not None else today())
        lots = book.lots
        age = (as_of - pd.to_datetime(lots["acquired"])).dt.days
        recent = set(
            zip(
                lots.loc[age <= options.wash_sale_days, "account"],
                lots.loc[age <= options.wash_sale_days, "security"],
                strict=True,
            )
        )
        lt = result.lots
        hit = (lt["realised_gain"] < -1e-9) & pd.Series(
            list(zip(lt["account"], lt["security"], strict=True))
        ).isin(recent).to_numpy()
        bad(pd.Series(hit, index=lt.index), lt, "wash sale loss", "")
    # per account: cash floor and gains cap
    acc = result.accounts.merge(
        accts[["account", "cash", "cash_need", "cash_floor"]], on="account", suffixes=("", "_in")
    )
    if len(tr):
        spent = (np.sign(tr["quantity"]) * tr["value"]).groupby(tr["account"]).sum()
    else:
        spent = pd.Series(dtype=float)
    cash_after = (
        acc["cash"] - acc["cash_need"] - spent.reindex(acc["account"]).fillna(0.0).to_numpy()
    )
    acc["check_cash_after"] = cash_after.to_numpy()
    bad(
        (cash_after < acc["cash_floor_in"] - TOL).to_numpy(),
        acc,
        "cash floor",
        lambda r: f"cash after {r['check_cash_after']:.2f} < floor {r['cash_floor_in']:.2f}",
    )
    cap = accts.set_index("account").get("gains_cap")
    caps = (
        cap.reindex(acc["account"]).to_numpy(float)
        if cap is not None
        else np.full(len(acc), np.nan)
    )
    if options.gains_cap is not None:
        caps = np.where(np.isnan(caps), options.gains_cap, caps)
    bad(
        acc["realised_gain"].to_numpy() > caps + TOL,
        acc,
        "gains cap",
        lambda r: f"realised {r['realised_gain']:.2f}",
    )
    return pd.DataFrame(out, columns=["account", "security", "rule", "detail"])
