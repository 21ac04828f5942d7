"""``python -m compliance.rules CHECK.json``: check orders kept in a JSON file.

Prints every order's status and every account's results as JSON. Exit status 0 when the
check ran (whatever it found), 2 when the input is bad (the message names the rule,
account, security or order at fault).
"""

from __future__ import annotations

import argparse
import sys

from oms.jsonio import InputError, read_source, write_answer

from .book import CheckError
from .engine import check
from .jsoncheck import load_check, result_to_json
from .rule import RuleError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compliance.rules",
        description="Check the orders of a JSON file against its rules "
        "(see docs/compliance.md for the format).",
    )
    parser.add_argument("check", help="the JSON check, or - for standard input")
    parser.add_argument("-o", "--output", help="write the JSON here instead of standard output")
    parser.add_argument("--indent", type=int, default=2, help="JSON indent (0: one line)")
    args = parser.parse_args(argv)
    try:
        text = read_source(args.check)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        parsed = load_check(text)
        result = check(parsed.book, parsed.rules, parsed.restricted_lists)
    except (CheckError, RuleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if len(result.skipped):
        # every price and rate is in the file: an account that cannot be valued is bad input
        row = result.skipped.iloc[0]
        print(f"error: account {row['account']} cannot be valued: {row['reason']}", file=sys.stderr)
        return 2
    write_answer(result_to_json(parsed, result), args.output, args.indent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
