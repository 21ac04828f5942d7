"""``python -m portfolios.rebalance BOOK.json``: rebalance a book kept in a JSON file.

Prints the proposed trades and the what-if of every account as JSON. Exit status 0 on
success, 2 when the book is bad (the message names the account or security), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from oms.jsonio import InputError, read_source, write_answer

from .book import BookError
from .engine import rebalance
from .jsonbook import load_book, options_from_json, result_to_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m portfolios.rebalance",
        description="Rebalance every account of a book kept in a JSON file "
        "(see docs/rebalancing.md for the format).",
    )
    parser.add_argument("book", help="the JSON book, or - for standard input")
    parser.add_argument("-o", "--output", help="write the JSON here instead of standard output")
    parser.add_argument("--indent", type=int, default=2, help="JSON indent (0: one line)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an option of the book, e.g. --option trade_to=band_edge",
    )
    args = parser.parse_args(argv)
    try:
        text = read_source(args.book)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        book, options = load_book(text)
        if args.option:
            overrides = {}
            for item in args.option:
                name, sep, value = item.partition("=")
                if not sep:
                    raise BookError(f"--option {item!r} is not NAME=VALUE")
                try:
                    overrides[name] = json.loads(value)
                except json.JSONDecodeError:
                    overrides[name] = value
            options = options_from_json(overrides, options)
        result = rebalance(book, options)
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_answer(result_to_json(book, result, options), args.output, args.indent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
