"""Demo data: securities in two asset classes and two currencies, prices, models,
accounts drifting from their models, a simulated broker and one user per role.

Deterministic (seeded), and loaded once: a second load finds it there and stops.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from audit.services import audit_record, audited_transaction
from compliance.models import RestrictedList, Rule
from compliance.services.rules import restricted_list_create, rule_create
from oms.numbers import money
from oms.numbers import price as round_price
from oms.roles import Role
from portfolios import terms
from portfolios.instruments import CurrencyPair
from portfolios.instruments.settlement import fx_forward_value_date
from portfolios.models import (
    AssetClass,
    CashBalance,
    FxRate,
    ModelPortfolio,
    ModelSleeve,
    ModelTarget,
    Portfolio,
    Position,
    Price,
    Security,
    TaxLot,
)
from portfolios.services.drift import drift_refresh
from trading.models import Broker, FixSession

DEMO_PASSWORD = "demo-pass-2026"
DEMO_USERS = [
    # username, role, full name
    ("pm", Role.PORTFOLIO_MANAGER, "Pat Morgan"),
    ("pm2", Role.PORTFOLIO_MANAGER, "Robin Diaz"),
    ("trader", Role.TRADER, "Terry Rhodes"),
    ("compliance", Role.COMPLIANCE, "Casey Lee"),
    ("ops", Role.OPERATIONS, "Olive Singh"),
]

# ticker, name, asset class, currency, sector, country, price
EQUITIES_US = [
    ("AAPL", "Apple Inc.", "Information Technology", 228.0),
    ("MSFT", "Microsoft Corp.", "Information Technology", 415.0),
    ("NVDA", "NVIDIA Corp.", "Information Technology", 135.0),
    ("AMZN", "Amazon.com Inc.", "Consumer Discretionary", 198.0),
    ("GOOGL", "Alphabet Inc. Class A", "Communication Services", 172.0),
    ("META", "Meta Platforms Inc.", "Communication Services", 560.0),
    ("JPM", "JPMorgan Chase & Co.", "Financials", 222.0),
    ("V", "Visa Inc.", "Financials", 290.0),
    ("JNJ", "Johnson & Johnson", "Health Care", 158.0),
    ("UNH", "UnitedHealth Group Inc.", "Health Care", 590.0),
    ("PG", "Procter & Gamble Co.", "Consumer Staples", 168.0),
    ("KO", "Coca-Cola Co.", "Consumer Staples", 64.0),
    ("PEP", "PepsiCo Inc.", "Consumer Staples", 158.0),
    ("XOM", "Exxon Mobil Corp.", "Energy", 118.0),
    ("CVX", "Chevron Corp.", "Energy", 155.0),
    ("HD", "Home Depot Inc.", "Consumer Discretionary", 395.0),
    ("MRK", "Merck & Co. Inc.", "Health Care", 101.0),
    ("ABBV", "AbbVie Inc.", "Health Care", 175.0),
    ("COST", "Costco Wholesale Corp.", "Consumer Staples", 890.0),
    ("WMT", "Walmart Inc.", "Consumer Staples", 82.0),
    ("BAC", "Bank of America Corp.", "Financials", 44.0),
    ("CSCO", "Cisco Systems Inc.", "Information Technology", 57.0),
    ("ORCL", "Oracle Corp.", "Information Technology", 170.0),
    ("INTC", "Intel Corp.", "Information Technology", 23.0),
    ("T", "AT&T Inc.", "Communication Services", 22.0),
    ("VZ", "Verizon Communications Inc.", "Communication Services", 42.0),
    ("DIS", "Walt Disney Co.", "Communication Services", 96.0),
    ("NKE", "Nike Inc.", "Consumer Discretionary", 78.0),
    ("MCD", "McDonald's Corp.", "Consumer Discretionary", 290.0),
    ("CAT", "Caterpillar Inc.", "Industrials", 380.0),
]
EQUITIES_EU = [
    ("ASML", "ASML Holding NV", "Information Technology", "NL", 640.0),
    ("SAP", "SAP SE", "Information Technology", "DE", 220.0),
    ("MC", "LVMH Moet Hennessy Louis Vuitton SE", "Consumer Discretionary", "FR", 620.0),
    ("SIE", "Siemens AG", "Industrials", "DE", 185.0),
    ("TTE", "TotalEnergies SE", "Energy", "FR", 57.0),
    ("SAN", "Sanofi SA", "Health Care", "FR", 95.0),
    ("ALV", "Allianz SE", "Financials", "DE", 290.0),
    ("OR", "L'Oreal SA", "Consumer Staples", "FR", 340.0),
    ("BN", "Danone SA", "Consumer Staples", "FR", 66.0),
    ("ENEL", "Enel SpA", "Utilities", "IT", 7.0),
]
FUNDS = [
    # ticker, name, asset class, currency, price, fractional
    ("AGG", "iShares Core US Aggregate Bond ETF", AssetClass.FIXED_INCOME, "USD", 98.0, False),
    ("BND", "Vanguard Total Bond Market ETF", AssetClass.FIXED_INCOME, "USD", 72.0, False),
    ("TLT", "iShares 20+ Year Treasury Bond ETF", AssetClass.FIXED_INCOME, "USD", 92.0, False),
    (
        "LQD",
        "iShares iBoxx Investment Grade Corporate Bond ETF",
        AssetClass.FIXED_INCOME,
        "USD",
        108.0,
        False,
    ),
    ("SHY", "iShares 1-3 Year Treasury Bond ETF", AssetClass.FIXED_INCOME, "USD", 82.0, False),
    ("VTI", "Vanguard Total Stock Market ETF", AssetClass.ETF, "USD", 285.0, True),
    ("VXUS", "Vanguard Total International Stock ETF", AssetClass.ETF, "USD", 62.0, True),
    (
        "IEAC",
        "iShares Core EUR Corporate Bond UCITS ETF",
        AssetClass.FIXED_INCOME,
        "EUR",
        124.0,
        False,
    ),
    ("EUNH", "iShares Core EUR Govt Bond UCITS ETF", AssetClass.FIXED_INCOME, "EUR", 112.0, False),
    ("CSPX", "iShares Core S&P 500 UCITS ETF", AssetClass.ETF, "USD", 590.0, False),
]
GOVERNMENT_BONDS = [
    # ticker, name, issuer, currency, country, price: government securities, which the
    # UCITS 5/10/40 test leaves out and the 1940 Act test counts as qualifying (the
    # Treasury ETFs above are funds, not government securities)
    ("UST10", "US Treasury 4.25% 2034", "United States Treasury", "USD", "US", 98.5),
    ("DBR34", "Bund 2.60% 2034", "Federal Republic of Germany", "EUR", "DE", 101.2),
]

MODELS = {
    "Global Growth": (
        Decimal("0.02"),
        {
            "AAPL": 10,
            "MSFT": 10,
            "NVDA": 8,
            "AMZN": 8,
            "GOOGL": 7,
            "META": 6,
            "ASML": 7,
            "SAP": 6,
            "MC": 5,
            "V": 6,
            "UNH": 5,
            "COST": 5,
            "SIE": 5,
            "CAT": 5,
            "VXUS": 5,
        },
    ),
    "Balanced 60/40": (
        Decimal("0.03"),
        {
            "VTI": 20,
            "VXUS": 10,
            "JPM": 5,
            "JNJ": 5,
            "PG": 5,
            "XOM": 4,
            "ALV": 4,
            "SAN": 4,
            "AGG": 14,
            "BND": 10,
            "TLT": 5,
            "LQD": 6,
            "IEAC": 5,
        },
    ),
    "Income": (
        Decimal("0.05"),
        {
            "KO": 8,
            "PEP": 8,
            "VZ": 7,
            "T": 6,
            "MRK": 7,
            "ABBV": 7,
            "CVX": 7,
            "TTE": 6,
            "ENEL": 4,
            "AGG": 10,
            "SHY": 10,
            "EUNH": 8,
            "LQD": 7,
        },
    ),
}
EUR_USD = 1.08
#: Accounts `manage.py load_demo_data` (and so `make demo`) loads: enough for the drift
#: dashboard to mean something.
DEMO_ACCOUNTS = 300


def demo_loaded() -> bool:
    return Security.objects.filter(ticker="AAPL").exists() and Portfolio.objects.exists()


@audited_transaction()
def load_demo_data(*, seed: int = 2026, accounts: int = 20, days: int = 30) -> dict:
    """Load the demo book. Returns what was created. (`manage.py load_demo_data`, and
    so `make demo`, loads DEMO_ACCOUNTS accounts.)"""
    rng = random.Random(seed)
    users = _users()
    securities = _securities()
    today = timezone.now().date()
    latest = _prices(securities, rng, today, days)
    for back in range(days):
        day = today - timedelta(days=back)
        FxRate.objects.get_or_create(
            currency="EUR",
            quote="USD",
            as_of=day,
            defaults={"rate": Decimal(str(round(EUR_USD * (1 + rng.uniform(-0.01, 0.01)), 6)))},
        )
    _fx_prices(securities, today, days)
    models = _models(securities)
    portfolios = _accounts(users, models, securities, latest, rng, accounts, today)
    _multi_asset_account(users["pm2"], securities, latest, today)
    _model_of_models(models)

    Broker.objects.get_or_create(
        code="SIM",
        defaults={
            "name": "Simulated broker",
            "adapter": Broker.Adapter.SIMULATED,
            # it takes the fractional shares the demo's fractional ETFs trade in (the
            # FIX simulator, like many brokers, takes whole shares only)
            "settings": {"partial_fills": 2, "fractional": True},
        },
    )
    _fix_broker()
    rule_book = _rule_book(users["compliance"])
    # The dashboard reads stored drift: compute it for the whole book once, in bulk.
    drift_refresh()
    audit_record(
        actor=users["ops"],
        kind="demo.loaded",
        obj=users["ops"],
        after={
            "securities": len(securities),
            "models": len(models),
            "portfolios": len(portfolios),
            "rules": rule_book,
        },
    )
    return {
        "securities": len(securities),
        "models": len(models),
        "portfolios": len(portfolios),
        "rules": rule_book,
    }


#: The demo's rule book: name, kind, parameters, severity, description. Severities are
#: chosen so that the demo's rebalance goes through while a fat-finger order does not:
#: a hand-entered buy of 1,000,000 AAPL in a $527k account is rejected (order value),
#: before anyone can approve it. The demo's accounts are not UCITS funds, hold all their
#: cash in USD while buying EUR stocks (the rebalancer trades no FX), so UCITS 5/10/40
#: and the per-currency overdraft are recorded as warnings.
DEMO_RULES = [
    (
        "Maximum order value $1m",
        "max_order_notional",
        {"limit": 1_000_000},
        "hard",
        "No single order worth more than $1,000,000.",
    ),
    ("Long only", "no_short", {}, "hard", "No account may go short."),
    (
        "Firm restricted list",
        "restricted",
        {"list": ["Firm restricted"], "sides": ["buy", "sell_short"]},
        "hard",
        "No buys or short sales of what the firm restricts.",
    ),
    (
        "Issuer max 25%",
        "max_weight",
        {"group_by": "issuer", "limit": 0.25},
        "soft",
        "No issuer above 25% of an account.",
    ),
    (
        "Sector max 45%",
        "max_weight",
        {"group_by": "sector", "limit": 0.45},
        "soft",
        "No sector above 45% of an account.",
    ),
    (
        "Minimum cash 0.03%",
        "min_cash",
        {"limit": 0.0003},
        "soft",
        "Cash, all currencies together, stays above 0.03% of NAV.",
    ),
    (
        "No overdraft per currency",
        "no_overdraft",
        {},
        "warning",
        "No currency's balance below zero (a warning: the demo funds EUR buys from USD).",
    ),
    ("UCITS 5/10/40", "ucits_5_10_40", {}, "warning", "The UCITS issuer concentration test."),
]


def _rule_book(officer) -> int:
    """The demo's restricted list and rules, made by the compliance officer through the
    compliance services (validated, versioned, audited)."""
    if not RestrictedList.objects.filter(name="Firm restricted").exists():
        restricted_list_create(
            actor=officer,
            name="Firm restricted",
            tickers=["INTC"],
            issuers=["Bank of America Corp."],
            description="Securities and issuers the firm may not buy.",
            reason="Demo rule book",
        )
    made = 0
    for name, kind, params, severity, description in DEMO_RULES:
        if Rule.objects.filter(name=name).exists():
            continue
        rule_create(
            actor=officer,
            name=name,
            kind=kind,
            params=params,
            severity=severity,
            description=description,
        )
        made += 1
    return made


def _fix_broker() -> None:
    """FIXSIM: the FIX simulator (`python -m trading.fix.simulator`), reached over
    FIX through the gateway (`manage.py fix_gateway FIXSIM`), as a real broker is."""
    import os

    broker, _ = Broker.objects.get_or_create(
        code="FIXSIM",
        defaults={"name": "FIX simulator (over FIX)", "adapter": Broker.Adapter.FIX},
    )
    FixSession.objects.get_or_create(
        broker=broker,
        defaults={
            "begin_string": FixSession.BeginString.FIX44,
            "sender_comp_id": "OMS",
            "target_comp_id": "BROKER",
            "host": os.environ.get("OMS_FIX_SIMULATOR_HOST", "127.0.0.1"),
            "port": int(os.environ.get("OMS_FIX_SIMULATOR_PORT", "9878")),
            "heartbeat_interval": 30,
        },
    )


def _users() -> dict:
    User = get_user_model()
    users = {}
    for username, role, full_name in DEMO_USERS:
        first, last = full_name.split(" ", 1)
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com"},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            if role == Role.OPERATIONS:
                user.is_staff = user.is_superuser = True
            user.save()
        user.groups.add(Group.objects.get_or_create(name=role.value)[0])
        users[username] = user
    return users


def _securities() -> dict[str, Security]:
    rows = []
    for ticker, name, sector, px in EQUITIES_US:
        rows.append(
            {
                "ticker": ticker,
                "name": name,
                "asset_class": AssetClass.EQUITY,
                "currency": "USD",
                "sector": sector,
                "issuer": name,
                "country": "US",
                "_px": px,
            }
        )
    for ticker, name, sector, country, px in EQUITIES_EU:
        rows.append(
            {
                "ticker": ticker,
                "name": name,
                "asset_class": AssetClass.EQUITY,
                "currency": "EUR",
                "sector": sector,
                "issuer": name,
                "country": country,
                "_px": px,
            }
        )
    for ticker, name, asset_class, currency, px, fractional in FUNDS:
        rows.append(
            {
                "ticker": ticker,
                "name": name,
                "asset_class": asset_class,
                "currency": currency,
                # A fund has no sector of its own, and each fund is an issuer of its own
                # (its sponsor is not): concentration limits see through neither.
                "sector": "",
                "issuer": name,
                "country": "US" if currency == "USD" else "IE",
                "fractional": fractional,
                "_px": px,
            }
        )
    for ticker, name, issuer, currency, country, px in GOVERNMENT_BONDS:
        rows.append(
            {
                "ticker": ticker,
                "name": name,
                "asset_class": AssetClass.FIXED_INCOME,
                "currency": currency,
                "sector": "Government",
                "issuer": issuer,
                "country": country,
                "government": True,
                "_px": px,
            }
        )
    securities = {}
    for row in rows:
        px = row.pop("_px")
        security, _ = Security.objects.get_or_create(ticker=row["ticker"], defaults=row)
        security._demo_price = px
        securities[security.ticker] = security
    for row in _instruments(timezone.now().date()):
        px = row.pop("_px")
        underlying = row.pop("_underlying", None)
        security = Security.objects.filter(ticker=row["ticker"]).first()
        if security is None:
            security = Security(**row, underlying=securities.get(underlying))
            security.full_clean()  # the terms checked as the admin and the API check them
            security.save()
        security._demo_price = px
        securities[security.ticker] = security
    return securities


#: What the multi-asset account holds of the demo's bonds and derivatives: quantities
#: in each one's own unit (face value, contracts).
MULTI_ASSET_HOLDINGS = {
    "T4.375-2034": Decimal(100_000),
    "AAPL4.65-2046": Decimal(50_000),
    "CL": Decimal(2),
    "AAPL-CALL": Decimal(10),
    "AAPL-WEEKLY": Decimal(2),
}


def _multi_asset_account(manager, securities, latest, today) -> Portfolio:
    """MULTI01, pm2's account without a model, holding a Treasury note, a corporate
    note, crude oil futures and Apple calls (one expiring next week), each valued by its own terms (a bond at
    face x price / 100 plus accrued interest, a contract at price x multiplier)."""
    account, created = Portfolio.objects.get_or_create(
        code="MULTI01",
        defaults={
            "name": "Multi-asset 001",
            "manager": manager,
            "base_currency": "USD",
            "cash_floor": Decimal(1000),
        },
    )
    if not created:
        return account
    [future] = [s for s in securities.values() if s.asset_class == "future"]
    calls = sorted(
        (s for s in securities.values() if s.asset_class == "option"), key=lambda s: s.expiry
    )
    held = {
        "T4.375-2034": securities["T4.375-2034"],
        "AAPL4.65-2046": securities["AAPL4.65-2046"],
        "CL": future,
        "AAPL-WEEKLY": calls[0],
        "AAPL-CALL": calls[-1],
    }
    for key, security in held.items():
        quantity = MULTI_ASSET_HOLDINGS[key]
        Position.objects.create(portfolio=account, security=security, quantity=quantity)
        TaxLot.objects.create(
            portfolio=account,
            security=security,
            quantity=quantity,
            original_quantity=quantity,
            unit_cost=latest[security.ticker],
            acquired_on=today - timedelta(days=20),
        )
    CashBalance.objects.create(portfolio=account, currency="USD", amount=Decimal(250_000))
    return account


_MONTH_CODES = "FGHJKMNQUVXZ"  # the exchanges' futures month codes, January to December


def _instruments(today: date) -> list[dict]:
    """The demo's bonds and listed derivatives, ordered and valued by their own terms
        (portfolios.terms): a US Treasury note and an Apple note (face value at % of par,
        accrued interest), a NYMEX crude oil future about three months out (1,000 barrels a
        contract), an Apple call (100 shares a contract) about two months out and a weekly one
    in the money that expires next week. The
        derivatives' dates follow today, so that the demo can always trade them."""
    delivery = (today.replace(day=1) + timedelta(days=95)).replace(day=1)
    # CL stops trading about three business days before the 25th of the month before
    # delivery: the 20th of that month is near enough for the demo.
    crude_expiry = (delivery - timedelta(days=1)).replace(day=20)
    month = (today.replace(day=1) + timedelta(days=62)).replace(day=1)
    friday = month + timedelta(days=(4 - month.weekday()) % 7 + 14)  # the third Friday
    # a weekly Apple call in the money that expires next week: the life-cycle page
    # shows it due, and the day after its expiry it is exercised into shares
    near = today + timedelta(days=(4 - today.weekday()) % 7 + 7)
    return [
        {
            "ticker": "T4.375-2034",
            "name": "US Treasury 4.375% note due 15 May 2034",
            "asset_class": AssetClass.BOND,
            "currency": "USD",
            "sector": "Government",
            "issuer": "United States Treasury",
            "country": "US",
            "government": True,
            "coupon_rate": Decimal("0.04375"),
            "coupon_frequency": 2,
            "day_count": "ACT/ACT ICMA",
            "issue_date": date(2024, 5, 15),
            "maturity": date(2034, 5, 15),
            # $100 and multiples since April 2008 (Treasury press release, 21 March 2008)
            "min_quantity": Decimal(100),
            "round_lot": Decimal(100),
            "_px": 99.2,
        },
        {
            "ticker": "AAPL4.65-2046",
            "name": "Apple Inc. 4.65% note due 23 February 2046",
            "asset_class": AssetClass.BOND,
            "currency": "USD",
            "sector": "Information Technology",
            "issuer": "Apple Inc.",
            "country": "US",
            "coupon_rate": Decimal("0.0465"),
            "coupon_frequency": 2,
            "day_count": "30/360 US",
            "issue_date": date(2016, 2, 23),
            "maturity": date(2046, 2, 23),
            # "$2,000 and integral multiples of $1,000 in excess thereof"
            "min_quantity": Decimal(2000),
            "round_lot": Decimal(1000),
            "_px": 92.5,
        },
        {
            "ticker": f"CL{_MONTH_CODES[delivery.month - 1]}{delivery.year % 100:02d}",
            "name": f"NYMEX light sweet crude oil {delivery:%b %Y}",
            "asset_class": AssetClass.FUTURE,
            "currency": "USD",
            "sector": "Energy",
            "issuer": "NYMEX",
            "country": "US",
            "multiplier": Decimal(1000),
            "contract_unit": "1,000 barrels",
            "expiry": crude_expiry,
            "_px": 71.5,
        },
        _apple_call(friday, 230, 8.5),
        _apple_call(near, 200, 29.0, " (weekly)"),
        *_fx_instruments(today),
    ]


def _apple_call(expiry: date, strike: int, px: float, kind: str = "") -> dict:
    """A listed call on the Apple shares the demo holds: 100 shares a contract."""
    return {
        "ticker": f"AAPL{expiry:%y%m%d}C{strike}",
        "name": f"Apple call {strike} {expiry:%d %b %Y}{kind}",
        "asset_class": AssetClass.OPTION,
        "currency": "USD",
        "sector": "Information Technology",
        "issuer": "Apple Inc.",
        "country": "US",
        "multiplier": Decimal(100),
        "option_right": "call",
        "strike": Decimal(strike),
        "expiry": expiry,
        "_underlying": "AAPL",
        "_px": px,
    }


#: Forward points of the demo's three-month EUR/USD outright (points of 0.0001): the
#: dollar's rates above the euro's put the euro at a premium forward.
EUR_USD_3M_POINTS = 45


def _fx_instruments(today: date) -> list[dict]:
    """EUR/USD spot and a three-month outright for MULTI01 to trade: the quantity is an
    amount of euros, the price the rate in dollars per euro; the forward's value date is
    three months after today's spot date on the euro's and the dollar's calendars."""
    pair = CurrencyPair("EUR", "USD")
    calendars = {c: terms.currency_calendar(c) for c in ("EUR", "USD")}
    value_date = fx_forward_value_date(pair.base, pair.quote, today, "3M", calendars)
    fx = {
        "asset_class": AssetClass.FX_SPOT,
        "currency": "USD",
        "base_currency": "EUR",
        "sector": "",
        "issuer": "",
        "country": "",
        "tick_size": Decimal("0.00001"),
        "min_quantity": Decimal("0.01"),
        "round_lot": Decimal("0.01"),
        "fractional": True,
        "_px": 0,
    }
    return [
        fx | {"ticker": "EURUSD", "name": "EUR/USD spot"},
        fx
        | {
            "ticker": f"EURUSD-{value_date:%Y%m%d}",
            "name": f"EUR/USD outright for value {value_date:%d %b %Y}",
            "asset_class": AssetClass.FX_FORWARD,
            "value_date": value_date,
            "_px": EUR_USD_3M_POINTS,
        },
    ]


def _prices(securities, rng, today, days) -> dict[str, Decimal]:
    latest = {}
    new = []
    for ticker, security in securities.items():
        if security.asset_class in terms.FX_KINDS:
            continue  # priced from the day's FX rates (_fx_prices)
        px = security._demo_price
        path = []
        for _ in range(days):
            px *= 1 + rng.gauss(0.0003, 0.012)
            path.append(px)
        for back, value in enumerate(reversed(path)):
            new.append(
                Price(
                    security=security,
                    as_of=today - timedelta(days=back),
                    price=round_price(round(value, 2)),
                    source="demo",
                )
            )
        latest[ticker] = round_price(round(path[-1], 2))
    Price.objects.bulk_create(new, ignore_conflicts=True)
    return latest


def _fx_prices(securities, today, days) -> None:
    """The EUR/USD spot's price each day is that day's EUR/USD rate in five places (so
    that the spot trades at the rate cash is converted at), the outright's that plus its
    forward points (``_demo_price``, in points of 0.0001)."""
    rates = dict(
        FxRate.objects.filter(
            currency="EUR", quote="USD", as_of__gt=today - timedelta(days=days)
        ).values_list("as_of", "rate")
    )
    Price.objects.bulk_create(
        [
            Price(
                security=security,
                as_of=day,
                price=round_price(
                    rate.quantize(Decimal("0.00001")) + Decimal(security._demo_price) / 10_000
                ),
                source="demo",
            )
            for security in securities.values()
            if security.asset_class in terms.FX_KINDS
            for day, rate in rates.items()
        ],
        ignore_conflicts=True,
    )


def _models(securities) -> dict[str, ModelPortfolio]:
    models = {}
    for name, (cash, targets) in MODELS.items():
        model, _ = ModelPortfolio.objects.get_or_create(
            name=name,
            defaults={
                "cash_weight": cash,
                "band_absolute": Decimal("0.02"),
                "description": f"Demo model: {name}",
            },
        )
        scale = (1 - cash) / sum(targets.values())
        weights = {t: (Decimal(w) * scale).quantize(Decimal("0.0001")) for t, w in targets.items()}
        # Put the rounding residue on the largest weight, so that weights + cash = 1 exactly.
        biggest = max(weights, key=weights.get)
        weights[biggest] += 1 - cash - sum(weights.values())
        for ticker, weight in weights.items():
            ModelTarget.objects.get_or_create(
                model=model, security=securities[ticker], defaults={"weight": weight}
            )
        models[name] = model
    return models


def _model_of_models(models) -> None:
    """A model holding two others as sleeves (no account on it yet: the PM assigns)."""
    model, created = ModelPortfolio.objects.get_or_create(
        name="Growth and Income sleeves",
        defaults={
            "cash_weight": Decimal(0),
            "band_absolute": Decimal("0.02"),
            "description": "Demo model of models: 70% Global Growth, 30% Income",
        },
    )
    if created:
        for sleeve, weight in (("Global Growth", "0.7"), ("Income", "0.3")):
            ModelSleeve.objects.create(model=model, sleeve=models[sleeve], weight=Decimal(weight))


def _accounts(managers, models, securities, latest, rng, count, today) -> list[Portfolio]:
    """The demo's accounts, made in bulk (a few statements for hundreds of accounts).

    The first twenty are the walkthrough's (ACC001..ACC020: the PM's, in USD); past
    them every third account is the second PM's and every fifth is in EUR, so that the
    drift dashboard has managers and currencies to filter by."""
    names = ["Pension", "Foundation", "Family Trust", "Endowment", "Retirement", "Charity"]
    model_list = list(models.values())
    targets = {
        model.pk: list(model.targets.select_related("security").order_by("-weight", "pk"))
        for model in model_list
    }
    codes = [f"ACC{i:03d}" for i in range(1, count + 1)]
    known = set(Portfolio.objects.filter(code__in=codes).values_list("code", flat=True))
    new = []
    for i in range(1, count + 1):
        if codes[i - 1] in known:
            continue
        extra = i > 20
        new.append(
            Portfolio(
                code=codes[i - 1],
                name=f"{names[i % len(names)]} {i:03d}",
                manager=managers["pm2"] if extra and i % 3 == 0 else managers["pm"],
                model=model_list[(i - 1) % len(model_list)],
                base_currency="EUR" if extra and i % 5 == 0 else "USD",
                cash_floor=Decimal(1000),
            )
        )
    Portfolio.objects.bulk_create(new)
    created = {p.code for p in new}
    portfolios = list(Portfolio.objects.filter(code__in=codes).order_by("code"))
    positions, lots, cash = [], [], []
    for portfolio in portfolios:
        if portfolio.code not in created:
            continue
        value = rng.choice([250_000, 500_000, 1_000_000, 2_500_000])
        # Holdings near the model but drifted: each weight shocked by up to ±40%,
        # and some accounts carry too much cash.
        model = portfolio.model
        cash_weight = float(model.cash_weight) * rng.uniform(0.5, 4.0)
        for target in targets[model.pk]:
            security = target.security
            weight = float(target.weight) * rng.uniform(0.6, 1.4)
            px = float(latest[security.ticker]) * (EUR_USD if security.currency == "EUR" else 1.0)
            quantity = Decimal(int(value * weight / px))
            if quantity <= 0:
                continue
            positions.append(Position(portfolio=portfolio, security=security, quantity=quantity))
            lots.append(
                TaxLot(
                    portfolio=portfolio,
                    security=security,
                    quantity=quantity,
                    original_quantity=quantity,
                    unit_cost=round_price(
                        round(float(latest[security.ticker]) * rng.uniform(0.7, 1.2), 2)
                    ),
                    acquired_on=today - timedelta(days=rng.randint(40, 900)),
                )
            )
        in_base = 1 / EUR_USD if portfolio.base_currency == "EUR" else 1.0
        cash.append(
            CashBalance(
                portfolio=portfolio,
                currency=portfolio.base_currency,
                amount=money(value * cash_weight * in_base),
            )
        )
    Position.objects.bulk_create(positions, batch_size=2000)
    TaxLot.objects.bulk_create(lots, batch_size=2000)
    CashBalance.objects.bulk_create(cash, batch_size=2000)
    return portfolios
