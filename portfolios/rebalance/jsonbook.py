"""A book kept in a JSON file, and the result written back as JSON.

The format is documented in ``docs/rebalancing.md``. :func:`load_book` validates it and
raises :class:`BookError` with a message naming the account or security at fault.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from oms.jsonio import Fields

from .book import Book, BookError, Options

__all__ = ["book_from_json", "load_book", "options_from_json", "result_to_json"]

WEIGHT_TOLERANCE = 1e-4
OPTION_FIELDS = {
    "trade_to": str,
    "band_abs": float,
    "band_rel": float,
    "lot_selection": str,
    "gains_cap": float,
    "wash_sale_days": int,
    "long_term_days": int,
    "short_term_rate": float,
    "long_term_rate": float,
    "max_price_age_days": int,
    "allow_stale": bool,
    "local_search_rounds": int,
    "pair_candidates": int,
    "subset_moves": int,
}


_fields = Fields(BookError)
_num = _fields.num
_obj = _fields.obj
_list = _fields.list


def _date(value: Any, what: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise BookError(f"{what} must be a date YYYY-MM-DD, not {value!r}") from None


def options_from_json(data: dict, base: Options | None = None) -> Options:
    """Options from the book's ``"options"`` object (unknown keys are an error)."""
    data = _obj(data or {}, '"options"')
    kwargs = {}
    for key, value in data.items():
        if key not in OPTION_FIELDS:
            raise BookError(f"unknown option {key!r}")
        kind = OPTION_FIELDS[key]
        if value is None:
            kwargs[key] = None
        elif kind is str:
            kwargs[key] = str(value)
        elif kind is bool:
            if not isinstance(value, bool):
                raise BookError(f"option {key} must be true or false")
            kwargs[key] = value
        elif kind is int:
            kwargs[key] = int(_num(value, f"option {key}"))
        else:
            kwargs[key] = _num(value, f"option {key}")
    fields = dict(base.__dict__) if base is not None else {}
    fields.update(kwargs)
    return Options(**fields)


def load_book(text: str) -> tuple[Book, Options]:
    """Parse and validate a JSON book; returns the book and its options."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BookError(f"malformed JSON: {exc}") from None
    return book_from_json(data)


def book_from_json(data: Any) -> tuple[Book, Options]:
    data = _obj(data, "the book")
    for key in ("securities", "models", "accounts"):
        if key not in data:
            raise BookError(f'the book has no "{key}"')
    currency = str(data.get("currency") or "USD")
    options = options_from_json(data.get("options") or {}, Options(base_currency=currency))
    as_of = _date(data.get("as_of"), '"as_of"')

    # securities
    sec_rows = []
    for ticker, s in _fields.keyed(data["securities"], '"securities"', "security", "ticker"):
        price = _num(s.get("price"), f"price of {ticker}", allow_none=True)
        lot = _num(s.get("lot", 1), f"lot of {ticker}")
        if lot <= 0:
            raise BookError(f"lot of {ticker} must be positive")
        fractional = bool(s.get("fractional", lot < 1))
        increment = lot if lot < 1 else float(s.get("increment", 1e-6))
        sec_rows.append(
            {
                "security": ticker,
                "price": np.nan if price is None else price,
                "currency": s.get("currency") or currency,
                "lot": 1.0 if lot < 1 else lot,
                "fractional": fractional,
                "increment": increment,
                "min_qty": _num(s.get("min_qty", 0), f"min_qty of {ticker}"),
                "stale": bool(s.get("stale", False)),
                "price_date": _date(s.get("price_date"), f"price_date of {ticker}"),
            }
        )
    tickers = {r["security"] for r in sec_rows}

    def known(ticker, where):
        if ticker not in tickers:
            raise BookError(f"{where}: unknown security {ticker}")
        return ticker

    # models
    model_rows, cash_rows = [], []
    names: set = set()
    for name, m in _fields.keyed(data["models"], '"models"', "model", "name"):
        names.add(name)
        cash = _num(m.get("cash", 0.0), f"cash weight of model {name}")
        targets = _obj(m.get("targets", {}), f"targets of model {name}")
        total = cash
        for ticker, w in targets.items():
            known(ticker, f"model {name}")
            w = _num(w, f"weight of {ticker} in model {name}")
            total += w
            model_rows.append({"model": name, "security": ticker, "weight": w})
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise BookError(f"model {name}: weights sum to {total * 100:.2f}%, not 100%")
        cash_rows.append(
            {
                "model": name,
                "cash": cash,
                "band_abs": _num(m.get("band_abs"), f"band_abs of model {name}", allow_none=True),
                "band_rel": _num(m.get("band_rel"), f"band_rel of model {name}", allow_none=True),
            }
        )

    # firm-wide restrictions
    restr_rows = []
    firm = _obj(data.get("restrictions") or {}, '"restrictions"')
    for kind, tick_list in firm.items():
        if kind not in ("do_not_buy", "do_not_sell", "do_not_trade"):
            raise BookError(f"unknown restriction {kind!r}")
        for ticker in _list(tick_list, f"restrictions.{kind}"):
            restr_rows.append(
                {"account": None, "security": known(ticker, kind), "restriction": kind}
            )

    fx_rows = []
    fx = data.get("fx") or {}
    if isinstance(fx, dict):
        fx = [{"currency": k, "rate": v} for k, v in fx.items()]
    for i, f in enumerate(_list(fx, '"fx"')):
        f = _obj(f, f"fx #{i + 1}")
        c = f.get("currency")
        rate = _num(f.get("rate"), f"FX rate of {c}")
        if rate <= 0:
            raise BookError(f"FX rate of {c} must be positive")
        fx_rows.append({"currency": c, "base": f.get("base") or currency, "rate": rate})

    # accounts
    acct_rows, hold_rows, lot_rows, sale_rows = [], [], [], []
    for acc, a in _fields.keyed(data["accounts"], '"accounts"', "account", "id"):
        where = f"account {acc}"
        model = a.get("model")
        if model is not None and model not in names:
            raise BookError(f"{where}: unknown model {model}")
        withdrawal = _num(a.get("withdrawal", 0.0), f"{where}: withdrawal")
        deposit = _num(a.get("deposit", 0.0), f"{where}: deposit")
        need = _num(a.get("cash_need", 0.0), f"{where}: cash_need", minimum=None)
        acct_rows.append(
            {
                "account": acc,
                "model": model,
                "base_currency": a.get("currency") or currency,
                "cash": _num(a.get("cash", 0.0), f"{where}: cash", minimum=None),
                "cash_floor": _num(a.get("cash_floor", 0.0), f"{where}: cash_floor"),
                "cash_need": need + withdrawal - deposit,
                "min_trade_value": _num(a.get("min_trade_value", 0.0), f"{where}: min_trade_value"),
                "min_trade_pct": _num(a.get("min_trade_pct", 0.0), f"{where}: min_trade_pct"),
                "long_only": bool(a.get("long_only", True)),
                "gains_cap": _num(a.get("gains_cap"), f"{where}: gains_cap", allow_none=True),
            }
        )
        for ticker, q in _obj(a.get("holdings") or {}, f"{where}: holdings").items():
            known(ticker, where)
            q = _num(q, f"{where}: quantity of {ticker}")
            hold_rows.append({"account": acc, "security": ticker, "quantity": q})
        for kind in ("do_not_buy", "do_not_sell", "do_not_trade"):
            for ticker in _list(a.get(kind), f"{where}: {kind}"):
                restr_rows.append(
                    {"account": acc, "security": known(ticker, where), "restriction": kind}
                )
        for j, lot in enumerate(_list(a.get("lots"), f"{where}: lots")):
            lot = _obj(lot, f"{where}: lot #{j + 1}")
            ticker = known(lot.get("ticker"), where)
            lot_rows.append(
                {
                    "account": acc,
                    "security": ticker,
                    "lot": lot.get("id", f"{acc}/{ticker}/{j + 1}"),
                    "quantity": _num(lot.get("quantity"), f"{where}: lot quantity of {ticker}"),
                    "cost": _num(lot.get("cost"), f"{where}: lot cost of {ticker}"),
                    "acquired": _date(lot.get("acquired"), f"{where}: lot date of {ticker}"),
                }
            )
        for j, sale in enumerate(_list(a.get("sales"), f"{where}: sales")):
            sale = _obj(sale, f"{where}: sale #{j + 1}")
            ticker = known(sale.get("ticker"), where)
            sale_rows.append(
                {
                    "account": acc,
                    "security": ticker,
                    "date": _date(sale.get("date"), f"{where}: sale date of {ticker}"),
                    "gain": _num(sale.get("gain"), f"{where}: sale gain of {ticker}", minimum=None),
                }
            )

    def frame(rows, columns):
        return pd.DataFrame(rows, columns=columns)

    book = Book(
        securities=frame(
            sec_rows,
            [
                "security",
                "price",
                "currency",
                "lot",
                "fractional",
                "increment",
                "min_qty",
                "stale",
                "price_date",
            ],
        ),
        accounts=frame(
            acct_rows,
            [
                "account",
                "model",
                "base_currency",
                "cash",
                "cash_floor",
                "cash_need",
                "min_trade_value",
                "min_trade_pct",
                "long_only",
                "gains_cap",
            ],
        ),
        holdings=frame(hold_rows, ["account", "security", "quantity"]),
        models=frame(model_rows, ["model", "security", "weight"]),
        model_cash=frame(cash_rows, ["model", "cash", "band_abs", "band_rel"]),
        fx=frame(fx_rows, ["currency", "base", "rate"]) if fx_rows else None,
        lots=frame(lot_rows, ["account", "security", "lot", "quantity", "cost", "acquired"])
        if lot_rows
        else None,
        restrictions=frame(restr_rows, ["account", "security", "restriction"])
        if restr_rows
        else None,
        sales=frame(sale_rows, ["account", "security", "date", "gain"]) if sale_rows else None,
        as_of=as_of,
    )
    return book, options


def _qty(q: float):
    r = round(float(q), 9)
    return int(r) if r == int(r) else r


def _r(x, nd=6):
    x = float(x)
    return None if math.isnan(x) else round(x, nd)


def result_to_json(book: Book, result, options: Options) -> dict:
    """The JSON answer: one entry per account, in the book's order, and a summary."""
    trades = result.trades
    by_acct: dict = {}
    for row in trades.itertuples(index=False):
        entry = by_acct.setdefault(row.account, {"trades": {}, "orders": []})
        entry["trades"][row.security] = _qty(row.quantity)
        order = {
            "ticker": row.security,
            "side": row.side,
            "quantity": _qty(row.quantity),
            "price": _r(row.price, 6),
            "value": _r(row.value, 2),
        }
        if row.side == "sell":
            order["realised_gain"] = _r(row.realised_gain, 2)
            if row.lots:
                order["lots"] = [{"id": i, "quantity": _qty(q)} for i, q in row.lots]
        entry["orders"].append(order)
    what_if = result.accounts.set_index("account")
    skipped = result.skipped_reasons()
    out = []
    for acc in book.accounts["account"]:
        if acc in skipped:
            out.append({"id": acc, "skipped": skipped[acc]})
            continue
        w = what_if.loc[acc]
        entry = by_acct.get(acc, {"trades": {}, "orders": []})
        out.append(
            {
                "id": acc,
                "trades": entry["trades"],
                "drift_before": _r(w["drift_before"]),
                "drift_after": _r(w["drift_after"]),
                "turnover": _r(w["turnover"]),
                "trade_count": int(w["trades"]),
                "cash_before": _r(w["cash_before"], 2),
                "cash_after": _r(w["cash_after"], 2),
                "realised_gain": _r(w["realised_gain"], 2),
                "status": w["status"],
                "orders": entry["orders"],
            }
        )
    acc = result.accounts
    summary = {
        "accounts": len(book.accounts),
        "rebalanced": int((acc["status"] == "rebalanced").sum()),
        "in_band": int((acc["status"] == "in_band").sum()),
        "skipped": len(result.skipped),
        "trades": len(trades),
        "buy_value": _r(acc["buy_value"].sum(), 2),
        "sell_value": _r(acc["sell_value"].sum(), 2),
        "mean_drift_before": _r(acc["drift_before"].mean()) if len(acc) else None,
        "mean_drift_after": _r(acc["drift_after"].mean()) if len(acc) else None,
        "realised_gain": _r(acc["realised_gain"].sum(), 2),
        "options": {k: getattr(options, k) for k in OPTION_FIELDS},
    }
    return {"accounts": out, "summary": summary}
