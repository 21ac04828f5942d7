"""One filter definition per list, shared by the pages and the API."""

import math

import django_filters as filters
from django import forms
from django.db.models import Case, IntegerField, Value, When

from . import selectors
from .models import ModelPortfolio, Portfolio, Price, Security


class SecurityFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Ticker or name")

    class Meta:
        model = Security
        fields = [
            "asset_class",
            "currency",
            "sector",
            "country",
            "is_active",
            "isin",
            "cusip",
            "figi",
        ]

    def search(self, queryset, name, value):
        return queryset.filter(ticker__icontains=value) | queryset.filter(name__icontains=value)


class PriceFilter(filters.FilterSet):
    security = filters.CharFilter(field_name="security__ticker", label="Ticker")
    as_of_from = filters.DateFilter(field_name="as_of", lookup_expr="gte")
    as_of_to = filters.DateFilter(field_name="as_of", lookup_expr="lte")

    class Meta:
        model = Price
        fields = ["security", "as_of"]


#: Sort keys of the accounts list: the account's code, or one of its drift figures.
ACCOUNT_SORTS = {"code": None, "value": "value", "cash": "cash_weight", "drift": "drift"}
DEFAULT_ACCOUNT_SORT = "-drift"


class PortfolioFilter(filters.FilterSet):
    """Accounts: by code or name, model, currency; only those out of their band;
    sorted by code or by a drift figure (largest drift first by default).

    The drift figures are computed once per filtering, for every account the
    other filters keep, in one vectorised pass (`drift`), so that sorting covers
    all of them and not only the page shown. Without a sort the list is in code
    order (the accounts page asks for `DEFAULT_ACCOUNT_SORT`)."""

    q = filters.CharFilter(method="search", label="Code or name")
    model = filters.ModelChoiceFilter(queryset=ModelPortfolio.objects.all())
    out_of_band = filters.BooleanFilter(
        method="only_out_of_band",
        label="Out of band only",
        widget=forms.CheckboxInput,  # "1", "true" or "on" (a ticked box) mean yes
    )
    sort = filters.ChoiceFilter(
        method="sort_by",
        label="Sort by",
        empty_label=None,
        choices=[
            (f"{direction}{key}", f"{key} ({'descending' if direction else 'ascending'})")
            for key in ACCOUNT_SORTS
            for direction in ("", "-")
        ],
    )

    class Meta:
        model = Portfolio
        fields = ["base_currency", "model", "is_active"]

    def search(self, queryset, name, value):
        return queryset.filter(code__icontains=value) | queryset.filter(name__icontains=value)

    @property
    def drift(self) -> dict[int, dict]:
        """Drift figures of the accounts the other filters keep (account id → row)."""
        if not hasattr(self, "_drift"):
            self._drift, self.drift_error = {}, ""
            try:
                self._drift = selectors.drift_by_account(self.queryset.values_list("pk", flat=True))
            except ValueError as exc:  # a book the engine refuses
                self.drift_error = str(exc)
        return self._drift

    def filter_queryset(self, queryset):
        # Drift is figured on what the plain filters keep, before sort and band.
        plain = {"out_of_band", "sort"}
        for name, value in self.form.cleaned_data.items():
            if name not in plain:
                queryset = self.filters[name].filter(queryset, value)
        self.queryset = queryset
        for name in ("out_of_band", "sort"):
            value = self.form.cleaned_data.get(name)
            if value:
                queryset = self.filters[name].filter(queryset, value)
        return queryset

    def drift_of(self, portfolios) -> dict[int, dict]:
        """Drift figures of these accounts: those already figured for the whole
        list when a filter or sort needed them, else figured for these alone."""
        if hasattr(self, "_drift"):
            return self._drift
        return selectors.drift_by_account([p.pk for p in portfolios])

    def only_out_of_band(self, queryset, name, value):
        if not value:
            return queryset
        keep = [pk for pk, row in self.drift.items() if row.get("out_of_band")]
        return queryset.filter(pk__in=keep)

    def sort_by(self, queryset, name, value):
        figure = ACCOUNT_SORTS.get(value.lstrip("-"))
        descending = value.startswith("-")
        if figure is None:
            return queryset.order_by("-code" if descending else "code")
        known = [
            (row[figure], pk)
            for pk, row in self.drift.items()
            if isinstance(row.get(figure), int | float) and not math.isnan(row[figure])
        ]
        known.sort(key=lambda item: (-item[0], item[1]) if descending else item)
        if not known:  # no account has the figure: a bare CASE would be ORDER BY <number>
            return queryset.order_by("code")
        # accounts without that figure (no model, no price) come last either way
        rank = Case(
            *(When(pk=pk, then=Value(position)) for position, (_, pk) in enumerate(known)),
            default=Value(len(known)),
            output_field=IntegerField(),
        )
        return queryset.order_by(rank, "code")


class ModelPortfolioFilter(filters.FilterSet):
    class Meta:
        model = ModelPortfolio
        fields = {"name": ["exact", "icontains"]}
