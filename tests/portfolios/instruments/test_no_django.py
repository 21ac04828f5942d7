"""The instrument engine is pure: it imports and runs without Django or its settings."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "portfolios" / "instruments"


def test_engine_imports_and_books_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    code = (
        "import datetime as dt, sys; "
        "import portfolios.instruments as pi; "
        "from portfolios.instruments import build; import trading.allocation; "
        "cal = {'US': pi.HolidayCalendar.weekends_only('US')}; "
        "e = pi.Equity(symbol='X', currency='USD', settlement=pi.US_SECURITIES, "
        "settlement_calendar='US'); "
        "b = e.book_fill(pi.Fill(side='buy', quantity=10, price=2, "
        "trade_date=dt.date(2025, 1, 6)), cal); "
        "assert b.cash[0].amount == -20 and b.settlement_date == dt.date(2025, 1, 7); "
        "assert 'django' not in sys.modules, 'django imported'"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr


def test_no_django_import_in_source():
    files = list(PACKAGE.rglob("*.py"))
    assert files
    for p in files:
        text = p.read_text()
        assert "import django" not in text and "from django" not in text, p
