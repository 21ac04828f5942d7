"""``python -m compliance.rules CHECK.json``: check orders kept in a JSON file.

Prints every order's status and every account's results as JSON. Exit status 0 when the
check ran (whatever it found), 2 when the input is bad (the message names the rule,
account, security or order at fault).
"""

from __future__ import annotations

import sys

from oms.jsonio import answer_or_error, command_line

from .book import CheckError
from .engine import check
from .jsoncheck import load_check, result_to_json
from .rule import RuleError


def _answer(text: str) -> dict:
    parsed = load_check(text)
    result = check(parsed.book, parsed.rules, parsed.restricted_lists)
    if len(result.skipped):
        # every price and rate is in the file: an account that cannot be valued is bad input
        row = result.skipped.iloc[0]
        raise CheckError(f"account {row['account']} cannot be valued: {row['reason']}")
    return result_to_json(parsed, result)


def main(argv: list[str] | None = None) -> int:
    parser = command_line(
        "python -m compliance.rules",
        "Check the orders of a JSON file against its rules "
        "(see docs/compliance.md for the format).",
        "check",
        "the JSON check, or - for standard input",
    )
    args = parser.parse_args(argv)
    return answer_or_error(args.check, _answer, (CheckError, RuleError), args.output, args.indent)


if __name__ == "__main__":
    sys.exit(main())
