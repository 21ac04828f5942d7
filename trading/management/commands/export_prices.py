"""Write the latest price of every security to a JSON file for the FIX simulator."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand

from portfolios.models import Security


class Command(BaseCommand):
    help = (
        'Write {"TICKER": latest price} for every security to PATH (atomically), for '
        "`python -m trading.fix.simulator --prices PATH`, which re-reads it when it changes."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options):
        prices = {
            ticker: str(price)
            for ticker, price in Security.objects.with_latest_price().values_list(
                "ticker", "latest_price"
            )
            if price is not None
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(prices, indent=1, sort_keys=True))
        os.replace(tmp, path)
        self.stdout.write(f"{len(prices)} prices written to {path}")
