"""Forms of the model pages: the editor (settings and rows of weights in percent),
copy, CSV import, bulk assignment. Shapes and parsing only: the rule a model's
weights obey is the service's (portfolios.services.models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django import forms

from .models import ModelPortfolio

HUNDRED = Decimal(100)


def percent_field(label: str, help_text: str = "", required: bool = True) -> forms.DecimalField:
    # Percent with up to six places: a weight column keeps eight as a fraction.
    return forms.DecimalField(
        label=label,
        max_digits=12,
        decimal_places=6,
        required=required,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )


class ModelSettingsForm(forms.Form):
    """The model's name, description, cash weight and tolerance bands, in percent."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    cash_pct = percent_field("Cash %", "Part of the model kept in cash")
    band_absolute_pct = percent_field(
        "Absolute band %", "Out of band when a weight is this many points off its target"
    )
    band_relative_pct = percent_field(
        "Relative band %", "… or this share of its target off (0: absolute band only)"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cash_pct"].widget.attrs["data-cash"] = ""

    @classmethod
    def initial_of(cls, model: ModelPortfolio) -> dict:
        return {
            "name": model.name,
            "description": model.description,
            "cash_pct": _as_pct(model.cash_weight),
            "band_absolute_pct": _as_pct(model.band_absolute),
            "band_relative_pct": _as_pct(model.band_relative),
        }

    def service_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data.get("description", ""),
            "cash_weight": data["cash_pct"] / HUNDRED,
            "band_absolute": data["band_absolute_pct"] / HUNDRED,
            "band_relative": data["band_relative_pct"] / HUNDRED,
        }


def _as_pct(weight: Decimal) -> str:
    return f"{(weight * HUNDRED).normalize():f}"


@dataclass
class Rows:
    """The editor's rows as posted: what the page shows again, what the service gets."""

    targets: list[dict] = field(default_factory=list)  # {"security": ticker, "pct": text}
    sleeves: list[dict] = field(default_factory=list)  # {"model": name, "pct": text}
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of_model(cls, model: ModelPortfolio) -> Rows:
        return cls(
            targets=[
                {"security": t.security.ticker, "pct": _as_pct(t.weight)}
                for t in model.targets.select_related("security").order_by(
                    "-weight", "security__ticker"
                )
            ],
            sleeves=[
                {"model": s.sleeve.name, "pct": _as_pct(s.weight)}
                for s in model.sleeves.select_related("sleeve").order_by("-weight", "sleeve__name")
            ],
        )

    @classmethod
    def posted(cls, data) -> Rows:
        rows = cls()
        pairs = (
            ("targets", "target_security", "target_pct", "security"),
            ("sleeves", "sleeve_model", "sleeve_pct", "model"),
        )
        for attr, name_key, pct_key, key in pairs:
            names, pcts = data.getlist(name_key), data.getlist(pct_key)
            for name, pct in zip(names, pcts + [""] * (len(names) - len(pcts)), strict=True):
                if name.strip() or pct.strip():
                    getattr(rows, attr).append({key: name.strip(), "pct": pct.strip()})
        return rows

    def for_service(self) -> tuple[list[dict], list[dict]]:
        """Targets and sleeves with weights as fractions; a row the service cannot
        read (no name, no number) is an error here, naming its row."""
        out: dict[str, list[dict]] = {"targets": [], "sleeves": []}
        for attr, key, noun in (
            ("targets", "security", "security"),
            ("sleeves", "model", "sleeve"),
        ):
            for number, row in enumerate(getattr(self, attr), start=1):
                label = f"{'Sleeve row' if attr == 'sleeves' else 'Row'} {number}"
                if not row[key]:
                    self.errors.append(f"{label}: choose a {noun} for the weight {row['pct']}%.")
                    continue
                try:
                    weight = Decimal(row["pct"].rstrip("%").strip()) / HUNDRED
                    if not weight.is_finite():
                        raise InvalidOperation
                except InvalidOperation:
                    self.errors.append(
                        f"{label}: the weight of {row[key]} ({row['pct'] or 'empty'}) is not a number."
                    )
                    continue
                out[attr].append({key: row[key], "weight": weight, "label": label})
        return out["targets"], out["sleeves"]


class ModelCopyForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name of the copy")


class ModelImportForm(forms.Form):
    file = forms.FileField(
        label="Targets file (CSV)",
        help_text="ticker,weight — a row per security, model:<name> per sleeve, CASH for cash",
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > 200_000:
            raise forms.ValidationError("The file is larger than 200,000 bytes.")
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("The file is not UTF-8 text.") from exc
