"""One filter definition per list, shared by the pages and the API."""

import django_filters as filters

from portfolios.models import RebalanceRun


class RebalanceRunFilter(filters.FilterSet):
    class Meta:
        model = RebalanceRun
        fields = ["status"]
