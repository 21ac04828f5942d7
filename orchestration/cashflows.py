"""Cash flows as the runs use them: checking one entered on a page, in the API or on a
line of a CSV file, and the cash need each account's pending flows add up to.

Pure helpers of `orchestration.services` (the services lock, write and audit)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from portfolios.selectors import FxTable

from .models import CashFlow
from .parameters import MONEY_LIMIT

#: The largest CSV of cash flows accepted.
MAX_CSV_BYTES = 5 * 1024 * 1024
CSV_COLUMNS = ("account", "currency", "amount", "kind")
#: Lines of one CSV file at most (a whole book of flows is a few thousand).
CSV_MAX_LINES = 100_000
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class CleanFlow:
    kind: str
    currency: str
    amount: Decimal
    note: str = ""


def check_flow(
    *, kind, currency, amount, base_currency: str, fx: FxTable, note: str = ""
) -> tuple[CleanFlow | None, dict[str, str]]:
    """The flow checked, or the errors by field, in the user's words."""
    errors: dict[str, str] = {}
    kinds = dict(CashFlow.Kind.choices)
    kind = (kind or "").strip().lower() if isinstance(kind, str) else kind
    if kind not in kinds:
        errors["kind"] = "Must be 'deposit' or 'withdrawal'."
    currency = (currency or "").strip().upper() if isinstance(currency, str) else ""
    if not _CURRENCY.match(currency):
        errors["currency"] = "Must be a three-letter currency code such as USD."
    elif fx.rate(currency, base_currency) is None:
        errors["currency"] = (
            f"No FX rate from {currency} to the account's base currency {base_currency}."
        )
    number = None
    try:
        number = Decimal(str(amount).strip().replace(",", "")) if amount not in (None, "") else None
    except (InvalidOperation, ValueError):
        number = None
    if number is None or not number.is_finite():
        errors["amount"] = "Must be a number."
    elif number <= 0:
        errors["amount"] = (
            "Must be positive: enter a withdrawal as kind 'withdrawal' with a positive "
            "amount (the kind says which way the cash goes)."
            if number < 0
            else "Must be more than zero."
        )
    elif number > Decimal(str(MONEY_LIMIT)):
        errors["amount"] = f"Must be at most {MONEY_LIMIT:,.0f}."
    elif number != number.quantize(Decimal("0.01")):
        errors["amount"] = "At most two decimals."
    note = note if isinstance(note, str) else ""
    limit = CashFlow._meta.get_field("note").max_length
    if len(note) > limit:
        # kept whole or not at all, never cut
        errors["note"] = f"At most {limit} characters (this is {len(note)})."
    if errors:
        return None, errors
    return CleanFlow(kind=kind, currency=currency, amount=number, note=note), {}


def read_csv(text: str) -> tuple[list[tuple[int, dict]], list[str]]:
    """``(line number, row)`` of a CSV with the columns account, currency, amount,
    kind (a header line first); or the errors of the file itself."""
    if not text.strip():
        return [], ["The file is empty."]
    reader = csv.DictReader(io.StringIO(text))
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        return [], [
            f"Line 1: the header lacks {', '.join(missing)} "
            f"(the columns are {', '.join(CSV_COLUMNS)})."
        ]
    columns = ", ".join(CSV_COLUMNS)
    # every value is read or refused: a column or a field the import does not read
    # would be dropped without a word
    extra = [name for name in header if name not in CSV_COLUMNS]
    if extra:
        return [], [
            f"Line 1: the header has {', '.join(extra)}, which "
            f"{'is not a column' if len(extra) == 1 else 'are not columns'} of the import "
            f"(the columns are {columns})."
        ]
    reader.fieldnames = header
    rows = []
    long_lines = []
    for row in reader:
        if reader.line_num > CSV_MAX_LINES:
            return [], [f"The file has more than {CSV_MAX_LINES:,} lines."]
        if None in row:  # csv.DictReader's key for the fields beyond the header
            long_lines.append(
                f"Line {reader.line_num}: {len(header) + len(row[None])} fields, but the "
                f"header names {len(header)} ({columns})."
            )
            continue
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        rows.append((reader.line_num, row))
    if long_lines:
        return [], long_lines
    if not rows:
        return [], ["The file has a header but no cash flow."]
    return rows, []


def needs_by_account(
    flows, base_of: dict[int, str], fx: FxTable
) -> tuple[dict[int, float], dict[int, str]]:
    """Account → the cash its flows ask the run to raise (> 0) or let it invest (< 0),
    in the account's base currency; and the accounts whose flows cannot be converted
    (no FX rate any more), with why."""
    needs: dict[int, float] = {}
    problems: dict[int, str] = {}
    for flow in flows:
        base = base_of[flow.portfolio_id]
        rate = fx.rate(flow.currency, base)
        if rate is None:
            problems[flow.portfolio_id] = (
                f"no FX rate from {flow.currency} to {base} for cash flow #{flow.pk}"
            )
            continue
        needs[flow.portfolio_id] = (
            needs.get(flow.portfolio_id, 0.0) + float(flow.signed_need) * rate
        )
    return needs, problems


def csv_text(upload) -> str:
    """The text of an uploaded CSV, or a ValidationError in the user's words."""
    if upload.size > MAX_CSV_BYTES:
        raise ValidationError({"file": [f"The file is over {MAX_CSV_BYTES // 1024 // 1024} MB."]})
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(
            {"file": ["The file is not UTF-8 text (save it as CSV UTF-8)."]}
        ) from None
