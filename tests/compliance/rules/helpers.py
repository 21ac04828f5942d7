"""Small hand-made checks in the JSON format of ``python -m compliance.rules``."""

from __future__ import annotations

import copy

from compliance.rules import check
from compliance.rules.jsoncheck import check_from_json, result_to_json

AS_OF = "2025-03-03T15:00:00Z"


def security(ticker, price, **extra):
    return {"ticker": ticker, "price": price, **extra}


def base_check(**extra) -> dict:
    """One USD account with 9,000 USD cash and 10 AAA at 100: NAV 10,000, AAA 10%."""
    data = {
        "currency": "USD",
        "as_of": AS_OF,
        "fx": {"EUR": 1.08},
        "securities": [
            security(
                "AAA",
                100.0,
                issuer="Acme",
                sector="Technology",
                country="US",
                asset_class="equity",
                adv=1000,
                shares_outstanding=1_000_000,
            ),
            security(
                "BBB",
                50.0,
                issuer="Bolt",
                sector="Industrials",
                country="US",
                asset_class="equity",
                adv=5000,
                shares_outstanding=1_000_000,
            ),
            security(
                "EEE",
                100.0,
                currency="EUR",
                issuer="Euro AG",
                sector="Technology",
                country="DE",
                asset_class="equity",
            ),
        ],
        "accounts": [
            {"id": "ACC1", "long_only": True, "cash": {"USD": 9000.0}, "holdings": {"AAA": 10}}
        ],
        "rules": [],
        "orders": [],
    }
    data.update(copy.deepcopy(extra))
    return data


def run(data: dict):
    """Parse and check ``data``; return (the engine's result, the JSON answer)."""
    parsed = check_from_json(copy.deepcopy(data))
    result = check(parsed.book, parsed.rules, parsed.restricted_lists)
    return result, result_to_json(parsed, result)


def account_result(answer: dict, account: str, rule: str) -> dict:
    acc = next(a for a in answer["accounts"] if a["id"] == account)
    return next(r for r in acc["results"] if r["rule"] == rule)


def has_result(answer: dict, account: str, rule: str) -> bool:
    acc = next(a for a in answer["accounts"] if a["id"] == account)
    return any(r["rule"] == rule for r in acc["results"])


def order(answer: dict, oid: str) -> dict:
    return next(o for o in answer["orders"] if o["id"] == oid)


def order_result(answer: dict, oid: str, rule: str) -> dict | None:
    return next((r for r in order(answer, oid)["results"] if r["rule"] == rule), None)


def buy(oid, ticker, qty, account="ACC1", **extra):
    return {
        "id": oid,
        "account": account,
        "ticker": ticker,
        "side": "buy",
        "quantity": qty,
        **extra,
    }


def sell(oid, ticker, qty, account="ACC1", side="sell", **extra):
    return {"id": oid, "account": account, "ticker": ticker, "side": side, "quantity": qty, **extra}
