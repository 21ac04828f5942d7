from django.contrib import admin

from audit.admin import AuditedModelAdmin
from oms.admin import ReadOnlyModelAdmin

from .models import (
    AccountDrift,
    CashBalance,
    CashMovement,
    FxRate,
    LifecycleEvent,
    LotClosing,
    ModelPortfolio,
    ModelSleeve,
    ModelTarget,
    Portfolio,
    Position,
    Price,
    PriceBar,
    QuarantinedQuote,
    RebalanceRun,
    Security,
    TaxLot,
)


@admin.register(Security)
class SecurityAdmin(AuditedModelAdmin):
    list_display = [
        "ticker",
        "name",
        "asset_class",
        "currency",
        "sector",
        "country",
        "government",
        "round_lot",
        "is_active",
    ]
    list_filter = ["asset_class", "currency", "sector", "government", "is_active"]
    search_fields = ["ticker", "name", "isin", "cusip", "figi"]
    raw_id_fields = ["underlying"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "ticker",
                    "name",
                    "asset_class",
                    "currency",
                    ("isin", "cusip", "figi"),
                    ("sector", "issuer", "country"),
                    "government",
                    "is_active",
                ]
            },
        ),
        (
            "Trading terms",
            {
                "fields": [
                    ("round_lot", "min_quantity", "fractional"),
                    ("tick_size", "multiplier"),
                    "settlement_cycle",
                ],
                "description": "A bond's minimum piece is its minimum quantity and its "
                "increment its round lot, in face value; its multiplier is 0.01.",
            },
        ),
        (
            "Bond",
            {
                "fields": [
                    ("coupon_rate", "coupon_frequency", "day_count"),
                    ("issue_date", "first_coupon_date", "maturity"),
                ]
            },
        ),
        (
            "Future or option",
            {"fields": ["expiry", "contract_unit", "underlying", ("option_right", "strike")]},
        ),
        ("FX", {"fields": ["base_currency", "value_date"]}),
    ]


@admin.register(Price)
class PriceAdmin(AuditedModelAdmin):
    list_display = ["security", "as_of", "price", "source"]
    list_filter = ["as_of"]
    search_fields = ["security__ticker"]
    list_select_related = ["security"]


@admin.register(FxRate)
class FxRateAdmin(AuditedModelAdmin):
    list_display = ["currency", "quote", "as_of", "rate"]
    list_filter = ["currency", "quote"]


class ModelTargetInline(admin.TabularInline):
    """Shown only: targets change on the model's page or through the API, through
    portfolios.services.models, the one place of the sum-to-100% rule."""

    model = ModelTarget
    fields = readonly_fields = ["security", "weight"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ModelSleeveInline(ModelTargetInline):
    model = ModelSleeve
    fk_name = "model"
    fields = readonly_fields = ["sleeve", "weight"]


@admin.register(ModelPortfolio)
class ModelPortfolioAdmin(ReadOnlyModelAdmin):
    """Read-only: a model is created, edited, copied and assigned on its pages
    (portfolios:model-list) or through the API, each change checked and audited by
    portfolios.services.models."""

    list_display = ["name", "cash_weight", "band_absolute", "band_relative", "owner"]
    search_fields = ["name"]
    inlines = [ModelTargetInline, ModelSleeveInline]


@admin.register(Portfolio)
class PortfolioAdmin(AuditedModelAdmin):
    list_display = ["code", "name", "base_currency", "manager", "model", "cash_floor", "is_active"]
    list_filter = ["base_currency", "model", "is_active"]
    search_fields = ["code", "name"]
    list_select_related = ["manager", "model"]


@admin.register(CashBalance)
class CashBalanceAdmin(ReadOnlyModelAdmin):
    list_display = ["portfolio", "currency", "amount"]
    list_select_related = ["portfolio"]


@admin.register(AccountDrift)
class AccountDriftAdmin(ReadOnlyModelAdmin):
    """Stored drift: derived figures the refresh keeps (portfolios.services.drift)."""

    list_display = ["portfolio", "model", "drift", "max_abs_drift", "out_of_band", "computed_at"]
    list_select_related = ["portfolio", "model"]
    list_filter = ["out_of_band"]
    search_fields = ["portfolio__code"]


@admin.register(Position)
class PositionAdmin(ReadOnlyModelAdmin):
    list_display = ["portfolio", "security", "quantity"]
    list_select_related = ["portfolio", "security"]
    search_fields = ["portfolio__code", "security__ticker"]


@admin.register(TaxLot)
class TaxLotAdmin(ReadOnlyModelAdmin):
    list_display = ["portfolio", "security", "quantity", "unit_cost", "acquired_on"]
    list_select_related = ["portfolio", "security"]


@admin.register(LotClosing)
class LotClosingAdmin(ReadOnlyModelAdmin):
    """What each sale took from a lot and realised (written by the booking, append-only)."""

    list_display = [
        "portfolio",
        "security",
        "closed_on",
        "quantity",
        "unit_cost",
        "proceeds_per_unit",
        "realised_gain",
        "term",
        "allocation_id",
    ]
    list_select_related = ["portfolio", "security"]
    search_fields = ["portfolio__code", "security__ticker"]


@admin.register(CashMovement)
class CashMovementAdmin(ReadOnlyModelAdmin):
    """Each booking's cash with its value date (written by the booking, append-only)."""

    list_display = [
        "portfolio",
        "currency",
        "amount",
        "value_date",
        "trade_date",
        "security",
        "reason",
        "allocation_id",
    ]
    list_filter = ["currency", "reason"]
    list_select_related = ["portfolio", "security"]
    search_fields = ["portfolio__code", "security__ticker"]


@admin.register(RebalanceRun)
class RebalanceRunAdmin(ReadOnlyModelAdmin):
    list_display = ["pk", "status", "created_by", "created_at"]
    list_filter = ["status"]


@admin.register(PriceBar)
class PriceBarAdmin(ReadOnlyModelAdmin):
    list_display = ["symbol", "start", "seconds", "open", "high", "low", "close", "volume", "ticks"]
    list_filter = ["seconds"]
    search_fields = ["symbol"]


@admin.register(QuarantinedQuote)
class QuarantinedQuoteAdmin(ReadOnlyModelAdmin):
    """Read-only: a held quote is released or discarded, with a reason, on the
    quarantine page (portfolios:quarantine), through the audited services."""

    list_display = [
        "symbol",
        "venue",
        "source",
        "quoted_at",
        "bid",
        "ask",
        "last",
        "reason",
        "status",
    ]
    list_filter = ["status", "source"]
    search_fields = ["symbol", "reason"]


@admin.register(LifecycleEvent)
class LifecycleEventAdmin(ReadOnlyModelAdmin):
    """Coupons, redemptions, futures settled and options exercised or expired, as the
    life-cycle service booked them (once per holding and event)."""

    list_display = [
        "portfolio",
        "security",
        "event",
        "event_date",
        "outcome",
        "currency",
        "value_date",
    ]
    list_filter = ["event", "outcome"]
    list_select_related = ["portfolio", "security"]
    search_fields = ["portfolio__code", "security__ticker"]
