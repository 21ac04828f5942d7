"""Forms of the portfolio pages: they parse input; the services validate and write."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from .models import Portfolio


class RebalanceForm(forms.Form):
    """The accounts to rebalance and the run's parameters (see REBALANCE_PARAMETERS)."""

    portfolios = forms.ModelMultipleChoiceField(
        queryset=Portfolio.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label="Accounts",
        error_messages={"required": "Choose at least one account."},
    )
    trade_to = forms.ChoiceField(
        choices=[("target", "Target weights"), ("band_edge", "Edge of the tolerance band")],
        initial="target",
        label="Trade to",
    )
    min_trade_value = forms.DecimalField(
        min_value=Decimal(0),
        initial=Decimal(0),
        decimal_places=2,
        label="Minimum trade value",
        help_text="Trades worth less than this (base currency) are dropped.",
    )
    lot_selection = forms.ChoiceField(
        choices=[
            ("fifo", "First in, first out"),
            ("hifo", "Highest cost first"),
            ("min_tax", "Least tax"),
        ],
        initial="fifo",
        label="Tax lots to sell",
    )

    def __init__(self, *args, portfolios, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["portfolios"].queryset = portfolios
        self.fields["portfolios"].label_from_instance = lambda p: f"{p.code} · {p.name}"

    def parameters(self) -> dict:
        data = self.cleaned_data
        return {
            "trade_to": data["trade_to"],
            "min_trade_value": float(data["min_trade_value"]),
            "lot_selection": data["lot_selection"],
        }
