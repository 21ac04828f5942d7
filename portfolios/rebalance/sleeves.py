"""Models of models: a model's sleeves flattened into security weights and cash.

A model holds securities (target weights), cash (a cash weight) and sleeves: other
models, each with a weight. For drift and rebalancing only securities and cash
count, so a sleeve's weight is spread over the sleeve's own flattened composition:
a sleeve of weight w adds w × (each of its securities' flattened weights) to the
holder's security weights and w × (its flattened cash) to the holder's cash. A
security held both directly and through sleeves gets the sum. If every model's
weights (securities, sleeves and cash) add up to 1, so do the flattened ones.

The sleeve graph must be acyclic: a model that holds itself, directly or through
its sleeves, has no flattened weights (`SleeveCycle` names the path).

Pure: no Django. The weights may be any numbers that multiply and add (Decimal for
the pages and the audit trail, float for the engine); models and securities any
hashable (primary keys or names). Example::

    >>> flat = flatten(
    ...     targets={"Growth": {"AAA": 1.0}, "Income": {"BBB": 0.8}},
    ...     cash={"Income": 0.2, "Mix": 0.1},
    ...     sleeves={"Mix": {"Growth": 0.6, "Income": 0.3}},
    ...     roots=["Mix"],
    ... )
    >>> flat.targets["Mix"] == {"AAA": 0.6, "BBB": 0.24}, round(flat.cash["Mix"], 10)
    (True, 0.16)
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Weights = Mapping[Hashable, Any]


class SleeveCycle(ValueError):
    """A model holds itself through its sleeves: `path` runs from it back to it."""

    def __init__(self, path: list) -> None:
        self.path = path
        super().__init__(
            "A model cannot hold itself as a sleeve: " + " → ".join(map(str, path)) + "."
        )


@dataclass(frozen=True)
class Flattened:
    """Per model: its security weights (``targets``) and cash weight, sleeves spread."""

    targets: dict[Hashable, dict[Hashable, Any]] = field(default_factory=dict)
    cash: dict[Hashable, Any] = field(default_factory=dict)


_END = object()


def find_cycle(sleeves: Mapping[Hashable, Weights], start: Hashable | None = None) -> list | None:
    """A path ``[m, ..., m]`` along sleeves that comes back to where it started (one
    reachable from `start` when given), or None when there is none."""
    state: dict = {}  # 1: on the current path, 2: explored, no cycle below
    for root in [start] if start is not None else list(sleeves):
        if state.get(root):
            continue
        # Depth first, iteratively: a deep chain of sleeves must not hit the recursion limit.
        path, branches = [root], [iter(sleeves.get(root, {}))]
        state[root] = 1
        while branches:
            child = next(branches[-1], _END)
            if child is _END:
                branches.pop()
                state[path.pop()] = 2
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                branches.append(iter(sleeves.get(child, {})))
    return None


def reachable(roots: Iterable[Hashable], sleeves: Mapping[Hashable, Weights]) -> set:
    """The roots and every model they hold through sleeves, at any depth."""
    seen: set = set()
    todo = list(roots)
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        todo.extend(sleeves.get(model, {}))
    return seen


def flatten(
    *,
    targets: Mapping[Hashable, Weights],
    cash: Mapping[Hashable, Any],
    sleeves: Mapping[Hashable, Weights],
    roots: Iterable[Hashable],
) -> Flattened:
    """The flattened weights of each root (and of every model it holds on the way).

    `targets`: model → {security: weight}; `cash`: model → cash weight (missing: 0);
    `sleeves`: model → {sleeve model: weight}. Raises `SleeveCycle` when a root holds
    itself through its sleeves."""
    roots = list(roots)
    for root in roots:
        if (cycle := find_cycle(sleeves, root)) is not None:
            raise SleeveCycle(cycle)
    flat_targets: dict[Hashable, dict[Hashable, Any]] = {}
    flat_cash: dict[Hashable, Any] = {}
    # Post-order, iteratively: a model is flattened once all its sleeves are.
    stack: list[tuple[Hashable, bool]] = [(root, False) for root in roots]
    while stack:
        model, expanded = stack.pop()
        if model in flat_targets:
            continue
        held = sleeves.get(model, {})
        if not expanded:
            stack.append((model, True))
            stack.extend((child, False) for child in held if child not in flat_targets)
            continue
        weights = dict(targets.get(model, {}))
        money = cash.get(model, 0)
        for child, share in held.items():
            for security, weight in flat_targets[child].items():
                weights[security] = weights.get(security, 0) + share * weight
            money = money + share * flat_cash[child]
        flat_targets[model] = weights
        flat_cash[model] = money
    return Flattened(targets=flat_targets, cash=flat_cash)
