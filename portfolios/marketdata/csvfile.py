"""The file import: a CSV of prices and FX rates, end of day or intraday.

The header names the columns (any order, any case): ``symbol`` and a price
(``last``/``price``/``rate``, or ``bid`` and ``ask``) are required; ``as_of`` (a
date: end of day) or ``at`` (an ISO moment: intraday), ``venue`` and ``size`` are
optional. An FX rate is a row whose symbol is a pair, ``EUR/USD,1.0850``::

    symbol,as_of,price
    AAA,2026-01-02,101.25
    EUR/USD,2026-01-02,1.0850

Every row that cannot be read is named (line number, symbol, why) in the batch's
``errors``; whether the good rows are applied without the bad ones is the
caller's choice (``portfolios.services.quotes.prices_import``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from .base import Batch, MarketDataAdapter, Quote, RowError
from .records import RecordError, quote_from_record

MAX_ROWS = 100_000


class CsvFileError(ValueError):
    """The file as a whole cannot be read (no header, no price column, too long)."""


class CsvPrices(MarketDataAdapter):
    source = "file"

    def __init__(self, text: str, *, now: datetime, venue: str = "FILE", source: str = "file"):
        self.text = text
        self.now = now
        self.venue = venue
        self.source = source

    def batches(self) -> Iterator[Batch]:
        yield self.read()

    def read(self) -> Batch:
        if "\x00" in self.text:
            raise CsvFileError("The file holds NUL characters: it is not a CSV text file.")
        try:
            return self._read()
        except csv.Error as error:
            raise CsvFileError(f"The file is not readable as CSV ({error}).") from None

    def _read(self) -> Batch:
        reader = csv.DictReader(io.StringIO(self.text.lstrip("\ufeff")))
        header = [h.strip().lower() for h in (reader.fieldnames or []) if h]
        if not header:
            raise CsvFileError("The file is empty: it needs a header line (symbol,as_of,price).")
        if "symbol" not in header:
            raise CsvFileError(f"The header has no symbol column (it reads {','.join(header)}).")
        if not {"last", "price", "rate", "bid", "ask"} & set(header):
            raise CsvFileError("The header has no price column (last, price, rate, bid or ask).")
        quotes: list[Quote] = []
        lines: list[int] = []
        errors: list[RowError] = []
        seen: dict[tuple[str, str, datetime], int] = {}
        for index, row in enumerate(reader):
            line = index + 2
            if index >= MAX_ROWS:
                raise CsvFileError(f"The file has more than {MAX_ROWS:,} rows; split it.")
            if None in row:  # more fields than the header names
                errors.append(
                    RowError(line, row.get("symbol") or "", "more fields than the header")
                )
                continue
            row = {k.strip().lower(): v for k, v in row.items()}
            if not any((v or "").strip() for v in row.values()):
                continue  # a blank line
            try:
                quote = quote_from_record(row, now=self.now, default_venue=self.venue)
            except RecordError as error:
                errors.append(RowError(line, (row.get("symbol") or "").strip(), str(error)))
                continue
            key = (quote.symbol, quote.venue, quote.at)
            if key in seen:
                errors.append(RowError(line, quote.symbol, f"repeats line {seen[key]}"))
                continue
            seen[key] = line
            quotes.append(quote)
            lines.append(line)
        return Batch(quotes, errors, lines)
