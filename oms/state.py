"""State machines: a transition map per model, enforced in services."""

from __future__ import annotations

from collections.abc import Mapping


def state_label(obj: object, state: str) -> str:
    """A state as the pages name it ("partially filled"), from the model's choices."""
    choices = getattr(type(obj), "Status", None)
    try:
        return str(choices(state).label).lower()  # type: ignore[misc]
    except (TypeError, ValueError):
        return str(state).replace("_", " ")


class TransitionError(Exception):
    """A state change that the object's transition map does not allow.

    Its message is in the user's words: "Order #12 is released: it cannot
    become approved." ``current`` and ``target`` are the plain state values."""

    def __init__(self, obj: object, current: str, target: str, message: str = "") -> None:
        self.current = str(current)
        self.target = str(target)
        super().__init__(
            message
            or f"{obj} is {state_label(obj, current)}: it cannot become {state_label(obj, target)}."
        )


def check_transition(obj: object, transitions: Mapping[str, frozenset[str]], target: str) -> None:
    """Raise TransitionError unless `obj.status` may become `target`."""
    current = obj.status  # type: ignore[attr-defined]
    if target not in transitions.get(current, frozenset()):
        raise TransitionError(obj, current, target)


def move(obj: object, target: str) -> None:
    """Check the change against the object's own ``TRANSITIONS`` map, then make it
    (the caller saves, with ``update_fields``)."""
    check_transition(obj, type(obj).TRANSITIONS, target)  # type: ignore[attr-defined]
    obj.status = target  # type: ignore[attr-defined]


def terminal_states(transitions: Mapping[str, frozenset[str]]) -> frozenset[str]:
    return frozenset(state for state, targets in transitions.items() if not targets)
