"""python -m compliance.rules: the issue's worked example, bad input, the process itself."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compliance.rules.__main__ import main

ROOT = Path(__file__).resolve().parents[3]

# The worked example of issue 10, field for field.
EXAMPLE = {
    "currency": "USD",
    "fx": {"EUR": 1.08},
    "securities": [
        {
            "ticker": "AAA",
            "price": 41.5,
            "currency": "USD",
            "issuer": "Acme",
            "sector": "Technology",
            "country": "US",
            "asset_class": "equity",
            "government": False,
            "adv": 1200000,
            "shares_outstanding": 50000000,
        }
    ],
    "accounts": [
        {
            "id": "ACC1",
            "long_only": True,
            "cash": {"USD": 15000.0, "EUR": 200.0},
            "holdings": {"AAA": 100},
        }
    ],
    "restricted_lists": [{"name": "firm", "tickers": ["BBB"], "issuers": ["Shady Co"]}],
    "rules": [
        {
            "id": "R1",
            "kind": "max_weight",
            "group_by": "issuer",
            "limit": 0.10,
            "severity": "soft",
            "scope": "all",
        },
        {
            "id": "R2",
            "kind": "restricted",
            "list": "firm",
            "severity": "hard",
            "scope": {"accounts": ["ACC1"]},
        },
    ],
    "orders": [
        {
            "id": "O1",
            "account": "ACC1",
            "ticker": "AAA",
            "side": "buy",
            "quantity": 50,
            "limit_price": None,
        }
    ],
}


def run(tmp_path, data, *args, capsys):
    path = tmp_path / "check.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    status = main([str(path), *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_the_worked_example_of_the_issue(tmp_path, capsys):
    status, out, err = run(tmp_path, EXAMPLE, capsys=capsys)
    assert status == 0, err
    answer = json.loads(out)
    # NAV 4,150 + 15,000 + 200 x 1.08 = 19,366; Acme after the buy: 150 x 41.5 = 6,225
    assert answer["orders"] == [
        {
            "id": "O1",
            "account": "ACC1",
            "status": "needs_override",
            "failed": ["R1"],
            "warned": [],
            "results": [
                {
                    "rule": "R1",
                    "kind": "max_weight",
                    "status": "fail",
                    "value": 0.32143963647629864,
                    "limit": 0.1,
                    "group": "Acme",
                },
                {"rule": "R2", "kind": "restricted", "status": "pass", "value": 0.0, "limit": 0.0},
            ],
        }
    ]
    (acc,) = answer["accounts"]
    assert (acc["id"], acc["nav_before"], acc["nav_after"]) == ("ACC1", 19366.0, 19366.0)
    r1, r2 = acc["results"]
    assert {k: r1[k] for k in ("rule", "status", "value", "limit", "group", "passive")} == {
        "rule": "R1",
        "status": "fail",
        "value": 0.32143963647629864,
        "limit": 0.10,
        "group": "Acme",
        "passive": False,
    }
    assert 6225 / 19366 == 0.32143963647629864
    assert r1["value_before"] == 4150 / 19366
    assert (r2["rule"], r2["status"], r2["value"]) == ("R2", "pass", 0.0)
    # full precision: the printed text carries every digit
    assert "0.32143963647629864" in out


def _bad(mutate):
    data = json.loads(json.dumps(EXAMPLE))
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["rules"][0].update(kind="max_wieght"), "rule R1: unknown kind 'max_wieght'"),
        (lambda d: d["rules"][0].update(limit=-0.1), "rule R1: limit must not be negative"),
        (
            lambda d: d["rules"][0].update(limit=1.5),
            "limit is a share of NAV and must be at most 1",
        ),
        (
            lambda d: d["rules"].append({"id": "C", "kind": "min_cash", "limit": 2}),
            "rule C: limit is a share of NAV",
        ),
        (lambda d: d["rules"][0].update(group_by="industry"), "rule R1: group_by must be one of"),
        (lambda d: d["rules"][0].pop("limit"), "rule R1: max_weight needs 'limit'"),
        (lambda d: d["rules"][0].update(limt=0.1), "rule R1: max_weight has no parameter 'limt'"),
        (lambda d: d["rules"][0].update(severity="fatal"), "rule R1: severity must be hard"),
        (lambda d: d["rules"][1].update(list="frim"), "rule R2: unknown restricted list 'frim'"),
        (lambda d: d["rules"][1].update(sides="buy"), "rule R2: sides must be a list"),
        (lambda d: d["rules"][1].update(sides=["purchase"]), "rule R2: sides must be taken from"),
        (
            lambda d: d["rules"][1].update(scope={"accounts": ["ACC9"]}),
            "rule R2: unknown account ACC9 in scope",
        ),
        (lambda d: d["rules"].append(dict(d["rules"][0])), "rule R1 is listed twice"),
        (lambda d: d["rules"].append({"kind": "no_short"}), "rule #3 has no id"),
        (
            lambda d: d["rules"].append({"id": "W", "kind": "wash_sale", "days": 2.5}),
            "rule W: days must be a whole number",
        ),
        (
            lambda d: d["accounts"][0]["holdings"].update(ZZZ=1),
            "account ACC1: unknown security ZZZ",
        ),
        (lambda d: d["orders"][0].update(ticker="ZZZ"), "order O1: unknown security ZZZ"),
        (lambda d: d["orders"][0].update(account="ACC9"), "order O1: unknown account ACC9"),
        (lambda d: d["orders"][0].update(side="short"), "order O1: side must be buy, sell"),
        (lambda d: d["orders"][0].update(quantity=0), "order O1: quantity must be positive"),
        (lambda d: d["orders"][0].update(quantity="50"), "order O1: quantity must be a number"),
        (lambda d: d["orders"][0].pop("side"), "order O1 has no 'side'"),
        (lambda d: d["orders"].append(dict(d["orders"][0])), "order O1 is listed twice"),
        (lambda d: d["securities"][0].update(price=-1), "price of AAA must not be negative"),
        (lambda d: d["securities"][0].pop("price"), "security AAA has no price"),
        (lambda d: d["securities"].append({"price": 1}), "security #2 has no ticker"),
        (lambda d: d["fx"].update(EUR=0), "FX rate of EUR must be positive"),
        (lambda d: d["fx"].pop("EUR"), "account ACC1 cannot be valued: no FX rate for EUR"),
        (lambda d: d.pop("rules"), 'the check has no "rules"'),
        (lambda d: d["accounts"].append(dict(d["accounts"][0])), "account ACC1 is listed twice"),
        (lambda d: d["accounts"][0].update(long_only="yes"), "long_only must be true or false"),
    ],
)
def test_bad_input_names_what_is_wrong_and_exits_2(tmp_path, capsys, mutate, message):
    status, out, err = run(tmp_path, _bad(mutate), capsys=capsys)
    assert status == 2
    assert message in err
    assert out == ""


@pytest.mark.parametrize("text", ["{not json", "", "[1, 2]", '{"securities": 3}'])
def test_malformed_json_exits_2(tmp_path, capsys, text):
    status, out, err = run(tmp_path, text, capsys=capsys)
    assert status == 2
    assert err.startswith("error: ")
    assert out == ""


def test_output_file(tmp_path, capsys):
    target = tmp_path / "out.json"
    status, out, _ = run(tmp_path, EXAMPLE, "-o", str(target), "--indent", "0", capsys=capsys)
    assert (status, out) == (0, "")
    assert json.loads(target.read_text())["orders"][0]["status"] == "needs_override"


def test_the_command_runs_as_a_process_without_django(tmp_path):
    path = tmp_path / "check.json"
    path.write_text(json.dumps(EXAMPLE))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-m", "compliance.rules", str(path), "--indent", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accounts"][0]["results"][0]["value"] == 0.32143963647629864
    stdin = subprocess.run(
        [sys.executable, "-m", "compliance.rules", "-"],
        cwd=ROOT,
        env=env,
        input="{oops",
        capture_output=True,
        text=True,
        check=False,
    )
    assert stdin.returncode == 2
    assert "malformed JSON" in stdin.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "compliance.rules", str(tmp_path / "missing.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
