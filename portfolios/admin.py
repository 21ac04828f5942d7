from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from audit.admin import AuditedModelAdmin
from oms.admin import ReadOnlyModelAdmin

from .models import (
    AccountDrift,
    CashBalance,
    FxRate,
    ModelPortfolio,
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
from .services.reference import model_targets_errors


@admin.register(Security)
class SecurityAdmin(AuditedModelAdmin):
    list_display = [
        "ticker",
        "name",
        "asset_class",
        "currency",
        "sector",
        "country",
        "round_lot",
        "is_active",
    ]
    list_filter = ["asset_class", "currency", "sector", "is_active"]
    search_fields = ["ticker", "name", "isin", "cusip", "figi"]


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


class ModelTargetFormSet(BaseInlineFormSet):
    """The targets as edited, checked with the cash weight against the one rule of
    the services (`model_targets_errors`): a form error, nothing saved."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        targets = [
            {"security": form.cleaned_data["security"], "weight": form.cleaned_data["weight"]}
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and form.cleaned_data.get("security")
        ]
        cash_weight = self.instance.cash_weight
        for message in model_targets_errors(cash_weight, targets):
            raise ValidationError(message)


class ModelTargetInline(admin.TabularInline):
    model = ModelTarget
    formset = ModelTargetFormSet
    autocomplete_fields = ["security"]
    extra = 0


@admin.register(ModelPortfolio)
class ModelPortfolioAdmin(AuditedModelAdmin):
    list_display = ["name", "cash_weight", "band_absolute", "band_relative"]
    inlines = [ModelTargetInline]

    def audit_snapshot(self, obj) -> dict:
        return super().audit_snapshot(obj) | {
            "targets": {t.security.ticker: t.weight for t in obj.targets.select_related("security")}
        }


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


@admin.register(Position)
class PositionAdmin(ReadOnlyModelAdmin):
    list_display = ["portfolio", "security", "quantity"]
    list_select_related = ["portfolio", "security"]
    search_fields = ["portfolio__code", "security__ticker"]


@admin.register(TaxLot)
class TaxLotAdmin(ReadOnlyModelAdmin):
    list_display = ["portfolio", "security", "quantity", "unit_cost", "acquired_on"]
    list_select_related = ["portfolio", "security"]


@admin.register(AccountDrift)
class AccountDriftAdmin(ReadOnlyModelAdmin):
    """Read-only: derived figures, written by portfolios.services.drift.drift_refresh."""

    list_display = ["portfolio", "drift", "max_abs_drift", "out_of_band", "computed_at"]
    list_select_related = ["portfolio"]
    list_filter = ["out_of_band"]
    search_fields = ["portfolio__code"]


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
