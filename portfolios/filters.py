"""One filter definition per list, shared by the pages and the API."""

import math

import django_filters as filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Value, When

from . import selectors
from .models import LifecycleEvent, ModelPortfolio, Portfolio, Price, Security


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


class LifecycleEventFilter(filters.FilterSet):
    """The booked life-cycle events (the operations page and /api/v1/lifecycle-events/)."""

    account = filters.CharFilter(field_name="portfolio__code", label="Account")
    security = filters.CharFilter(field_name="security__ticker", label="Ticker")
    since = filters.DateFilter(field_name="event_date", lookup_expr="gte", label="From")
    until = filters.DateFilter(field_name="event_date", lookup_expr="lte", label="To")

    class Meta:
        model = LifecycleEvent
        fields = ["event", "outcome", "account", "security", "since", "until"]


#: Sort keys of the accounts list: the account's code, or one of its drift figures.
def _base_currencies() -> list[tuple[str, str]]:
    """The accounts' base currencies, as the choices of a filter (read when shown)."""
    return [
        (c, c)
        for c in Portfolio.objects.order_by("base_currency")
        .values_list("base_currency", flat=True)
        .distinct()
    ]


def _sort_filter(keys, directions: tuple[str, str]) -> filters.ChoiceFilter:
    """A `sort` choice of each key, ascending ("key") and descending ("-key"), in the
    order `directions` gives (the first is offered first)."""
    return filters.ChoiceFilter(
        method="sort_by",
        label="Sort by",
        empty_label=None,
        choices=[
            (f"{direction}{key}", f"{key} ({'descending' if direction else 'ascending'})")
            for key in keys
            for direction in directions
        ],
    )


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
    sort = _sort_filter(ACCOUNT_SORTS, ("", "-"))

    is_active = filters.BooleanFilter(
        label="Status",
        widget=forms.Select(choices=[("", "Any"), ("true", "Active"), ("false", "Closed")]),
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


#: Sort keys of the drift dashboard: stored figures, largest first by default.
DRIFT_SORTS = {
    "drift": "drift_figures__drift",
    "largest": "drift_figures__max_abs_drift",
    "value": "drift_figures__value",
    "cash": "drift_figures__cash_weight",
    "code": "code",
}
DEFAULT_DRIFT_SORT = "-drift"


class DriftFilter(filters.FilterSet):
    """The drift dashboard's accounts (page and API): by model, manager, base currency,
    out of band or not, cash above or below its target, stale figures; sorted by a
    stored figure (accounts without one last). Every filter and sort is a clause of
    the one query: nothing is computed per account."""

    q = filters.CharFilter(method="search", label="Code or name")
    model = filters.ModelChoiceFilter(queryset=ModelPortfolio.objects.all())
    manager = filters.ModelChoiceFilter(
        queryset=get_user_model()
        .objects.filter(Exists(Portfolio.objects.filter(manager=OuterRef("pk"))))
        .order_by("username"),
        label="Manager",
    )
    currency = filters.ChoiceFilter(
        field_name="base_currency", label="Base currency", choices=_base_currencies
    )
    out_of_band = filters.ChoiceFilter(
        method="band",
        label="Band",
        empty_label="All",
        choices=[("yes", "Out of band"), ("no", "Within band")],
    )
    cash = filters.ChoiceFilter(
        method="cash_against_target",
        label="Cash",
        empty_label="All",
        choices=[("above", "Above target"), ("below", "Below target")],
    )
    stale = filters.BooleanFilter(
        method="only_stale", label="Stale figures only", widget=forms.CheckboxInput
    )
    sort = _sort_filter(DRIFT_SORTS, ("-", ""))

    class Meta:
        model = Portfolio
        fields = ["model", "manager"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value))

    def band(self, queryset, name, value):
        return queryset.filter(drift_figures__out_of_band=value == "yes", drift_figures__reason="")

    def cash_against_target(self, queryset, name, value):
        lookup = "gt" if value == "above" else "lt"
        return queryset.filter(
            **{f"drift_figures__cash_weight__{lookup}": F("drift_figures__cash_target")}
        )

    def only_stale(self, queryset, name, value):
        return queryset.filter(drift_stale=True) if value else queryset

    def sort_by(self, queryset, name, value):
        field = DRIFT_SORTS.get(value.lstrip("-"), DRIFT_SORTS["drift"])
        key = (
            F(field).desc(nulls_last=True)
            if value.startswith("-")
            else F(field).asc(nulls_last=True)
        )
        return queryset.order_by(key, "code")

    @property
    def qs(self):
        qs = super().qs
        if not getattr(self.form, "cleaned_data", {}).get("sort"):
            qs = self.sort_by(qs, "sort", DEFAULT_DRIFT_SORT)
        return qs


class ExposureFilter(filters.FilterSet):
    """The accounts the exposure view (page and API) values: by manager, model and
    base currency, within those the user may see."""

    manager = filters.ModelChoiceFilter(
        queryset=get_user_model()
        .objects.filter(Exists(Portfolio.objects.filter(manager=OuterRef("pk"))))
        .order_by("username"),
        label="Manager",
    )
    model = filters.ModelChoiceFilter(queryset=ModelPortfolio.objects.all())
    currency = filters.ChoiceFilter(
        field_name="base_currency", label="Base currency", choices=_base_currencies
    )

    class Meta:
        model = Portfolio
        fields = ["manager", "model", "currency"]
