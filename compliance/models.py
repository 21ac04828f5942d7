"""Compliance as data: the rule book, restricted lists, the stored pre-trade results and
the overrides of soft breaches.

A rule here is what a compliance officer keeps; the engine's `compliance.rules.Rule` is
what a check measures. `compliance.services.rules` builds one from the other, so that
every rule saved is a rule the engine accepts (a bad parameter is a form error, named).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from compliance.rules import KINDS, SEVERITIES
from portfolios.models import ModelPortfolio, Portfolio, Security
from trading.models import Order


class Severity(models.TextChoices):
    HARD = "hard", "Hard (rejects)"
    SOFT = "soft", "Soft (needs an override)"
    WARNING = "warning", "Warning (recorded)"


assert set(Severity.values) == set(SEVERITIES)


class RuleKind(models.TextChoices):
    RESTRICTED = "restricted", "Restricted list"
    MAX_WEIGHT = "max_weight", "Maximum weight"
    MIN_CASH = "min_cash", "Minimum cash"
    NO_OVERDRAFT = "no_overdraft", "No overdraft"
    NO_SHORT = "no_short", "No short positions"
    MAX_ORDER_NOTIONAL = "max_order_notional", "Maximum order value"
    MAX_ADV_PCT = "max_adv_pct", "Maximum share of daily volume"
    PRICE_COLLAR = "price_collar", "Limit price collar"
    UCITS_5_10_40 = "ucits_5_10_40", "UCITS 5/10/40"
    DIVERSIFIED_FUND = "diversified_fund", "Diversified fund (1940 Act)"
    WASH_SALE = "wash_sale", "Wash sale"
    DUPLICATE_ORDER = "duplicate_order", "Duplicate order"


assert set(RuleKind.values) == set(KINDS)


class RuleBookEntry(models.Model):
    """What the rule book's entries (rules and restricted lists) share: a unique name,
    who wrote it, a switch rather than a deletion, and a version that every change bumps
    (`compliance.services.rules`)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Rule(RuleBookEntry):
    """One rule of the rule book: a kind with its parameters, a severity, the accounts it
    binds and when it is checked. Every change bumps `version`; each stored result names
    the version it was measured with."""

    class Scope(models.TextChoices):
        ALL = "all", "All accounts"
        ACCOUNTS = "accounts", "Chosen accounts"
        MODEL = "model", "Accounts of a model"

    class When(models.TextChoices):
        PRE = "pre", "Pre-trade"
        POST = "post", "Post-trade"
        BOTH = "both", "Pre- and post-trade"

    PRE_TRADE = (When.PRE, When.BOTH)
    POST_TRADE = (When.POST, When.BOTH)
    AUDIT_FIELDS = (
        "name",
        "kind",
        "params",
        "severity",
        "scope",
        "model_id",
        "when",
        "active_from",
        "active_to",
        "is_active",
        "version",
    )

    kind = models.CharField(max_length=30, choices=RuleKind.choices)
    params = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.ALL)
    accounts = models.ManyToManyField(Portfolio, blank=True, related_name="compliance_rules")
    model = models.ForeignKey(
        ModelPortfolio, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    when = models.CharField(max_length=4, choices=When.choices, default=When.BOTH)
    active_from = models.DateField(null=True, blank=True)
    active_to = models.DateField(null=True, blank=True)

    class Meta(RuleBookEntry.Meta):
        constraints = [
            models.CheckConstraint(
                condition=~Q(scope="model") | Q(model__isnull=False), name="rule_model_scope"
            ),
            models.CheckConstraint(
                condition=Q(active_from__isnull=True)
                | Q(active_to__isnull=True)
                | Q(active_to__gte=F("active_from")),
                name="rule_active_dates_ordered",
            ),
        ]

    @property
    def limit(self):
        return (self.params or {}).get("limit")


class RestrictedList(RuleBookEntry):
    """Securities (by ticker) and issuers (by name) that restricted rules refuse, kept by
    compliance: firm-wide, or for one account. They also feed the rebalancer's do-not-buy
    lists, so that a run never proposes what compliance would reject."""

    class Level(models.TextChoices):
        FIRM = "firm", "Firm"
        ACCOUNT = "account", "Account"

    level = models.CharField(max_length=10, choices=Level.choices, default=Level.FIRM)
    portfolio = models.ForeignKey(
        Portfolio,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="restricted_lists",
        help_text="For an account-level list",
    )

    class Meta(RuleBookEntry.Meta):
        constraints = [
            models.CheckConstraint(
                condition=(Q(level="firm") & Q(portfolio__isnull=True))
                | (Q(level="account") & Q(portfolio__isnull=False)),
                name="restricted_list_level_account",
            )
        ]


class RestrictedEntry(models.Model):
    """One line of a restricted list: a security, or every security of an issuer."""

    restricted_list = models.ForeignKey(
        RestrictedList, on_delete=models.CASCADE, related_name="entries"
    )
    security = models.ForeignKey(
        Security, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    issuer = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(security__isnull=False) & Q(issuer=""))
                | (Q(security__isnull=True) & ~Q(issuer="")),
                name="restricted_entry_security_or_issuer",
            ),
            models.UniqueConstraint(
                fields=["restricted_list", "security"],
                condition=Q(security__isnull=False),
                name="restricted_entry_security_once",
            ),
            models.UniqueConstraint(
                fields=["restricted_list", "issuer"],
                condition=~Q(issuer=""),
                name="restricted_entry_issuer_once",
            ),
        ]

    def __str__(self) -> str:
        return self.security.ticker if self.security_id else f"issuer {self.issuer}"


class RuleBookStamp(models.Model):
    """One row whose ``stamp`` changes whenever the rule book does: a trigger on the
    rules, their chosen accounts, the restricted lists and their entries writes a new
    random stamp in the transaction of any change (whoever makes it: a service, the
    ORM, SQL). A process keeps the rule book it loaded under the stamp it read and
    reloads when the stamp it reads differs (decision 37 of `docs/architecture.md`).
    No row: the stamp is unknown and nothing is kept."""

    stamp = models.CharField(max_length=64)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="rule_book_stamp_one_row")]

    def __str__(self) -> str:
        return self.stamp


class PretradeResult(models.Model):
    """What one rule found of one order at one check, with the numbers that drove it and
    the version of the rule it used."""

    class Status(models.TextChoices):
        PASS = "pass", "Pass"
        WARN = "warn", "Warning"
        FAIL = "fail", "Fail"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="pretrade_results")
    rule = models.ForeignKey(Rule, null=True, on_delete=models.PROTECT, related_name="results")
    rule_version = models.PositiveIntegerField(null=True)
    stage = models.CharField(max_length=10)
    severity = models.CharField(max_length=10, blank=True)
    status = models.CharField(max_length=4, choices=Status.choices)
    value = models.FloatField(null=True)
    limit = models.FloatField(null=True)
    group = models.CharField(max_length=200, blank=True)
    passive = models.BooleanField(default=False)
    message = models.CharField(max_length=500, blank=True)
    checked_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-checked_at", "pk"]
        indexes = [models.Index(fields=["order", "-checked_at"], name="pretrade_order_checked")]

    def __str__(self) -> str:
        return f"{self.rule or 'check'} on order {self.order_id}: {self.status}"


class Override(models.Model):
    """A request to let an order that failed soft rules trade, with the requester's
    justification, decided by a compliance officer who is not the requester (the service
    checks it, and so does the database)."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    #: A request is decided once, by someone other than the requester.
    TRANSITIONS = {
        Status.REQUESTED: frozenset({Status.APPROVED, Status.REJECTED}),
        Status.APPROVED: frozenset(),
        Status.REJECTED: frozenset(),
    }

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="overrides")
    rules = models.ManyToManyField(Rule, blank=True, related_name="overrides")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.REQUESTED, db_index=True
    )
    justification = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    AUDIT_FIELDS = ("status", "decided_by_id", "decided_at", "decision_note", "expires_at")

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            # Four eyes: whoever decides an override did not ask for it.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="override_four_eyes",
            ),
            models.CheckConstraint(
                condition=Q(status="requested") | Q(decided_by__isnull=False),
                name="override_decided_by_someone",
            ),
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status="requested"),
                name="override_one_open_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"Override {self.pk} of order {self.order_id}"

    def in_force(self, now) -> bool:
        return self.status == self.Status.APPROVED and (
            self.expires_at is None or self.expires_at > now
        )


class Alert(models.Model):
    """A breach found after trading (after an allocation, or in the nightly check of
    every account): open until someone in compliance resolves it. One open alert per
    account and rule; a later check that finds the breach again updates it."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    #: A resolved alert stays resolved: a later check that finds the breach again opens
    #: a new one.
    TRANSITIONS = {Status.OPEN: frozenset({Status.RESOLVED}), Status.RESOLVED: frozenset()}

    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="alerts")
    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="alerts")
    rule_version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    severity = models.CharField(max_length=10)
    value = models.FloatField(null=True)
    limit = models.FloatField(null=True)
    group = models.CharField(max_length=200, blank=True)
    message = models.CharField(max_length=500)
    source = models.CharField(max_length=20, help_text="allocation or nightly")
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=500, blank=True)

    AUDIT_FIELDS = ("status", "assignee_id", "value", "resolved_by_id", "resolution")

    class Meta:
        ordering = ["-opened_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "rule"],
                condition=Q(status="open"),
                name="alert_one_open_per_account_rule",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(resolved_by__isnull=False),
                name="alert_resolved_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"Alert {self.pk}: {self.rule} on {self.portfolio}"


class AlertComment(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"Comment on alert {self.alert_id}"
