"""State machines: a transition map per model, enforced in services."""

from __future__ import annotations

from collections.abc import Mapping


class TransitionError(Exception):
    """A state change that the object's transition map does not allow."""

    def __init__(self, obj: object, current: str, target: str, message: str = "") -> None:
        self.current = current
        self.target = target
        label = type(obj).__name__
        super().__init__(message or f"{label} cannot go from {current!r} to {target!r}")


def check_transition(obj: object, transitions: Mapping[str, frozenset[str]], target: str) -> None:
    """Raise TransitionError unless `obj.status` may become `target`."""
    current = obj.status  # type: ignore[attr-defined]
    if target not in transitions.get(current, frozenset()):
        raise TransitionError(obj, current, target)


def terminal_states(transitions: Mapping[str, frozenset[str]]) -> frozenset[str]:
    return frozenset(state for state, targets in transitions.items() if not targets)
