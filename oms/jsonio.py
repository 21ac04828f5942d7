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

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator
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


def command_line(prog: str, description: str, source: str, source_help: str):
    """An engine's command line: its JSON input (`source`: a path, or - for standard
    input), ``-o`` to write the answer to a file, ``--indent``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(source, help=source_help)
    parser.add_argument("-o", "--output", help="write the JSON here instead of standard output")
    parser.add_argument("--indent", type=int, default=2, help="JSON indent (0: one line)")
    return parser


def answer_or_error(
    path: str,
    work: Callable[[str], Any],
    errors: tuple[type[Exception], ...],
    output: str | None,
    indent: int,
) -> int:
    """Read the input at `path`, compute the answer (`work(text)`) and write it: exit
    status 0; 2, with the message on standard error, when the input cannot be read or
    is bad (`work` raised one of `errors`)."""
    try:
        answer = work(read_source(path))
    except (InputError, *errors) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_answer(answer, output, indent)
    return 0


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

    def keyed(
        self,
        items: Any,
        what: str,
        noun: str,
        field: str,
        *,
        key: Callable[[Any, str], Any] | None = None,
    ) -> Iterator[tuple[Any, dict]]:
        """The objects of the list `items` (the document's `what`), each with its key,
        the value of its `field`: ``(key, object)``. A missing key ("security #2 has
        no ticker") and a key listed twice ("security AAA is listed twice") are
        refused; `key(value, "security #2")` reads the key instead, when given."""
        seen: set = set()
        for i, item in enumerate(self.list(items, what)):
            place = f"{noun} #{i + 1}"
            item = self.obj(item, place)
            value = item.get(field)
            if key is not None:
                value = key(value, place)
            elif value is None or value == "":
                raise self.error(f"{place} has no {field}")
            if value in seen:
                raise self.error(f"{noun} {value} is listed twice")
            seen.add(value)
            yield value, item
