"""The pre-trade check as trading sees it: one seam that compliance fills.

Trading sits below compliance in the layers, so it cannot call compliance's
services; yet no order may be approved or released without the check. The check
is therefore registered here by the compliance app when it starts
(`compliance.apps.ComplianceConfig.ready`), and every path that approves or
releases orders (a ticket, the API, a rebalance run's proposal, a bulk approval)
asks `check` with the orders it is about to move, all at once, inside its own
transaction and after locking them. Without a registered checker every order
passes (a deployment without the compliance app).

A checker takes the locked orders, the stage (`proposal`, `approve`, `release`)
and the actor, and returns a verdict per order id. It may store what it found;
it must not move the orders itself: the caller does, so that each state change
stays in the service that owns it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Stage = Literal["proposal", "approve", "release"]
STAGES: tuple[str, ...] = ("proposal", "approve", "release")


@dataclass(frozen=True)
class Verdict:
    """What the check says of one order: `approved` lets it on, `needs_override`
    holds it until a compliance officer approves an override, `rejected` ends it.
    `failed` and `warned` name the rules; `message` says why in words."""

    status: Literal["approved", "needs_override", "rejected"]
    failed: tuple[str, ...] = ()
    warned: tuple[str, ...] = ()
    message: str = ""
    details: dict = field(default_factory=dict)

    @property
    def passes(self) -> bool:
        return self.status == "approved"


APPROVED = Verdict("approved")

Checker = Callable[..., dict[int, Verdict]]
_checker: Checker | None = None


def register(checker: Checker | None) -> None:
    """Install the checker (None removes it). Called once per process at start."""
    global _checker
    _checker = checker


def registered() -> Checker | None:
    return _checker


def check(orders: Sequence, *, stage: Stage, actor) -> dict[int, Verdict]:
    """The verdict on each of these orders (model instances, already locked by the
    caller) at this stage, checked together as one batch."""
    if stage not in STAGES:
        raise ValueError(f"Unknown pre-trade stage {stage!r}; one of {', '.join(STAGES)}.")
    if not orders:
        return {}
    if _checker is None:
        return {order.pk: APPROVED for order in orders}
    verdicts = _checker(list(orders), stage=stage, actor=actor)
    missing = [order.pk for order in orders if order.pk not in verdicts]
    if missing:
        raise RuntimeError(f"The pre-trade checker gave no verdict on orders {missing}.")
    return verdicts
