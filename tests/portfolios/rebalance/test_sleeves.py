"""The flattening of sleeves (models of models): pure, no database."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolios.rebalance.sleeves import SleeveCycle, find_cycle, flatten, reachable

ROOT = Path(__file__).resolve().parents[3]
D = Decimal


def test_imports_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import portfolios.rebalance.sleeves; import sys; assert 'django' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_a_model_without_sleeves_is_its_own_targets():
    flat = flatten(targets={1: {"A": D("0.7")}}, cash={1: D("0.3")}, sleeves={}, roots=[1])
    assert flat.targets[1] == {"A": D("0.7")}
    assert flat.cash[1] == D("0.3")


def test_a_sleeve_spreads_its_weight_over_its_targets_and_cash():
    flat = flatten(
        targets={
            "Mix": {"A": D("0.10")},
            "Eq": {"A": D("0.5"), "B": D("0.5")},
            "Bd": {"C": D("0.9")},
        },
        cash={"Mix": D("0.10"), "Bd": D("0.1")},
        sleeves={"Mix": {"Eq": D("0.6"), "Bd": D("0.2")}},
        roots=["Mix"],
    )
    # A held directly (10%) and through Eq (60% × 50%); Bd's cash is cash of Mix.
    assert flat.targets["Mix"] == {"A": D("0.40"), "B": D("0.30"), "C": D("0.18")}
    assert flat.cash["Mix"] == D("0.12")
    assert sum(flat.targets["Mix"].values()) + flat.cash["Mix"] == 1


def test_sleeves_nest_at_any_depth():
    depth = 3000  # deeper than Python's recursion limit: the walk is iterative
    sleeves = {n: {n + 1: D(1)} for n in range(depth)}
    flat = flatten(
        targets={depth: {"A": D("0.8")}}, cash={depth: D("0.2")}, sleeves=sleeves, roots=[0]
    )
    assert flat.targets[0] == {"A": D("0.8")}
    assert flat.cash[0] == D("0.2")


def test_a_sleeve_held_twice_counts_twice():
    flat = flatten(
        targets={"S": {"A": 1.0}},
        cash={},
        sleeves={"M": {"S": 0.5, "T": 0.5}, "T": {"S": 1.0}},
        roots=["M"],
    )
    assert flat.targets["M"] == {"A": 1.0}


@pytest.mark.parametrize(
    ("sleeves", "path"),
    [
        ({1: {1: 1}}, [1, 1]),
        ({1: {2: 1}, 2: {1: 1}}, [1, 2, 1]),
        ({1: {2: 1}, 2: {3: 1}, 3: {2: 1}}, [2, 3, 2]),
    ],
)
def test_a_model_that_holds_itself_is_refused(sleeves, path):
    assert find_cycle(sleeves, 1) == path
    with pytest.raises(SleeveCycle) as refused:
        flatten(targets={}, cash={}, sleeves=sleeves, roots=[1])
    assert refused.value.path == path
    assert "cannot hold itself" in str(refused.value)


def test_no_cycle_in_a_diamond():
    sleeves = {1: {2: 1, 3: 1}, 2: {4: 1}, 3: {4: 1}}
    assert find_cycle(sleeves) is None
    assert reachable([1], sleeves) == {1, 2, 3, 4}
    assert reachable([3], sleeves) == {3, 4}


@st.composite
def acyclic_models(draw):
    """Models 0..n-1, each holding only higher-numbered ones (so no cycle), each
    with weights (in hundredths) that add up to exactly 1."""
    n = draw(st.integers(1, 6))
    targets, cash, sleeves = {}, {}, {}
    for m in range(n):
        parts = draw(st.lists(st.integers(1, 100), min_size=1, max_size=5))
        total = sum(parts)
        parts = [D(p) / D(total) for p in parts]
        parts[-1] = 1 - sum(parts[:-1])
        kinds = [draw(st.sampled_from(["sec", "sleeve", "cash"])) for _ in parts]
        for part, kind in zip(parts, kinds, strict=True):
            if kind == "sleeve" and m + 1 < n:
                child = draw(st.integers(m + 1, n - 1))
                sleeves.setdefault(m, {})
                sleeves[m][child] = sleeves[m].get(child, 0) + part
            elif kind == "cash":
                cash[m] = cash.get(m, 0) + part
            else:
                security = draw(st.sampled_from("ABCDE"))
                targets.setdefault(m, {})
                targets[m][security] = targets[m].get(security, 0) + part
    return targets, cash, sleeves, n


@settings(max_examples=200, deadline=None)
@given(acyclic_models())
def test_flattened_weights_still_add_up_to_one(models):
    targets, cash, sleeves, n = models
    flat = flatten(targets=targets, cash=cash, sleeves=sleeves, roots=range(n))
    for m in range(n):
        weights = flat.targets[m]
        assert all(w >= 0 for w in weights.values())
        assert abs(sum(weights.values(), D(0)) + flat.cash[m] - 1) < D("1e-20")
