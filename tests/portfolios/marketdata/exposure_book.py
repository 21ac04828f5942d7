"""A hand-made book for the valuation and exposure tests, with every figure worked by
hand in the docstring of `make_book`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from portfolios.marketdata import Quote
from portfolios.models import (
    CashBalance,
    FxRate,
    ModelPortfolio,
    Portfolio,
    Position,
    Price,
    Security,
    TaxLot,
)
from portfolios.services import quotes as quote_services


def make_book(pm, other_pm) -> dict:
    """Firm currency USD; EUR/USD 1.2 (live, fresh).

    Securities (previous close yesterday / price now):
      AAA  USD equity, Tech, US          100 / 110 live, fresh
      DDD  EUR equity, Industrials, DE    50 /  55 live, fresh
      SSS  USD equity, Tech, US           20 /  21 live an hour ago: stale
      MMM  USD ETF, no sector, no country, no price at all: missing

    A1 (pm, model Core, base USD): AAA 100 (lots 60@80 + 40@90 = 8,400), DDD 200
      (lot 200@40 = 8,000 EUR), cash 1,000 USD and 500 EUR.
      AAA 11,000 value, 2,600 unrealised, 1,000 day; DDD 11,000 EUR = 13,200 USD,
      (11,000-8,000)x1.2 = 3,600 unrealised, 200x5x1.2 = 1,200 day; cash 1,600.
      MV 24,200, cash 1,600, NAV 25,800, unrealised 6,200, day 2,200.
    A2 (pm, model Income, base EUR): DDD 100 (lot 100@45), SSS 50 (lot 50@18), cash
      2,000 EUR.
      in EUR: DDD 5,500 / 1,000 / 500; SSS 1,050 USD = 875 EUR, 150/1.2 = 125,
      50/1.2 = 41.67: MV 6,375, cash 2,000, NAV 8,375, unrealised 1,125, day 541.67.
      in USD: DDD 6,600 / 1,200 / 600; SSS 1,050 / 150 / 50; cash 2,400:
      MV 7,650, cash 2,400, NAV 10,050, unrealised 1,350, day 650; one stale.
    A3 (pm2, model Core, base USD): AAA 10 (lot 10@100), MMM 30 (lot 30@10), cash
      500 USD. AAA 1,100 / 100 / 100; MMM cannot be valued (one missing).
      MV 1,100, cash 500, NAV 1,600, unrealised 100, day 100.
    """
    now = timezone.now()
    today = now.date()
    yesterday = today - timedelta(days=1)
    specs = {
        "AAA": ("USD", "equity", "Tech", "US", "100"),
        "DDD": ("EUR", "equity", "Industrials", "DE", "50"),
        "SSS": ("USD", "equity", "Tech", "US", "20"),
        "MMM": ("USD", "etf", "", "", None),
    }
    securities = {}
    for ticker, (currency, asset_class, sector, country, close) in specs.items():
        securities[ticker] = Security.objects.create(
            ticker=ticker,
            name=f"{ticker} plc",
            currency=currency,
            asset_class=asset_class,
            sector=sector,
            country=country,
        )
        if close:
            Price.objects.create(security=securities[ticker], as_of=yesterday, price=close)
    FxRate.objects.create(currency="EUR", quote="USD", as_of=yesterday, rate=Decimal("1.2"))
    quote_services.quotes_apply(
        [
            Quote("AAA", "XNAS", now, 109.9, 110.1, 110.0),
            Quote("DDD", "XETR", now, 54.9, 55.1, 55.0),
            Quote("SSS", "XNAS", now - timedelta(hours=1), 20.9, 21.1, 21.0),
            Quote("EUR/USD", "FX", now, 1.1999, 1.2001, 1.2),
        ],
        source="test",
    )
    core = ModelPortfolio.objects.create(name="Core")
    income = ModelPortfolio.objects.create(name="Income")
    accounts = {}
    for code, manager, model, base, holdings, cash in (
        ("A1", pm, core, "USD", {"AAA": [(60, 80), (40, 90)], "DDD": [(200, 40)]},
         {"USD": 1000, "EUR": 500}),
        ("A2", pm, income, "EUR", {"DDD": [(100, 45)], "SSS": [(50, 18)]}, {"EUR": 2000}),
        ("A3", other_pm, core, "USD", {"AAA": [(10, 100)], "MMM": [(30, 10)]}, {"USD": 500}),
    ):  # fmt: skip
        account = Portfolio.objects.create(
            code=code, name=f"Account {code}", manager=manager, model=model, base_currency=base
        )
        for ticker, lots in holdings.items():
            Position.objects.create(
                portfolio=account, security=securities[ticker], quantity=sum(q for q, _ in lots)
            )
            for quantity, unit_cost in lots:
                TaxLot.objects.create(
                    portfolio=account,
                    security=securities[ticker],
                    quantity=quantity,
                    original_quantity=quantity,
                    unit_cost=unit_cost,
                    acquired_on=today - timedelta(days=30),
                )
        for currency, amount in cash.items():
            CashBalance.objects.create(portfolio=account, currency=currency, amount=amount)
        accounts[code] = account
    return {"securities": securities, "accounts": accounts, "core": core, "income": income}


def money(*figures) -> tuple[Decimal, ...]:
    return tuple(Decimal(str(f)).quantize(Decimal("0.01")) for f in figures)


def figures(row: dict) -> tuple:
    return tuple(row[f] for f in ("market_value", "cash", "nav", "unrealised_pnl", "day_pnl"))
