import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from portfolios.rebalance.__main__ import main

ROOT = Path(__file__).resolve().parents[3]

EXAMPLE = {
    "currency": "USD",
    "securities": [
        {"ticker": "AAA", "price": 41.5, "lot": 1},
        {"ticker": "BBB", "price": None, "lot": 100},
        {"ticker": "CCC", "price": 12.0, "lot": 0.001},
    ],
    "models": [{"name": "Growth", "cash": 0.02, "targets": {"AAA": 0.58, "CCC": 0.4}}],
    "accounts": [
        {
            "id": "ACC1",
            "model": "Growth",
            "cash": 1500.0,
            "holdings": {"AAA": 100, "BBB": 200},
            "cash_floor": 250.0,
            "withdrawal": 0.0,
            "do_not_buy": [],
            "do_not_sell": ["AAA"],
            "min_trade_value": 100.0,
        },
        {
            "id": "ACC2",
            "model": "Growth",
            "cash": 10000.0,
            "holdings": {"AAA": 100},
            "cash_floor": 250.0,
            "min_trade_value": 100.0,
        },
    ],
}


def run(tmp_path, book, *args, capsys):
    path = tmp_path / "book.json"
    path.write_text(book if isinstance(book, str) else json.dumps(book))
    status = main([str(path), *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_example_book(tmp_path, capsys):
    status, out, err = run(tmp_path, EXAMPLE, capsys=capsys)
    assert status == 0, err
    data = json.loads(out)
    acc = {a["id"]: a for a in data["accounts"]}
    assert acc["ACC1"] == {"id": "ACC1", "skipped": "no price for BBB"}
    # ACC2: value 14150, AAA to 58% = 8207 -> 197.76 shares, buy 98 whole shares;
    # CCC to 40% = 5660 -> 471.666 (0.001 steps), cash left above the 250 floor
    assert acc["ACC2"]["trades"] == {"AAA": 98, "CCC": 471.666}
    assert acc["ACC2"]["cash_after"] >= 250
    assert acc["ACC2"]["drift_after"] < acc["ACC2"]["drift_before"]
    assert data["summary"]["skipped"] == 1
    assert data["summary"]["trades"] == 2


def test_option_override(tmp_path, capsys):
    book = json.loads(json.dumps(EXAMPLE))
    book["accounts"][1]["holdings"] = {"AAA": 200}
    status, out, err = run(tmp_path, book, "--option", "band_abs=0.6", capsys=capsys)
    assert status == 0, err
    acc = {a["id"]: a for a in json.loads(out)["accounts"]}
    assert acc["ACC2"]["trades"] == {}
    assert acc["ACC2"]["status"] == "in_band"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b["models"][0]["targets"].update(AAA=0.5), "Growth: weights sum to 92.00%"),
        (lambda b: b["accounts"][0].update(model="Value"), "account ACC1: unknown model Value"),
        (
            lambda b: b["accounts"][0]["holdings"].update(ZZZ=1),
            "account ACC1: unknown security ZZZ",
        ),
        (lambda b: b["accounts"][1]["holdings"].update(AAA=-5), "account ACC2: quantity of AAA"),
        (lambda b: b["securities"][0].update(price=-1), "price of AAA must not be negative"),
        (lambda b: b["models"][0]["targets"].update(QQQ=0.0), "model Growth: unknown security QQQ"),
        (lambda b: b["accounts"].append(dict(b["accounts"][0])), "account ACC1 is listed twice"),
        (lambda b: b.pop("models"), 'the book has no "models"'),
        (lambda b: b.update(options={"trade_to": "moon"}), "trade_to"),
    ],
)
def test_bad_input_exit_2(tmp_path, capsys, mutate, message):
    book = json.loads(json.dumps(EXAMPLE))
    mutate(book)
    status, out, err = run(tmp_path, book, capsys=capsys)
    assert status == 2
    assert message in err
    assert out == ""


def test_malformed_json_exit_2(tmp_path, capsys):
    status, _, err = run(tmp_path, "{not json", capsys=capsys)
    assert status == 2
    assert "malformed JSON" in err


def test_module_runs_without_django(tmp_path):
    path = tmp_path / "book.json"
    path.write_text(json.dumps(EXAMPLE))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-m", "portfolios.rebalance", str(path), "--indent", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["rebalanced"] == 1
    bad = subprocess.run(
        [sys.executable, "-m", "portfolios.rebalance", str(tmp_path / "missing.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "cannot read" in bad.stderr


def test_unreadable_input_exit_2(tmp_path, capsys):
    latin = tmp_path / "book.json"
    latin.write_bytes('{"currency": "EUR", "note": "caf\xe9"}'.encode("latin-1"))
    assert main([str(latin)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
