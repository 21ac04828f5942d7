"""Reference data and holdings: securities, prices, FX, accounts, models, rebalance runs."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from oms.numbers import (
    FIGURE_DIGITS,
    MONEY_PLACES,
    PRICE_PLACES,
    QTY_PLACES,
    WEIGHT_DIGITS,
    WEIGHT_PLACES,
    ZERO,
)


def quantity_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=FIGURE_DIGITS, decimal_places=QTY_PLACES, **kwargs)


def price_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=FIGURE_DIGITS, decimal_places=PRICE_PLACES, **kwargs)


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=FIGURE_DIGITS, decimal_places=MONEY_PLACES, **kwargs)


def weight_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=WEIGHT_DIGITS, decimal_places=WEIGHT_PLACES, **kwargs)


class AssetClass(models.TextChoices):
    EQUITY = "equity", "Equity"
    ETF = "etf", "Exchange-traded fund"
    FIXED_INCOME = "fixed_income", "Fixed income"
    MONEY_MARKET = "money_market", "Money market"
    # Priced and booked by their own terms (portfolios.terms, docs/instruments.md):
    BOND = "bond", "Bond"
    FUTURE = "future", "Future"
    OPTION = "option", "Listed option"
    FX_SPOT = "fx_spot", "FX spot"
    FX_FORWARD = "fx_forward", "FX forward"


class DayCount(models.TextChoices):
    """The day counts the instrument engine knows (portfolios.instruments.DayCount)."""

    THIRTY_360_US = "30/360 US", "30/360 US (SIFMA)"
    THIRTY_360 = "30/360", "30/360 bond basis (ISDA)"
    THIRTY_E_360 = "30E/360", "30E/360 Eurobond basis"
    THIRTY_E_360_ISDA = "30E/360 ISDA", "30E/360 ISDA"
    ACT_360 = "ACT/360", "ACT/360"
    ACT_365F = "ACT/365F", "ACT/365 fixed"
    ACT_ACT_ISDA = "ACT/ACT ISDA", "ACT/ACT ISDA"
    ACT_ACT_ICMA = "ACT/ACT ICMA", "ACT/ACT ICMA"


class CouponFrequency(models.IntegerChoices):
    ZERO = 0, "Zero coupon"
    ANNUAL = 1, "Annual"
    SEMI_ANNUAL = 2, "Semi-annual"
    QUARTERLY = 4, "Quarterly"
    MONTHLY = 12, "Monthly"


class OptionRight(models.TextChoices):
    CALL = "call", "Call"
    PUT = "put", "Put"


class SettlementCycle(models.TextChoices):
    """The engine's market cycles (portfolios.instruments.build.SETTLEMENT_CYCLES)."""

    US_SECURITIES = "us_securities", "US securities (T+1 from 28 May 2024)"
    US_TREASURIES = "us_treasuries", "US Treasuries (T+1)"
    LISTED_DERIVATIVES_US = "listed_derivatives_us", "US listed derivatives (T+1)"
    CANADA_SECURITIES = "canada_securities", "Canada (T+1)"
    EU_SECURITIES = "eu_securities", "EU securities (T+2)"
    UK_EQUITIES = "uk_equities", "UK equities (T+2)"
    UK_GILTS = "uk_gilts", "UK gilts (T+1)"
    JAPAN_EQUITIES = "japan_equities", "Japan equities (T+2)"
    MONEY_MARKET_SAME_DAY = "money_market_same_day", "Money market fund (T+0)"


class SecurityQuerySet(models.QuerySet):
    def with_latest_price(self) -> SecurityQuerySet:
        # A price dated after today is not the latest (probing once posted one dated
        # 9999-12-31, which then stayed the latest for good).
        today = timezone.now().date()
        latest = Price.objects.filter(security=OuterRef("pk"), as_of__lte=today).order_by("-as_of")
        return self.annotate(
            latest_price=Subquery(latest.values("price")[:1]),
            latest_price_date=Subquery(latest.values("as_of")[:1]),
        )


class Security(models.Model):
    """An instrument that can be held and traded."""

    ticker = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    asset_class = models.CharField(max_length=20, choices=AssetClass.choices)
    currency = models.CharField(max_length=3)
    isin = models.CharField("ISIN", max_length=12, blank=True, db_index=True)
    cusip = models.CharField("CUSIP", max_length=9, blank=True, db_index=True)
    figi = models.CharField("FIGI", max_length=12, blank=True, db_index=True)
    sector = models.CharField(max_length=100, blank=True)
    issuer = models.CharField(max_length=200, blank=True)
    government = models.BooleanField(
        "government security",
        default=False,
        help_text="Issued or guaranteed by a government or its agencies (a treasury bill, "
        "note or bond): left out of the UCITS 5/10/40 issuer limits, and counted as "
        "qualifying in the 1940 Act diversification test",
    )
    country = models.CharField(max_length=2, blank=True)
    round_lot = quantity_field(
        default=Decimal(1), validators=[MinValueValidator(Decimal("0.000001"))]
    )
    min_quantity = quantity_field(default=Decimal(1), validators=[MinValueValidator(ZERO)])
    tick_size = price_field(
        default=Decimal("0.01"), validators=[MinValueValidator(Decimal("0.00000001"))]
    )
    multiplier = quantity_field(
        default=Decimal(1), validators=[MinValueValidator(Decimal("0.000001"))]
    )
    fractional = models.BooleanField(default=False, help_text="Quantities below one lot allowed")
    is_active = models.BooleanField(default=True)
    # Instrument terms (docs/instruments.md). Which of them a security needs depends on
    # its asset class; portfolios.terms checks them and builds the engine's instrument.
    # A bond's minimum piece is min_quantity and its increment round_lot, in face value;
    # its multiplier is 0.01 (a price in % of par: one unit of face is worth price/100).
    settlement_cycle = models.CharField(
        max_length=30,
        choices=SettlementCycle.choices,
        blank=True,
        help_text="Blank: the asset class's usual cycle in the US",
    )
    coupon_rate = models.DecimalField(
        max_digits=12,
        decimal_places=8,
        null=True,
        blank=True,
        validators=[MinValueValidator(ZERO)],
        help_text="Bonds: the annual coupon as a fraction (0.0425 for 4.25%)",
    )
    coupon_frequency = models.PositiveSmallIntegerField(
        choices=CouponFrequency.choices, null=True, blank=True, help_text="Bonds"
    )
    day_count = models.CharField(
        max_length=16, choices=DayCount.choices, blank=True, help_text="Bonds"
    )
    issue_date = models.DateField(
        null=True, blank=True, help_text="Bonds: the date interest accrues from"
    )
    first_coupon_date = models.DateField(
        null=True, blank=True, help_text="Bonds: only for an odd first coupon period"
    )
    maturity = models.DateField(null=True, blank=True, help_text="Bonds")
    expiry = models.DateField(
        null=True, blank=True, help_text="Futures and options: the last trading day"
    )
    contract_unit = models.CharField(
        max_length=100, blank=True, help_text="Futures: what one contract is (1,000 barrels)"
    )
    underlying = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="derivatives",
        help_text="Options (and futures on a security): what the contract is written on",
    )
    option_right = models.CharField(
        "put or call", max_length=4, choices=OptionRight.choices, blank=True
    )
    strike = price_field(
        null=True, blank=True, validators=[MinValueValidator(ZERO)], help_text="Options"
    )
    base_currency = models.CharField(
        max_length=3,
        blank=True,
        help_text="FX: the pair's base currency (currency is the quote: EUR/USD is EUR, USD)",
    )
    value_date = models.DateField(null=True, blank=True, help_text="FX forwards")

    objects = SecurityQuerySet.as_manager()

    class Meta:
        ordering = ["ticker"]
        verbose_name_plural = "securities"

    def __str__(self) -> str:
        return self.ticker

    def clean(self) -> None:
        # The terms a security's asset class needs, checked by the engine that uses them.
        from portfolios.instruments import InstrumentError
        from portfolios.instruments.money import check_currency
        from portfolios.terms import terms_errors

        errors: dict[str, list[str]] = {}
        # A currency is its ISO code whatever the case it is typed in (as a cash flow's
        # is): "usd" kept as such would match no FX rate, cash balance or account.
        for name in ("currency", "base_currency"):
            code = getattr(self, name)
            if isinstance(code, str) and code.strip():
                setattr(self, name, code.strip().upper())
                try:
                    check_currency(getattr(self, name), name.replace("_", " "))
                except InstrumentError as exc:
                    errors[name] = [str(exc).capitalize() + "."]
        # Models, their CSV imports and the pages read a ticker whatever its case: a
        # second security that differs from one only in case would be one name for two.
        if isinstance(self.ticker, str) and self.ticker:
            same = (
                Security.objects.filter(ticker__iexact=self.ticker)
                .exclude(ticker=self.ticker)
                .exclude(pk=self.pk)
                .values_list("ticker", flat=True)
                .first()
            )
            if same is not None:
                errors["ticker"] = [f"A security with the ticker {same} exists already."]
        if errors:
            raise ValidationError(errors)
        try:
            errors = terms_errors(self)
        except (TypeError, ArithmeticError):
            return  # a field that is not a number or a date yet: clean_fields named it
        if errors:
            raise ValidationError(errors)


class Price(models.Model):
    """A closing (or latest) price of a security on a date, in the security's currency."""

    security = models.ForeignKey(Security, on_delete=models.CASCADE, related_name="prices")
    as_of = models.DateField()
    price = price_field(validators=[MinValueValidator(Decimal("0.00000001"))])
    source = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["security", "-as_of"]
        constraints = [
            models.UniqueConstraint(fields=["security", "as_of"], name="price_unique_per_day"),
            models.CheckConstraint(condition=models.Q(price__gt=0), name="price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.security} {self.as_of} {self.price}"


class FxRate(models.Model):
    """One unit of `currency` is worth `rate` units of `quote` on `as_of`."""

    currency = models.CharField(max_length=3)
    quote = models.CharField(max_length=3)
    as_of = models.DateField()
    rate = models.DecimalField(max_digits=20, decimal_places=10)

    class Meta:
        ordering = ["currency", "quote", "-as_of"]
        verbose_name = "FX rate"
        constraints = [
            models.UniqueConstraint(
                fields=["currency", "quote", "as_of"], name="fx_unique_per_day"
            ),
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="fx_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.currency}/{self.quote} {self.as_of} {self.rate}"


class ModelPortfolio(models.Model):
    """Target weights (securities and cash) with tolerance bands."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    cash_weight = weight_field(default=ZERO, validators=[MinValueValidator(ZERO)])
    band_absolute = weight_field(
        default=Decimal("0.02"), help_text="Tolerance band in weight points, e.g. 0.02 = ±2%"
    )
    band_relative = weight_field(
        default=ZERO, help_text="Tolerance band relative to the target, e.g. 0.25 = ±25% of it"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model portfolio"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("portfolios:model-detail", args=[self.pk])


class ModelTarget(models.Model):
    model = models.ForeignKey(ModelPortfolio, on_delete=models.CASCADE, related_name="targets")
    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="+")
    weight = weight_field(validators=[MinValueValidator(ZERO)])

    class Meta:
        ordering = ["model", "-weight"]
        constraints = [
            models.UniqueConstraint(fields=["model", "security"], name="target_unique_per_model")
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.security} {self.weight}"


class ModelSleeve(models.Model):
    """A model held by another model as one of its targets (a model of models). For
    drift and rebalancing its weight is spread over the sleeve's own targets and cash
    (portfolios.rebalance.sleeves); a model may not hold itself, directly or through
    its sleeves (portfolios.services.models refuses the cycle)."""

    model = models.ForeignKey(ModelPortfolio, on_delete=models.CASCADE, related_name="sleeves")
    sleeve = models.ForeignKey(ModelPortfolio, on_delete=models.PROTECT, related_name="held_by")
    weight = weight_field(validators=[MinValueValidator(ZERO)])

    class Meta:
        ordering = ["model", "-weight"]
        constraints = [
            models.UniqueConstraint(fields=["model", "sleeve"], name="sleeve_unique_per_model"),
            models.CheckConstraint(
                condition=~models.Q(model=models.F("sleeve")), name="sleeve_not_itself"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model}: sleeve {self.sleeve} {self.weight}"


class Portfolio(models.Model):
    """An account: holdings and cash in a base currency, run against a model."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    base_currency = models.CharField(max_length=3, default="USD")
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="managed_portfolios"
    )
    model = models.ForeignKey(
        ModelPortfolio, null=True, blank=True, on_delete=models.SET_NULL, related_name="portfolios"
    )
    cash_floor = money_field(default=ZERO, validators=[MinValueValidator(ZERO)])
    long_only = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("portfolios:portfolio-detail", args=[self.pk])


class CashBalance(models.Model):
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="cash_balances")
    currency = models.CharField(max_length=3)
    amount = money_field(default=ZERO)

    class Meta:
        ordering = ["portfolio", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "currency"], name="cash_unique_per_currency"
            )
        ]

    def __str__(self) -> str:
        return f"{self.portfolio} {self.currency} {self.amount}"


class Position(models.Model):
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="positions")
    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="positions")
    quantity = quantity_field(default=ZERO)

    class Meta:
        ordering = ["portfolio", "security__ticker"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "security"], name="position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.portfolio} {self.security} {self.quantity}"


class TaxLot(models.Model):
    """A purchase still (partly) held: what was paid and when, for gains and lot selection."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="tax_lots")
    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="+")
    quantity = quantity_field(help_text="Quantity still open")
    original_quantity = quantity_field()
    unit_cost = price_field()
    acquired_on = models.DateField()

    class Meta:
        ordering = ["portfolio", "security", "acquired_on", "pk"]
        indexes = [models.Index(fields=["portfolio", "security"])]

    def __str__(self) -> str:
        return f"{self.portfolio} {self.security} {self.quantity}@{self.unit_cost}"


# The holdings' two append-only ledgers (`LotClosing`, `CashMovement`) are put right
# alike: a bust adds a row of the opposite sign that names the row it offsets, and a
# row that a life-cycle event booked names that event.
def reverses_field() -> models.ForeignKey:
    return models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )


def lifecycle_event_field(help_text: str) -> models.ForeignKey:
    return models.ForeignKey(
        "LifecycleEvent",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=help_text,
    )


class LotClosing(models.Model):
    """What a sale took from one tax lot, and what it realised: written when the sale is
    booked (`portfolios.services.holdings`), in the same transaction.

    Append-only: a reversed sale (a broker's trade bust) adds a row of the opposite
    sign that names the row it offsets (`reverses`), so the trail of what was realised
    stays whole and the sums are right. ``allocation_id`` is the trading allocation
    that booked the sale (a plain id: trading sits above portfolios)."""

    class Term(models.TextChoices):
        SHORT = "short", "Short term"
        LONG = "long", "Long term"

    lot = models.ForeignKey(TaxLot, on_delete=models.PROTECT, related_name="closings")
    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="+")
    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="+")
    allocation_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="The allocation that booked the sale"
    )
    quantity = quantity_field(help_text="Taken from the lot (negative on a reversing row)")
    unit_cost = price_field()
    proceeds_per_unit = price_field(help_text="The sale's price, in the security's currency")
    commission = money_field(default=ZERO, help_text="The sale's commission, this lot's share")
    realised_gain = money_field(
        help_text="(proceeds − cost) × multiplier − commission, in the security's currency"
    )
    term = models.CharField(max_length=5, choices=Term.choices)
    closed_on = models.DateField(help_text="The sale's trade date")
    reverses = reverses_field()
    event = lifecycle_event_field("The redemption, settlement, exercise or expiry that closed it")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["portfolio", "security", "closed_on", "pk"]
        indexes = [
            models.Index(fields=["portfolio", "security", "closed_on"]),
            models.Index(fields=["portfolio", "closed_on"]),
        ]

    def __str__(self) -> str:
        return f"{self.lot} closed {self.quantity} on {self.closed_on}"


class CashMovement(models.Model):
    """One cash leg of a booked fill, in one currency, with the day it settles: the
    settlement ledger beside the trade-date balance (`CashBalance.amount`, which moved
    by the same amount when the fill was booked).

    Written by `portfolios.services.holdings` in the transaction that books the fill:
    a share trade's net amount on its market's cycle, a bond's principal plus accrued
    interest, an FX trade's two legs on its value date. Append-only like `LotClosing`:
    a bust adds a row of the opposite sign naming the row it offsets (`reverses`).
    Nothing moves it later: a movement is settled once its value date has come
    (`portfolios.selectors.cash_settlement`). ``allocation_id`` is the trading
    allocation that booked it (a plain id: trading sits above portfolios)."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount = money_field(help_text="Signed: received > 0, paid < 0")
    quantity = quantity_field(
        null=True,
        blank=True,
        help_text="A trade's units, signed: bought > 0, sold < 0 (they change hands on the "
        "value date too); empty for other rows and trades booked before it was kept",
    )
    value_date = models.DateField(help_text="The day the cash changes hands")
    trade_date = models.DateField()
    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="+")
    allocation_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="The allocation that booked it"
    )
    reason = models.CharField(max_length=24, help_text="principal, fx_leg, ...")
    reverses = reverses_field()
    event = lifecycle_event_field("The coupon, redemption, settlement or exercise that moved it")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["portfolio", "value_date", "pk"]
        indexes = [models.Index(fields=["portfolio", "value_date"])]

    def __str__(self) -> str:
        return f"{self.portfolio} {self.currency} {self.amount} value {self.value_date}"


class LifecycleEvent(models.Model):
    """What an instrument's life did to one holding, booked once: a bond's coupon or
    its redemption at maturity, a future's final settlement, an option's exercise,
    assignment, cash settlement or worthless expiry (`portfolios.services.lifecycle`).

    One row per holding and event, held by the database (``lifecycle_event_unique``:
    account, security, event and its date), so booking a day twice books nothing
    twice. The cash it moved is in the settlement ledger (`CashMovement.event`), the
    lots it closed in `LotClosing.event`; ``details`` keeps the figures it used."""

    class Event(models.TextChoices):
        COUPON = "coupon", "Coupon"
        MATURITY = "maturity", "Maturity"
        EXPIRY = "expiry", "Expiry"

    class Outcome(models.TextChoices):
        PAID = "paid", "Coupon paid"
        REDEEMED = "redeemed", "Redeemed at par"
        SETTLED = "settled", "Final settlement"
        EXERCISED = "exercised", "Exercised"
        ASSIGNED = "assigned", "Assigned"
        CASH_SETTLED = "cash_settled", "Cash settled"
        EXPIRED = "expired", "Expired worthless"

    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="+")
    security = models.ForeignKey(Security, on_delete=models.PROTECT, related_name="+")
    event = models.CharField(max_length=10, choices=Event.choices)
    event_date = models.DateField(help_text="The coupon date, maturity or expiry")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    quantity = quantity_field(
        help_text="The holding the event applied to (signed; a coupon's: face on the record date)"
    )
    price = price_field(
        null=True,
        blank=True,
        help_text="Coupon per 100, redemption price, final settlement or underlying price",
    )
    currency = models.CharField(max_length=3)
    amount = money_field(help_text="The cash it moved, signed: received > 0, paid < 0")
    value_date = models.DateField(help_text="The day its cash changes hands")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-event_date", "portfolio", "security", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "security", "event", "event_date"],
                name="lifecycle_event_unique",
            )
        ]
        indexes = [models.Index(fields=["event_date"], name="lifecycle_event_date")]

    def __str__(self) -> str:
        return f"{self.portfolio} {self.security} {self.event} {self.event_date}: {self.outcome}"


class RebalanceRun(models.Model):
    """One rebalance of a set of accounts: its parameters, what-if and proposed orders."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        RELEASED = "released", "Released"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    TRANSITIONS = {
        # A draft whose start the recovery sweep sent again in vain fails (orchestration).
        Status.DRAFT: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
        # A large run computes in chunks on the workers: it may be cancelled meanwhile.
        Status.RUNNING: frozenset({Status.PROPOSED, Status.FAILED, Status.CANCELLED}),
        Status.PROPOSED: frozenset({Status.APPROVED, Status.CANCELLED}),
        Status.APPROVED: frozenset({Status.RELEASED, Status.CANCELLED}),
        Status.RELEASED: frozenset(),
        Status.CANCELLED: frozenset(),
        Status.FAILED: frozenset(),
    }

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    portfolios = models.ManyToManyField(Portfolio, related_name="rebalance_runs")
    parameters = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="What-if per account")
    skipped = models.JSONField(
        default=dict, blank=True, help_text="Accounts skipped, with the reason"
    )
    error = models.TextField(blank=True)
    # Progress of the run's chunks (orchestration writes them as chunks commit).
    accounts_total = models.PositiveIntegerField(default=0)
    accounts_done = models.PositiveIntegerField(default=0, help_text="Including skipped")
    accounts_skipped = models.PositiveIntegerField(default=0)
    orders_proposed = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    #: A run in these states holds its accounts: they may enter no other run.
    OPEN_STATES = frozenset({Status.DRAFT, Status.RUNNING, Status.PROPOSED, Status.APPROVED})

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Rebalance #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("runs:detail", args=[self.pk])


class PriceBar(models.Model):
    """Price history of one instrument (a security's ticker or an FX pair such as
    EUR/USD) over one interval: open, high, low, close and volume of its ticks
    (portfolios.marketdata.bars), never every tick. Written by
    portfolios.services.quotes (bars_flush), which merges a bar fed by two processes."""

    symbol = models.CharField(max_length=32)
    security = models.ForeignKey(
        Security, null=True, blank=True, on_delete=models.CASCADE, related_name="bars"
    )
    start = models.DateTimeField()
    seconds = models.PositiveIntegerField()
    open = price_field()
    high = price_field()
    low = price_field()
    close = price_field()
    volume = quantity_field(default=ZERO)
    ticks = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["symbol", "-start"]
        constraints = [
            models.UniqueConstraint(fields=["symbol", "seconds", "start"], name="bar_unique"),
        ]
        indexes = [
            models.Index(fields=["symbol", "-last_at"], name="bar_symbol_last"),
            models.Index(fields=["last_at"], name="bar_last_at"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.start:%Y-%m-%d %H:%M:%S} {self.close}"


class QuarantinedQuote(models.Model):
    """A quote that failed the checks (portfolios.marketdata.checks) and was not
    applied. It stays held until someone releases it (it is then applied, and becomes
    the price the next jump is measured from) or discards it, each audited."""

    class Status(models.TextChoices):
        HELD = "held", "Held"
        RELEASED = "released", "Released"
        DISCARDED = "discarded", "Discarded"

    TRANSITIONS = {
        Status.HELD: frozenset({Status.RELEASED, Status.DISCARDED}),
        Status.RELEASED: frozenset(),
        Status.DISCARDED: frozenset(),
    }

    symbol = models.CharField(max_length=32)
    security = models.ForeignKey(
        Security, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    venue = models.CharField(max_length=16)
    source = models.CharField(max_length=50)
    quoted_at = models.DateTimeField()
    bid = price_field(null=True, blank=True)
    ask = price_field(null=True, blank=True)
    last = price_field(null=True, blank=True)
    size = quantity_field(default=ZERO)
    reason = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.HELD)
    received_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["status", "-received_at"], name="quarantine_status")]

    def __str__(self) -> str:
        return f"{self.symbol} on {self.venue}: {self.reason}"


class AccountDrift(models.Model):
    """An account's drift figures as last computed by the engine, kept so that pages
    read them instead of running the engine (docs/architecture.md, stored drift).

    Derived data: `portfolios.services.drift.drift_refresh` recomputes it from the
    holdings, cash, model and prices (all audited where they change). The services
    that change those inputs mark the row (`inputs_changed_at`); a figure computed
    before its inputs last changed, or for another model than the account's, is
    stale and shown so. `reason` says why an account cannot be valued (its figures
    are then empty)."""

    portfolio = models.OneToOneField(
        Portfolio, primary_key=True, on_delete=models.CASCADE, related_name="drift_figures"
    )
    model = models.ForeignKey(
        ModelPortfolio, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    base_currency = models.CharField(max_length=3)
    value = money_field(null=True, blank=True, help_text="In the base currency")
    cash_weight = weight_field(null=True, blank=True)
    cash_target = weight_field(null=True, blank=True)
    drift = weight_field(
        null=True, blank=True, help_text="Sum over securities and cash of |weight - target|"
    )
    max_abs_drift = weight_field(null=True, blank=True, help_text="The largest single |drift|")
    largest_drift = weight_field(
        null=True, blank=True, help_text="That drift, signed (weight - target)"
    )
    largest_drift_security = models.ForeignKey(
        Security,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when the largest drift is the cash's",
    )
    out_of_band = models.BooleanField(default=False)
    reason = models.TextField(blank=True, help_text="Why the account cannot be valued")
    prices_as_of = models.DateField(
        null=True, blank=True, help_text="The oldest latest-price date among what it holds"
    )
    computed_at = models.DateTimeField()
    inputs_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "account drift"
        indexes = [
            models.Index(fields=["drift"], name="drift_by_drift"),
            models.Index(fields=["max_abs_drift"], name="drift_by_largest"),
            # the dashboard's version (portfolios.selectors.drift_version): two index
            # reads, not a scan of every account's figures on each request
            models.Index(fields=["computed_at"], name="drift_by_computed"),
            models.Index(fields=["inputs_changed_at"], name="drift_by_marked"),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} drift {self.drift}"

    @property
    def stale(self) -> bool:
        return self.inputs_changed_at is not None and self.inputs_changed_at > self.computed_at
