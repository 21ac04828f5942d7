"""Write a custodian's statement of the demo's positions and cash, with a few
real differences to find: `manage.py sample_statement var/statement.csv`.

The differences: one account's position short by 10 shares of its first
holding (a loan the custodian shows), another's cash 125.40 higher (a dividend
we have not booked), and a third's smallest position missing."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portfolios.models import CashBalance, Position


class Command(BaseCommand):
    help = "Write a sample custodian statement (CSV) of the current book, with a few differences."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options):
        positions = list(
            Position.objects.exclude(quantity=0)
            .select_related("portfolio", "security")
            .order_by("portfolio__code", "security__ticker")
        )
        cash = list(CashBalance.objects.select_related("portfolio").order_by("portfolio__code"))
        accounts = sorted({p.portfolio.code for p in positions})
        if len(accounts) < 3:
            raise CommandError("load the demo data first: the sample needs three accounts")
        short, richer, missing = accounts[0], accounts[1], accounts[2]
        smallest = min(
            (p for p in positions if p.portfolio.code == missing), key=lambda p: p.quantity
        )
        first_short = next(p for p in positions if p.portfolio.code == short)
        rows = []
        for p in positions:
            if p is smallest:
                continue
            quantity = p.quantity - Decimal(10) if p is first_short else p.quantity
            rows.append((p.portfolio.code, p.security.ticker, "", quantity))
        first_cash = {}
        for c in cash:
            amount = c.amount
            if c.portfolio.code == richer and richer not in first_cash:
                first_cash[richer] = True
                amount += Decimal("125.40")
            rows.append((c.portfolio.code, "", c.currency, amount))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["account", "security", "currency", "quantity"])
            for row in rows:
                writer.writerow([row[0], row[1], row[2], f"{row[3]:f}"])
        self.stdout.write(f"{path}: {len(rows)} lines, 3 differences to find")
