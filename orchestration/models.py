"""What a rebalance run keeps beside its orders: which accounts it holds (and
which chunk of the run computes each), and the pre-trade verdict on each
proposed order."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portfolios.models import Portfolio, RebalanceRun, money_field
from trading.models import Order


class RunAccount(models.Model):
    """An account in a run. While the run is open (not released, cancelled or
    failed) the account may enter no other run: the database holds one open row
    per account. A chunk of the run claims its pending accounts in the
    transaction that writes their orders, so a chunk run twice writes nothing twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"

    run = models.ForeignKey(RebalanceRun, on_delete=models.CASCADE, related_name="run_accounts")
    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="+")
    chunk = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=500, blank=True)
    is_open = models.BooleanField(default=True)

    class Meta:
        ordering = ["run", "chunk", "portfolio"]
        constraints = [
            models.UniqueConstraint(fields=["run", "portfolio"], name="run_account_once"),
            models.UniqueConstraint(
                fields=["portfolio"],
                condition=models.Q(is_open=True),
                name="account_in_one_open_run",
            ),
        ]
        indexes = [models.Index(fields=["run", "chunk", "status"])]

    def __str__(self) -> str:
        return f"{self.run} {self.portfolio_id} {self.status}"


class ProposalCheck(models.Model):
    """The pre-trade verdict on a proposed order when its run was proposed
    (`trading.pretrade.check`, stage `proposal`)."""

    class Status(models.TextChoices):
        APPROVED = "approved", "Passes"
        NEEDS_OVERRIDE = "needs_override", "Needs override"
        REJECTED = "rejected", "Rejected"

    # written from the ids of the orders written in the same transaction, by the same
    # service (`_store_verdicts`), and orders are never deleted but by Django's own
    # cascade: no constraint, checked for every order of a run at commit (decision 51)
    order = models.OneToOneField(
        Order,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="proposal_check",
        db_constraint=False,
    )
    # the order's own run (its order's constraint holds the order, and so its run):
    # no constraint of its own, checked for every order of a run at commit (decision 44)
    run = models.ForeignKey(
        RebalanceRun, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    message = models.CharField(max_length=500, blank=True)
    failed = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"order {self.order_id}: {self.status}"


class CashFlow(models.Model):
    """A deposit to invest or a withdrawal to raise, for an account. A pending cash
    flow is used by the account's next rebalance run (a deposit is cash the run may
    invest, a withdrawal cash it must leave free: its cash need); that run holds it
    (`in_run`). Releasing the run books a deposit on the account's cash (`applied`),
    and a withdrawal too when the run sells nothing for the account; a withdrawal
    that the run's sells raise waits for them (`awaiting_sells`) and is booked once
    they have all ended and been allocated, or given back (pending) when they raised
    too little. A run cancelled or failed gives its flows back (pending again); a
    pending one may be cancelled."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        WITHDRAWAL = "withdrawal", "Withdrawal"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_RUN = "in_run", "In a run"
        AWAITING_SELLS = "awaiting_sells", "Waiting for its sells"
        APPLIED = "applied", "Applied"
        CANCELLED = "cancelled", "Cancelled"

    TRANSITIONS = {
        Status.PENDING: frozenset({Status.IN_RUN, Status.CANCELLED}),
        Status.IN_RUN: frozenset({Status.APPLIED, Status.PENDING, Status.AWAITING_SELLS}),
        Status.AWAITING_SELLS: frozenset({Status.APPLIED, Status.PENDING}),
        Status.APPLIED: frozenset(),
        Status.CANCELLED: frozenset(),
    }

    portfolio = models.ForeignKey(Portfolio, on_delete=models.PROTECT, related_name="cash_flows")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    amount = money_field(help_text="Positive; the kind says which way the cash goes")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    run = models.ForeignKey(
        RebalanceRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="cash_flows"
    )
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["portfolio", "status"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.currency} for {self.portfolio_id}"

    @property
    def signed_need(self):
        """The cash the run must raise (> 0) or may invest (< 0), in `currency`."""
        return self.amount if self.kind == self.Kind.WITHDRAWAL else -self.amount


class ChunkReissue(models.Model):
    """A chunk of a running run sent to the workers again by the recovery sweep
    (`rebalance_runs_recover`): its task was lost (a broker flushed or restarted, a
    worker killed with the message unacknowledged) and the run made no progress for
    the stall time. ``chunk`` is None when what was sent again is the run's start (a
    draft whose start task was lost). The run's page and API list them; after
    `MAX_REISSUES` of one chunk the next stall fails the run instead."""

    run = models.ForeignKey(RebalanceRun, on_delete=models.CASCADE, related_name="reissues")
    chunk = models.PositiveIntegerField(null=True, blank=True)
    attempt = models.PositiveIntegerField(help_text="1 for the chunk's first reissue")
    pending = models.PositiveIntegerField(help_text="Accounts of the chunk still pending")
    reason = models.CharField(max_length=500)
    reissued_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "reissued_at", "chunk"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "chunk", "attempt"],
                name="chunk_reissue_once",
                nulls_distinct=False,  # the start's reissues too
            ),
        ]

    def __str__(self) -> str:
        what = "start" if self.chunk is None else f"chunk {self.chunk}"
        return f"{self.run} {what} reissue {self.attempt}"
