"""``python -m portfolios.rebalance BOOK.json``: rebalance a book kept in a JSON file.

Prints the proposed trades and the what-if of every account as JSON. Exit status 0 on
success, 2 when the book is bad (the message names the account or security), 1 otherwise.
"""

from __future__ import annotations

import json
import sys

from oms.jsonio import answer_or_error, command_line

from .book import BookError
from .engine import rebalance
from .jsonbook import load_book, options_from_json, result_to_json


def _overrides(items: list[str]) -> dict:
    """The ``--option NAME=VALUE`` overrides: a value is JSON, or else a string."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise BookError(f"--option {item!r} is not NAME=VALUE")
        try:
            overrides[name] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name] = value
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = command_line(
        "python -m portfolios.rebalance",
        "Rebalance every account of a book kept in a JSON file "
        "(see docs/rebalancing.md for the format).",
        "book",
        "the JSON book, or - for standard input",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an option of the book, e.g. --option trade_to=band_edge",
    )
    args = parser.parse_args(argv)

    def answer(text: str) -> dict:
        book, options = load_book(text)
        if args.option:
            options = options_from_json(_overrides(args.option), options)
        return result_to_json(book, rebalance(book, options), options)

    return answer_or_error(args.book, answer, (BookError,), args.output, args.indent)


if __name__ == "__main__":
    sys.exit(main())
