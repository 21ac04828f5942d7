"""Shared fixtures: personas (one user per role, a second PM, an outsider), a small
book (securities, prices, a model, an account that drifts) and service toggles.

A test that needs a real service it cannot reach is skipped, except when
OMS_REQUIRE_SERVICES=1, where it fails: CI never silently skips.
"""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from hypothesis import settings as hypothesis_settings

from oms.roles import Role

REQUIRE_SERVICES = os.environ.get("OMS_REQUIRE_SERVICES") == "1"

# The processes the suite starts (a Celery worker, a FIX gateway, manage.py commands)
# run against the test database, outside the embedded demo: they refuse to start
# without a key of their own (config/settings.py), so they get the suite's.
os.environ.setdefault("SECRET_KEY", "test-suite-only-key-signs-nothing-outside-the-tests")

# In CI the property and fuzz tests replay the same examples on every run, so that a
# submission's result does not depend on luck; locally they explore new ones each time.
# No deadline in either: an example's wall-clock time measures the machine's load (two
# cores shared with other runs), not the code, and tests never assert on time.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, deadline=None)
hypothesis_settings.register_profile("local", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "local")


def service_missing(reason: str) -> None:
    """Skip, or fail where CI demands every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _flush_empties_the_audit_trail():
    """A transactional test's flush empties the audit trail too (tests/scratchdb.py)."""
    from tests.scratchdb import flush_past_the_trail_triggers

    with flush_past_the_trail_triggers():
        yield


@pytest.fixture(autouse=True)
def _test_settings(settings):
    # The real hashers are slow by design; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The audit trail's checkpoints are signed with a key of the test's, never var/'s.
    settings.OMS_AUDIT_SEAL_KEY = "test-audit-seal-key"
    # Pages render without a collectstatic run: no manifest of fingerprinted names.
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    # Failed-login counters of their own, empty for each test: a test's failures must
    # not lock out the next test's logins (nor linger in a shared Redis).
    settings.CACHES = settings.CACHES | {
        "login-throttle": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "login-throttle",
        }
    }
    settings.OMS_LOGIN_THROTTLE_CACHE = "login-throttle"
    from django.core.cache import caches

    caches["login-throttle"].clear()
    # The quote service remembers tickers' ids and holds unflushed bars in the process:
    # an earlier test's (its rows gone) must not reach this test's database (a bar of a
    # security deleted since failed a foreign key on PostgreSQL).
    from portfolios import quotecache
    from portfolios.services import quotes

    quotes.bars_discard()
    quotes.reference_forget()
    # Nor may its latest quotes: an EUR/USD an earlier test quoted valued this test's
    # euros at that rate, not at the rate this test's book gives.
    empty_quote_store(quotecache.store())


def empty_quote_store(store) -> None:
    """Forget every latest quote of `store` (Redis: the quote keys; Django's cache, the
    embedded default, is the process's own: all of it)."""
    from portfolios import quotecache

    if isinstance(store, quotecache.RedisQuoteStore):
        keys = list(store.client.scan_iter(match=quotecache.KEY + "*", count=1000))
        if keys:
            store.client.delete(*keys)
    else:
        from django.core.cache import cache

        cache.clear()


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, role: Role | None = None, **extra):
        user = django_user_model.objects.create_user(
            username=username, password="pw-" + username, **extra
        )
        if role is not None:
            # get_or_create: a transactional test flushes the groups the migration made.
            user.groups.add(Group.objects.get_or_create(name=role.value)[0])
        return user

    return make


@pytest.fixture
def pm(make_user):
    return make_user("pm", Role.PORTFOLIO_MANAGER)


@pytest.fixture
def other_pm(make_user):
    return make_user("pm2", Role.PORTFOLIO_MANAGER)


@pytest.fixture
def trader(make_user):
    return make_user("trader", Role.TRADER)


@pytest.fixture
def compliance_officer(make_user):
    return make_user("compliance", Role.COMPLIANCE)


@pytest.fixture
def ops(make_user):
    return make_user("ops", Role.OPERATIONS, is_staff=True)


@pytest.fixture
def superuser_client(ops, client):
    """A page client signed in as operations made superuser: who uses the admin."""
    ops.is_superuser = True
    ops.is_staff = True
    ops.save(update_fields=["is_superuser", "is_staff"])
    client.force_login(ops)
    return client


@pytest.fixture
def outsider(make_user):
    return make_user("outsider")


@pytest.fixture
def personas(pm, trader, compliance_officer, ops, outsider):
    return {
        "pm": pm,
        "trader": trader,
        "compliance": compliance_officer,
        "ops": ops,
        "outsider": outsider,
    }


@pytest.fixture
def eager_celery(settings):
    """Tasks run in the caller's process when their on_commit hook fires."""
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def book(db, pm):
    """A small book: five securities (one in EUR), prices, FX, a model and two accounts
    of the PM that drift from it, and the simulated broker."""
    from portfolios.models import (
        CashBalance,
        FxRate,
        ModelPortfolio,
        ModelTarget,
        Portfolio,
        Position,
        Price,
        Security,
        TaxLot,
    )
    from trading.models import Broker

    today = timezone.now().date()
    specs = [
        ("AAA", "USD", "100", "equity"),
        ("BBB", "USD", "50", "equity"),
        ("CCC", "USD", "20", "fixed_income"),
        ("DDD", "EUR", "40", "equity"),
        ("EEE", "USD", "10", "equity"),
    ]
    securities = {}
    for ticker, currency, px, asset_class in specs:
        security = Security.objects.create(
            ticker=ticker, name=f"{ticker} Corp", asset_class=asset_class, currency=currency
        )
        Price.objects.create(
            security=security, as_of=today - timedelta(days=1), price=Decimal(px) - 1
        )
        Price.objects.create(security=security, as_of=today, price=Decimal(px))
        securities[ticker] = security
    FxRate.objects.create(currency="EUR", quote="USD", as_of=today, rate=Decimal("1.1"))
    model = ModelPortfolio.objects.create(
        name="Core", cash_weight=Decimal("0.05"), band_absolute=Decimal("0.01")
    )
    for ticker, weight in (("AAA", "0.40"), ("BBB", "0.30"), ("CCC", "0.15"), ("DDD", "0.10")):
        ModelTarget.objects.create(model=model, security=securities[ticker], weight=Decimal(weight))
    accounts = []
    for code, holdings, cash in (
        ("ACC1", {"AAA": 600, "BBB": 100, "EEE": 500}, "20000"),
        ("ACC2", {"AAA": 100, "BBB": 700, "CCC": 500}, "5000"),
    ):
        portfolio = Portfolio.objects.create(
            code=code, name=f"Account {code}", manager=pm, model=model, cash_floor=Decimal("500")
        )
        for ticker, quantity in holdings.items():
            Position.objects.create(
                portfolio=portfolio, security=securities[ticker], quantity=quantity
            )
            TaxLot.objects.create(
                portfolio=portfolio,
                security=securities[ticker],
                quantity=quantity,
                original_quantity=quantity,
                unit_cost=Decimal("30"),
                acquired_on=today - timedelta(days=400),
            )
        CashBalance.objects.create(portfolio=portfolio, currency="USD", amount=Decimal(cash))
        accounts.append(portfolio)
    broker = Broker.objects.create(
        code="SIM", name="Simulated", settings={"partial_fills": 2, "latency": 0}
    )
    return {"securities": securities, "model": model, "accounts": accounts, "broker": broker}
