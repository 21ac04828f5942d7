"""One filter definition per list, shared by the pages and the API."""

import django_filters as filters

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


class PortfolioFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="Code or name")
    model = filters.ModelChoiceFilter(queryset=ModelPortfolio.objects.all())

    class Meta:
        model = Portfolio
        fields = ["base_currency", "model", "is_active"]

    def search(self, queryset, name, value):
        return queryset.filter(code__icontains=value) | queryset.filter(name__icontains=value)


class ModelPortfolioFilter(filters.FilterSet):
    class Meta:
        model = ModelPortfolio
        fields = {"name": ["exact", "icontains"]}
