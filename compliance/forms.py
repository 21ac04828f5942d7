"""Forms of the rule book pages. They parse what a person types; the services decide
(through the engine's own rule) what is valid, and their errors land on these fields."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from compliance import rules as engine
from compliance.models import RestrictedList, Rule, RuleKind, Severity
from compliance.services.rules import rule_terms
from portfolios.models import ModelPortfolio, Portfolio

#: Kinds whose limit is typed as a percent (a share of NAV, of daily volume, of price).
PERCENT_KINDS = {name for name, k in engine.KINDS.items() if k.limit == "share"} | {
    "max_adv_pct",
    "price_collar",
}
SIDE_CHOICES = [(s, s.replace("_", " ")) for s in engine.SIDES]


def rule_terms_shown(kind: str, params: dict) -> list[tuple[str, str]]:
    """A rule's parameters as the form takes them: a share as a percent (0.25 →
    "25%"), a list comma-separated, a name without underscores."""
    from oms.templatetags.oms_format import plain, qty

    shown = []
    for key, value in params.items():
        if key == "limit" and kind in PERCENT_KINDS and isinstance(value, int | float):
            text = f"{qty(value * 100)}%"
        else:
            text = plain(value)
        shown.append((key.replace("_", " "), text))
    return shown


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=500, required=False)
    kind = forms.ChoiceField(choices=RuleKind.choices)
    severity = forms.ChoiceField(choices=Severity.choices)
    limit = forms.DecimalField(
        required=False,
        max_digits=20,
        decimal_places=6,
        help_text="A percent for weights, cash, volume and collars (10 = 10%); "
        "an amount in the account's currency for an order's value.",
    )
    group_by = forms.ChoiceField(
        required=False,
        choices=[("", "—")] + [(g, g.replace("_", " ")) for g in engine.GROUP_BY],
        help_text="For a maximum weight: what is grouped.",
    )
    lists = forms.MultipleChoiceField(
        required=False, label="Restricted lists", help_text="For a restricted-list rule."
    )
    sides = forms.MultipleChoiceField(
        required=False, choices=SIDE_CHOICES, help_text="For a restricted-list rule (default: buy)."
    )
    days = forms.IntegerField(required=False, min_value=0, help_text="Wash sale window.")
    minutes = forms.DecimalField(
        required=False, min_value=0, max_digits=10, decimal_places=2, help_text="Duplicate window."
    )
    scope = forms.ChoiceField(choices=Rule.Scope.choices)
    accounts = forms.ModelMultipleChoiceField(
        queryset=Portfolio.objects.filter(is_active=True).order_by("code"), required=False
    )
    model = forms.ModelChoiceField(queryset=ModelPortfolio.objects.order_by("name"), required=False)
    when = forms.ChoiceField(choices=Rule.When.choices, initial=Rule.When.BOTH)
    active_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    active_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lists"].choices = [
            (n, n)
            for n in RestrictedList.objects.filter(is_active=True).values_list("name", flat=True)
        ]
        # the service names parameter errors by the engine's names
        self.param_fields = {"limit": "limit", "group_by": "group_by", "list": "lists"}

    @classmethod
    def initial_for(cls, rule: Rule) -> dict:
        terms = rule_terms(rule)
        params = terms.pop("params") or {}
        limit = params.get("limit")
        if limit is not None and rule.kind in PERCENT_KINDS:
            limit = Decimal(repr(limit)) * 100
        return terms | {
            "limit": limit,
            "group_by": params.get("group_by", ""),
            "lists": params.get("list", []),
            "sides": params.get("sides", []),
            "days": params.get("days"),
            "minutes": params.get("minutes"),
        }

    def rule_terms(self) -> dict:
        """The service's keyword arguments: the kind's own parameters only."""
        data = self.cleaned_data
        kind = data["kind"]
        known = engine.KINDS[kind].params if kind in engine.KINDS else {}
        params: dict = {}
        if "limit" in known and data.get("limit") is not None:
            limit = data["limit"]
            params["limit"] = float(limit / 100 if kind in PERCENT_KINDS else limit)
        if "group_by" in known and data.get("group_by"):
            params["group_by"] = data["group_by"]
        if "list" in known and data.get("lists"):
            params["list"] = list(data["lists"])
        if "sides" in known and data.get("sides"):
            params["sides"] = list(data["sides"])
        if "days" in known and data.get("days") is not None:
            params["days"] = data["days"]
        if "minutes" in known and data.get("minutes") is not None:
            params["minutes"] = float(data["minutes"])
        return {
            "name": data["name"],
            "description": data.get("description", ""),
            "kind": kind,
            "params": params,
            "severity": data["severity"],
            "scope": data["scope"],
            "accounts": list(data.get("accounts") or []),
            "model": data.get("model"),
            "when": data["when"],
            "active_from": data.get("active_from"),
            "active_to": data.get("active_to"),
        }


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.replace(",", "\n").splitlines() if w.strip()]


class RestrictedListForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=500, required=False)
    level = forms.ChoiceField(choices=RestrictedList.Level.choices)
    portfolio = forms.ModelChoiceField(
        queryset=Portfolio.objects.filter(is_active=True).order_by("code"),
        required=False,
        label="Account",
        help_text="For an account-level list.",
    )
    tickers = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="One per line."
    )
    issuers = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="One per line."
    )
    reason = forms.CharField(max_length=500, required=False)

    def clean_tickers(self) -> list[str]:
        return _words(self.cleaned_data.get("tickers", ""))

    def clean_issuers(self) -> list[str]:
        # issuer names may hold commas ("Procter & Gamble Co., Inc."): one per line
        return [w.strip() for w in self.cleaned_data.get("issuers", "").splitlines() if w.strip()]


class OverrideRequestForm(forms.Form):
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="UTC; empty: until the order ends.",
    )


class OverrideDecisionForm(forms.Form):
    note = forms.CharField(max_length=500, required=False)
