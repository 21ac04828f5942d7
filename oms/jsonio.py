"""Reading JSON input for the pure engines' command lines and file formats.

The rebalancer (`python -m portfolios.rebalance`) and the rule engine
(`python -m compliance.rules`) read a JSON document that a person wrote, and
must name what is wrong in it rather than fail on it. This module is the one
place for that: reading the file (or standard input), the typed field readers
that raise the engine's own error with the field's path, and writing the
answer. It imports nothing but the standard library, so the engines stay
importable without Django.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any


class InputError(ValueError):
    """The input could not be read (missing file, not UTF-8)."""


def read_source(path: str) -> str:
    """The text of `path`, or of standard input for `-`."""
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None


def write_answer(answer: Any, path: str | None, indent: int) -> None:
    """The answer as JSON to `path`, or to standard output."""
    text = json.dumps(answer, indent=indent or None)
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")


class Fields:
    """Typed readers of a JSON document's fields that raise `error` (the engine's
    own exception) with a message naming the field, `what`."""

    def __init__(self, error: type[Exception]) -> None:
        self.error = error

    def obj(self, value: Any, what: str) -> dict:
        if not isinstance(value, dict):
            raise self.error(f"{what} must be a JSON object")
        return value

    def list(self, value: Any, what: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(f"{what} must be a JSON list")
        return value

    def num(
        self,
        value: Any,
        what: str,
        *,
        minimum: float | None = 0.0,
        allow_none: bool = False,
        none: float | None = None,
    ) -> float | None:
        """A finite number, at least `minimum` (None: any); `none` when the field
        may be absent and is."""
        if value is None and allow_none:
            return none
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.error(f"{what} must be a number, not {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(f"{what} must not be negative ({value})")
        return float(value)
