"""A check kept in a JSON file, and its results written back as JSON.

The format is documented in ``docs/compliance.md``. :func:`load_check` validates it and
raises :class:`CheckError` (or :class:`RuleError`) with a message naming the rule,
account, security or order at fault.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from oms.jsonio import Fields

from .book import Book, CheckError
from .engine import CheckResult, require_known_lists
from .rule import SIDES, RestrictedList, Rule, RuleError

__all__ = ["Check", "check_from_json", "load_check", "result_to_json"]


class Check:
    """A parsed check: the book, the rules, the restricted lists, and the order of the
    accounts and orders as the file gave them."""

    def __init__(self, book: Book, rules: list[Rule], lists: dict[str, RestrictedList]):
        self.book = book
        self.rules = rules
        self.restricted_lists = lists


_fields = Fields(CheckError)
_obj = _fields.obj
_list = _fields.list


def _num(value: Any, what: str, *, minimum: float | None = 0.0, allow_none=False) -> float:
    return _fields.num(value, what, minimum=minimum, allow_none=allow_none, none=math.nan)


def _str(value: Any, what: str, *, allow_none=True) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        raise CheckError(f"{what} must be a non-empty string, not {value!r}")
    return value


def _bool(value: Any, what: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise CheckError(f"{what} must be true or false, not {value!r}")
    return value


def _id(value: Any, what: str) -> Any:
    if value is None or value == "" or isinstance(value, bool | dict | list | float):
        raise CheckError(f"{what} has no id")
    return value


def _ticker(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise CheckError(f"{what} has no ticker")
    return value


def _time(value: Any, what: str):
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise CheckError(f"{what} must be an ISO date-time, not {value!r}") from None
    if ts is pd.NaT:
        raise CheckError(f"{what} must be an ISO date-time, not {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def load_check(text: str) -> Check:
    """Parse and validate a check kept as JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckError(f"malformed JSON: {exc}") from None
    return check_from_json(data)


def _orders(items: list, what: str, accounts: set, tickers: set, need_id: bool) -> pd.DataFrame:
    rows = []
    seen: set = set()
    for i, o in enumerate(items):
        o = _obj(o, f"{what} #{i + 1}")
        oid = o.get("id")
        if need_id or oid is not None:
            oid = _id(oid, f"{what} #{i + 1}")
            if oid in seen:
                raise CheckError(f"order {oid} is listed twice")
            seen.add(oid)
        else:
            oid = f"{what}#{i + 1}"
        where = f"order {oid}"
        for key in ("account", "ticker", "side", "quantity"):
            if key not in o:
                raise CheckError(f"{where} has no {key!r}")
        if o["account"] not in accounts:
            raise CheckError(f"{where}: unknown account {o['account']}")
        if o["ticker"] not in tickers:
            raise CheckError(f"{where}: unknown security {o['ticker']}")
        if o["side"] not in SIDES:
            raise CheckError(f"{where}: side must be {', '.join(SIDES)}, not {o['side']!r}")
        qty = _num(o["quantity"], f"{where}: quantity")
        if qty <= 0:
            raise CheckError(f"{where}: quantity must be positive, not {qty}")
        limit = _num(o.get("limit_price"), f"{where}: limit_price", allow_none=True)
        if limit == 0:
            raise CheckError(f"{where}: limit_price must be positive")
        rows.append(
            {
                "order": oid,
                "account": o["account"],
                "security": o["ticker"],
                "side": o["side"],
                "quantity": qty,
                "limit_price": limit,
                "created_at": _time(o.get("created_at"), f"{where}: created_at"),
            }
        )
    columns = ["order", "account", "security", "side", "quantity", "limit_price", "created_at"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def check_from_json(data: Any) -> Check:
    """A :class:`Check` from the parsed JSON document."""
    data = _obj(data, "the check")
    for key in ("securities", "accounts", "rules"):
        if key not in data:
            raise CheckError(f'the check has no "{key}"')
    currency = _str(data.get("currency", "USD"), '"currency"', allow_none=False)
    as_of = _time(data.get("as_of"), '"as_of"')

    fx_rows = []
    fx = data.get("fx") or {}
    if isinstance(fx, dict):
        fx = [{"currency": k, "rate": v} for k, v in fx.items()]
    for i, f in enumerate(_list(fx, '"fx"')):
        f = _obj(f, f"fx #{i + 1}")
        cur = _str(f.get("currency"), f"fx #{i + 1}: currency", allow_none=False)
        rate = _num(f.get("rate"), f"FX rate of {cur}")
        if rate <= 0:
            raise CheckError(f"FX rate of {cur} must be positive")
        fx_rows.append({"currency": cur, "base": f.get("base") or currency, "rate": rate})

    sec_rows = []
    tickers: set = set()
    for ticker, s in _fields.keyed(
        data["securities"], '"securities"', "security", "ticker", key=_ticker
    ):
        tickers.add(ticker)
        if "price" not in s:
            raise CheckError(f"security {ticker} has no price")
        mult = _num(s.get("multiplier", 1), f"multiplier of {ticker}")
        if mult <= 0:
            raise CheckError(f"multiplier of {ticker} must be positive")
        row = {
            "security": ticker,
            "price": _num(s["price"], f"price of {ticker}"),
            "currency": _str(s.get("currency"), f"currency of {ticker}") or currency,
            "government": _bool(s.get("government"), f"government of {ticker}", False),
            "adv": _num(s.get("adv"), f"adv of {ticker}", allow_none=True),
            "shares_outstanding": _num(
                s.get("shares_outstanding"), f"shares_outstanding of {ticker}", allow_none=True
            ),
            "multiplier": mult,
            "currency_trade": _bool(s.get("currency_trade"), f"currency_trade of {ticker}", False),
            "base_currency": _str(s.get("base_currency"), f"base_currency of {ticker}") or None,
        }
        for attr in ("issuer", "sector", "country", "asset_class"):
            value = s.get(attr)
            if value is not None and not isinstance(value, str):
                raise CheckError(f"{attr} of {ticker} must be a string, not {value!r}")
            row[attr] = value or None
        row["investment_company"] = _bool(
            s.get("investment_company"),
            f"investment_company of {ticker}",
            row["asset_class"] == "fund",
        )
        sec_rows.append(row)

    acct_rows, cash_rows, hold_rows, sale_rows = [], [], [], []
    ids: set = set()
    for acc, a in _fields.keyed(data["accounts"], '"accounts"', "account", "id", key=_id):
        ids.add(acc)
        where = f"account {acc}"
        acct_rows.append(
            {
                "account": acc,
                "base_currency": _str(a.get("currency"), f"{where}: currency") or currency,
                "long_only": _bool(a.get("long_only"), f"{where}: long_only", True),
            }
        )
        for cur, amount in _obj(a.get("cash") or {}, f"{where}: cash").items():
            amount = _num(amount, f"{where}: cash in {cur}", minimum=None)
            cash_rows.append({"account": acc, "currency": cur, "amount": amount})
        for ticker, q in _obj(a.get("holdings") or {}, f"{where}: holdings").items():
            if ticker not in tickers:
                raise CheckError(f"{where}: unknown security {ticker}")
            q = _num(q, f"{where}: quantity of {ticker}", minimum=None)
            hold_rows.append({"account": acc, "security": ticker, "quantity": q})
        for j, sale in enumerate(_list(a.get("sales"), f"{where}: sales")):
            sale = _obj(sale, f"{where}: sale #{j + 1}")
            ticker = sale.get("ticker")
            if ticker not in tickers:
                raise CheckError(f"{where}: sale #{j + 1}: unknown security {ticker}")
            day = _time(sale.get("date"), f"{where}: sale date of {ticker}")
            if day is None:
                raise CheckError(f"{where}: sale #{j + 1} has no date")
            gain = _num(sale.get("gain"), f"{where}: sale gain of {ticker}", minimum=None)
            sale_rows.append({"account": acc, "security": ticker, "date": day, "gain": gain})

    lists: dict[str, RestrictedList] = {}
    for i, r in enumerate(_list(data.get("restricted_lists"), '"restricted_lists"')):
        r = _obj(r, f"restricted list #{i + 1}")
        name = _str(r.get("name"), f"restricted list #{i + 1}: name", allow_none=False)
        if name in lists:
            raise CheckError(f"restricted list {name} is listed twice")
        items = {}
        for key in ("tickers", "issuers"):
            values = _list(r.get(key), f"restricted list {name}: {key}")
            if not all(isinstance(v, str) and v for v in values):
                raise CheckError(f"restricted list {name}: {key} must be strings")
            items[key] = values
        lists[name] = RestrictedList(name, items["tickers"], items["issuers"])

    rules: list[Rule] = []
    rule_ids: set = set()
    for i, r in enumerate(_list(data["rules"], '"rules"')):
        if not isinstance(r, dict):
            raise RuleError(f"rule #{i + 1} must be a JSON object")
        if r.get("id") is None or r.get("id") == "":
            raise RuleError(f"rule #{i + 1} has no id", field="id")
        rule = Rule.from_dict(r)
        if rule.id in rule_ids:
            raise RuleError(f"rule {rule.id} is listed twice", rule=rule.id, field="id")
        rule_ids.add(rule.id)
        for acc in rule.scope or ():
            if acc not in ids:
                raise RuleError(
                    f"rule {rule.id}: unknown account {acc} in scope", rule=rule.id, field="scope"
                )
        require_known_lists(rule, lists)
        rules.append(rule)

    orders = _orders(_list(data.get("orders"), '"orders"'), "order", ids, tickers, True)
    live = _orders(
        _list(data.get("live_orders"), '"live_orders"'), "live order", ids, tickers, False
    )
    clash = set(orders["order"]) & set(live["order"])
    if clash:
        raise CheckError(f"order {sorted(map(str, clash))[0]} is both under check and live")

    def frame(rows, columns):
        return pd.DataFrame(rows, columns=columns)

    book = Book(
        securities=frame(
            sec_rows,
            [
                "security",
                "price",
                "currency",
                "issuer",
                "sector",
                "country",
                "asset_class",
                "government",
                "investment_company",
                "adv",
                "shares_outstanding",
                "multiplier",
                "currency_trade",
                "base_currency",
            ],
        ),
        accounts=frame(acct_rows, ["account", "base_currency", "long_only"]),
        holdings=frame(hold_rows, ["account", "security", "quantity"]),
        cash=frame(cash_rows, ["account", "currency", "amount"]),
        fx=frame(fx_rows, ["currency", "base", "rate"]),
        orders=orders,
        live_orders=live,
        sales=frame(sale_rows, ["account", "security", "date", "gain"]),
        as_of=as_of,
        base_currency=currency,
    )
    return Check(book, rules, lists)


def _num_out(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def result_to_json(check: Check, result: CheckResult) -> dict:
    """The JSON answer: every order (in the file's order) with its status and the
    order-level results, every account with its results, rule by rule."""
    per_order: dict = {}
    for row in result.order_results.itertuples(index=False):
        entry = {
            "rule": row.rule,
            "kind": row.kind,
            "status": row.status,
            "value": _num_out(row.value),
            "limit": _num_out(row.limit),
        }
        if row.group is not None:
            entry["group"] = row.group
        per_order.setdefault(row.order, []).append(entry)
    orders = [
        {
            "id": row.order,
            "account": row.account,
            "status": row.status,
            "failed": list(row.failed),
            "warned": list(row.warned),
            "results": per_order.get(row.order, []),
        }
        for row in result.orders.itertuples(index=False)
    ]
    per_account: dict = {}
    for row in result.account_results.itertuples(index=False):
        entry = {
            "rule": row.rule,
            "version": int(row.version),
            "kind": row.kind,
            "severity": row.severity,
            "status": row.status,
            "value": _num_out(row.value),
            "value_before": _num_out(row.value_before),
            "limit": _num_out(row.limit),
            "group": row.group,
            "passive": bool(row.passive),
            "orders_failed": int(row.orders_failed),
        }
        if row.kind == "ucits_5_10_40":
            entry["max_issuer"] = _num_out(row.max_issuer)
            entry["max_issuer_before"] = _num_out(row.max_issuer_before)
        per_account.setdefault(row.account, []).append(entry)
    navs = result.accounts.set_index("account")
    accounts = []
    for acc in check.book.accounts["account"]:
        if acc not in navs.index:
            continue
        n = navs.loc[acc]
        accounts.append(
            {
                "id": acc,
                "nav_before": _num_out(n["nav_before"]),
                "nav_after": _num_out(n["nav_after"]),
                "results": per_account.get(acc, []),
            }
        )
    out = {"orders": orders, "accounts": accounts}
    if len(result.skipped):
        out["skipped"] = [
            {"id": r.account, "reason": r.reason} for r in result.skipped.itertuples(index=False)
        ]
    return out
