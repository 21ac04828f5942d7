"""Forms of the trading pages: they parse input; the services validate and write."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from oms.numbers import input_limits
from portfolios.models import Security

from .models import Broker, LotMethod, OrderType, Side, TimeInForce


class OrderForm(forms.Form):
    """A manual order for one account (the service checks its terms)."""

    portfolio = forms.ModelChoiceField(queryset=None, label="Account")
    security = forms.ModelChoiceField(
        queryset=Security.objects.filter(is_active=True), label="Security"
    )
    side = forms.ChoiceField(choices=Side.choices)
    # Within what the database holds (a larger figure is a form error, not a 500).
    quantity = forms.DecimalField(min_value=Decimal("0.000001"), **input_limits("quantity"))
    order_type = forms.ChoiceField(choices=OrderType.choices, initial=OrderType.MARKET)
    time_in_force = forms.ChoiceField(choices=TimeInForce.choices, initial=TimeInForce.DAY)
    limit_price = forms.DecimalField(required=False, **input_limits("price"))
    stop_price = forms.DecimalField(required=False, **input_limits("price"))
    expire_at = forms.DateTimeField(
        required=False,
        label="Expires at (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Good-till-date orders only.",
    )
    notes = forms.CharField(required=False, max_length=500)
    lot_method = forms.ChoiceField(
        choices=LotMethod.choices,
        initial=LotMethod.FIFO,
        required=False,
        label="Tax lots sold",
        help_text="Which tax lots a sell closes when it fills (sells only).",
    )

    def __init__(self, *args, portfolios, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["portfolio"].queryset = portfolios
        self.fields["portfolio"].label_from_instance = lambda p: f"{p.code} · {p.name}"
        self.fields["security"].label_from_instance = lambda s: f"{s.ticker} · {s.name}"

    def order_terms(self) -> dict:
        terms = dict(self.cleaned_data)
        terms["lot_method"] = terms.get("lot_method") or LotMethod.FIFO  # not given: fifo
        return terms


class RouteForm(forms.Form):
    """Route (part of) a block to a broker; no quantity routes what is left."""

    broker = forms.ModelChoiceField(queryset=Broker.objects.filter(is_active=True))
    quantity = forms.DecimalField(
        required=False, min_value=Decimal("0.000001"), **input_limits("quantity")
    )


class RouteReplaceForm(forms.Form):
    """Amend a working route: the fields the trader changed go to the service
    (a field left as it was, or blank, keeps the route's term)."""

    quantity = forms.DecimalField(required=False, **input_limits("quantity"))
    limit_price = forms.DecimalField(required=False, **input_limits("price"))
    stop_price = forms.DecimalField(required=False, **input_limits("price"))
    time_in_force = forms.ChoiceField(choices=TimeInForce.choices, required=False)
    expire_at = forms.DateTimeField(
        required=False,
        label="Expires (UTC)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        help_text="For good till date",
    )
    reason = forms.CharField(required=False, max_length=500)

    def changed_terms(self, route) -> dict:
        data = self.cleaned_data
        terms = {"reason": data.get("reason") or ""}
        for name in ("quantity", "limit_price", "stop_price", "time_in_force", "expire_at"):
            value = data.get(name)
            if value not in (None, "") and value != getattr(route, name):
                terms[name] = value
        return terms
