"""The rebalance form: it parses input; the service validates and writes.

Its parameter fields are built from `orchestration.parameters.PARAMETERS`, the
same list the API serializer and the service's check are built from.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms

from portfolios.models import ModelPortfolio, Portfolio

from .parameters import PARAMETERS, Parameter
from .selectors import SCOPES, accounts_in_scope, empty_scope_message


def _field(parameter: Parameter) -> forms.Field:
    if parameter.is_choice:
        return forms.ChoiceField(
            required=False,  # blank means the default
            choices=list(parameter.choices.items()),
            initial=parameter.default,
            label=parameter.label,
            help_text=parameter.help,
        )
    if parameter.integer:
        return forms.IntegerField(
            required=False,  # blank means the default
            initial=parameter.default,
            min_value=parameter.minimum,
            max_value=parameter.maximum,
            label=parameter.label,
            help_text=parameter.help,
        )
    return forms.DecimalField(
        required=False,  # blank means the default
        initial=None if parameter.default is None else Decimal(str(parameter.default)),
        min_value=Decimal(str(parameter.minimum)) if parameter.minimum is not None else None,
        max_value=Decimal(str(parameter.maximum)) if parameter.maximum is not None else None,
        max_digits=16,
        decimal_places=2,
        label=parameter.label,
        help_text=parameter.help,
    )


def _typed(parameter: Parameter, value):
    """A form's value of a run parameter as the service takes it; blank: its default."""
    if parameter.is_choice:
        return value or parameter.default
    if value is None:
        return parameter.default
    return int(value) if parameter.integer else float(value)


class RebalanceForm(forms.Form):
    """The accounts to rebalance (ticked, or a scope: all, out of band, a model's) and
    the run's parameters."""

    scope = forms.ChoiceField(
        choices=list(SCOPES.items()),
        initial="selected",
        required=False,  # blank: the accounts ticked
        widget=forms.RadioSelect,
        label="Rebalance",
    )
    model = forms.ModelChoiceField(
        queryset=ModelPortfolio.objects.all(),
        required=False,
        label="Model",
        help_text="For “all my accounts on a model”.",
    )
    portfolios = forms.ModelMultipleChoiceField(
        queryset=Portfolio.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label="Accounts",
        required=False,
    )

    def __init__(self, *args, portfolios, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        for parameter in PARAMETERS:
            self.fields[parameter.name] = _field(parameter)
        self.fields["portfolios"].queryset = portfolios
        self.fields["portfolios"].label_from_instance = lambda p: f"{p.code} · {p.name}"

    def clean(self):
        data = super().clean()
        if "scope" not in self.errors:
            data["scope"] = data.get("scope") or "selected"
        scope = data.get("scope")
        if scope == "selected" and not data.get("portfolios"):
            self.add_error("portfolios", "Choose at least one account.")
        if scope == "model" and not data.get("model"):
            self.add_error("model", "Choose the model whose accounts to rebalance.")
        if self.errors or scope is None:
            return data
        accounts = list(
            accounts_in_scope(
                self.user, scope, model=data.get("model"), selected=data.get("portfolios") or ()
            )
        )
        if not accounts:
            self.add_error("scope", empty_scope_message(scope, data.get("model")))
        data["accounts"] = accounts
        return data

    def parameters(self) -> dict:
        data = self.cleaned_data
        return {p.name: _typed(p, data[p.name]) for p in PARAMETERS}


class CashFlowForm(forms.Form):
    """A deposit or a withdrawal: parsed here, checked by the service (which words the
    errors: a negative amount, an unknown currency)."""

    portfolio = forms.ModelChoiceField(queryset=Portfolio.objects.none(), label="Account")
    kind = forms.ChoiceField(choices=[("withdrawal", "Withdrawal"), ("deposit", "Deposit")])
    currency = forms.CharField(max_length=10, initial="USD")
    amount = forms.CharField(max_length=40)
    note = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, portfolios, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["portfolio"].queryset = portfolios
        self.fields["portfolio"].label_from_instance = lambda p: f"{p.code} · {p.name}"


class CashFlowImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="Columns: account, currency, amount, kind")


class RaiseCashForm(forms.Form):
    amount = forms.CharField(
        max_length=40,
        required=False,
        label="Cash to raise",
        help_text="Entered as a withdrawal; blank: raise the pending withdrawals.",
    )
    currency = forms.CharField(max_length=10, required=False)

    #: The run's tax options a raise takes (the same parameters as the rebalance form).
    TAX_OPTIONS = ("lot_selection", "gains_cap", "wash_sale_days")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for parameter in PARAMETERS:
            if parameter.name in self.TAX_OPTIONS:
                self.fields[parameter.name] = _field(parameter)

    def parameters(self) -> dict:
        """The tax options given (blank ones left to the run's defaults)."""
        data = self.cleaned_data
        return {
            p.name: _typed(p, data[p.name])
            for p in PARAMETERS
            if p.name in self.TAX_OPTIONS and data.get(p.name) not in (None, "")
        }


class OrderEditForm(forms.Form):
    quantity = forms.DecimalField(max_digits=24, decimal_places=6, label="Quantity")
