"""A model's targets as CSV: the one format of the page's and the API's import and export.

Two columns, with a header: ``ticker,weight``. One row per target:

- a security by its ticker: ``AAA,0.40``;
- the cash weight as the row ``CASH`` (no row: no cash);
- a sleeve (another model) as ``model:<name>``: ``model:Core equity,0.25``.

A weight is a fraction of the model (``0.40``) or a percentage (``40%``); the
weights and cash add up to 1 (100%). Blank lines are skipped. The export writes
the same format (fractions, securities by weight then sleeves, cash last), so an
exported file imports back unchanged.

Pure: the parser checks the file's shape and each row's figure and says which
line is wrong; which tickers and models exist is the service's to check.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

HEADER = ("ticker", "weight")
CASH = "CASH"
SLEEVE_PREFIX = "model:"
MAX_ROWS = 1000


@dataclass(frozen=True)
class Row:
    """One line of the file: what it names (``kind`` security, sleeve or cash)."""

    line: int
    kind: str
    name: str
    weight: Decimal


def parse_weight(text: str) -> Decimal | None:
    """A weight as a fraction: ``0.4`` or ``40%`` → Decimal("0.4"); None if not a number."""
    text = text.strip()
    percent = text.endswith("%")
    if percent:
        text = text[:-1].strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return value / 100 if percent else value


def parse(text: str) -> tuple[list[Row], list[str]]:
    """The rows of a targets file and what is wrong with it, each naming its line."""
    rows: list[Row] = []
    errors: list[str] = []
    if "\x00" in text:
        return [], ["The file is not text (it holds a NUL character)."]
    # Windows' and old Macs' line ends are line ends too.
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    cash_line: int | None = None
    while True:
        try:
            fields = next(lines)
        except StopIteration:
            break
        except csv.Error as exc:  # a quote left open, say
            return [], [f"Line {lines.line_num}: not CSV ({exc})."]
        line = lines.line_num
        if not any(field.strip() for field in fields):
            continue
        if header is None:
            header = [field.strip().lower() for field in fields]
            if tuple(header) != HEADER:
                return [], [
                    f"Line {line}: the header must be ticker,weight (not {','.join(fields)})."
                ]
            continue
        if len(fields) != 2:
            errors.append(f"Line {line}: expected 2 columns (ticker,weight), found {len(fields)}.")
            continue
        name, raw = fields[0].strip(), fields[1]
        if not name:
            errors.append(f"Line {line}: no ticker.")
            continue
        weight = parse_weight(raw)
        if weight is None:
            errors.append(f"Line {line}: the weight {raw.strip()!r} is not a number.")
            continue
        if weight > 1:  # no one line can hold more than the model (the sum would say so
            # too, but as a figure of hundreds of digits for 1e400)
            errors.append(
                f"Line {line}: the weight {raw.strip()!r} is more than the whole model (100%)."
            )
            continue
        if name.upper() == CASH:
            if cash_line is not None:
                errors.append(f"Line {line}: CASH is already given on line {cash_line}.")
                continue
            cash_line = line
            rows.append(Row(line, "cash", CASH, weight))
        elif name.lower().startswith(SLEEVE_PREFIX):
            rows.append(Row(line, "sleeve", name[len(SLEEVE_PREFIX) :].strip(), weight))
        else:
            rows.append(Row(line, "security", name.upper(), weight))
        if len(rows) > MAX_ROWS:
            return [], [f"At most {MAX_ROWS} rows per file."]
    if header is None:
        errors.append("The file is empty: it needs the header ticker,weight and a row per target.")
    return rows, errors


def render(
    targets: list[tuple[str, Decimal]], sleeves: list[tuple[str, Decimal]], cash: Decimal
) -> str:
    """The file of a model: ``(ticker, weight)`` targets, ``(model name, weight)``
    sleeves and the cash weight (a CASH row even at zero, so the file says it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for ticker, weight in targets:
        writer.writerow([ticker, f"{weight.normalize():f}"])
    for name, weight in sleeves:
        writer.writerow([f"{SLEEVE_PREFIX}{name}", f"{weight.normalize():f}"])
    writer.writerow([CASH, f"{cash.normalize():f}"])
    return out.getvalue()
