"""The parameters of a rebalance run, written once.

The run form, the API's request serializer and the service's check are all
built from `PARAMETERS`; the values a choice may take come from the engine's
own vocabulary (`portfolios.rebalance.TRADE_TO`, `LOT_SELECTION`), so that a
new choice in the engine shows up everywhere at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from portfolios.rebalance import LOT_SELECTION, TRADE_TO

#: What a run does: rebalance to the model, or only raise the accounts' cash need.
OBJECTIVES = {
    "rebalance": "Rebalance to the model",
    "raise_cash": "Raise cash only (sell what drifts most first)",
}

#: Money figures of a run are at most this (base currency): far beyond any
#: account, and within what the database and the audit trail hold exactly.
MONEY_LIMIT = 1e12


@dataclass(frozen=True)
class Parameter:
    """One parameter: its name, how a person reads it, its default and its range."""

    name: str
    label: str
    help: str
    default: str | float | int | None
    choices: dict[str, str] | None = None  # for a parameter that names one of a set
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False  # None (blank) is a value: "none" (a cap that is not set)
    integer: bool = False  # a whole number (days)

    @property
    def is_choice(self) -> bool:
        return self.choices is not None

    def clean(self, value: object) -> str | float | int | None:
        """The value, checked; ValueError says what is wrong in the user's words."""
        if self.is_choice:
            if not isinstance(value, str) or value not in self.choices:
                known = ", ".join(f"'{c}'" for c in self.choices)
                raise ValueError(f"Must be one of {known}.")
            return value
        if self.optional and (value is None or value == ""):
            return None
        if isinstance(value, bool):
            raise ValueError("Must be a number.")
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError("Must be a number.") from None
        if not math.isfinite(number):
            raise ValueError("Must be a finite number.")
        if self.minimum is not None and number < self.minimum:
            raise ValueError(f"Must be at least {self.minimum:g}.")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"Must be at most {self.maximum:g}.")
        if self.integer:
            if number != int(number):
                raise ValueError("Must be a whole number.")
            return int(number)
        return number + 0.0  # -0.0 becomes 0.0: the value as the database gives it back


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "trade_to",
        "Trade to",
        "Where an out-of-band position is traded to.",
        "target",
        choices=TRADE_TO,
    ),
    Parameter(
        "min_trade_value",
        "Minimum trade value",
        "Trades worth less than this (base currency) are dropped.",
        0.0,
        minimum=0.0,
        maximum=MONEY_LIMIT,
    ),
    Parameter(
        "lot_selection",
        "Tax lots to sell",
        "Which tax lots a sell takes first.",
        "fifo",
        choices=LOT_SELECTION,
    ),
    Parameter(
        "gains_cap",
        "Realised-gains cap",
        "Largest net realised gain per account in this run (base currency); blank: no cap.",
        None,
        minimum=0.0,
        maximum=MONEY_LIMIT,
        optional=True,
    ),
    Parameter(
        "wash_sale_days",
        "Wash-sale window (days)",
        "No sale at a loss of a security bought within this many days, and no buy of one "
        "sold at a loss within them; 0 turns it off.",
        30,
        minimum=0,
        maximum=365,
        integer=True,
    ),
    Parameter(
        "objective",
        "Run",
        "Rebalance to the model, or only sell to raise the cash needed.",
        "rebalance",
        choices=OBJECTIVES,
    ),
    Parameter(
        "cash_need",
        "Cash to raise",
        "Cash to raise (positive) or to invest (negative), base currency.",
        0.0,
        minimum=-MONEY_LIMIT,
        maximum=MONEY_LIMIT,
    ),
)
BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}


def parameters_check(raw: dict | None) -> dict:
    """Validate and complete a run's parameters; ValidationError names each bad one."""
    raw = dict(raw or {})
    errors: dict[str, list[str]] = {}
    for name in sorted(set(raw) - set(BY_NAME)):
        errors[name] = [f"Unknown parameter; known: {', '.join(sorted(BY_NAME))}."]
    clean: dict[str, str | float | int | None] = {}
    for parameter in PARAMETERS:
        try:
            clean[parameter.name] = parameter.clean(raw.get(parameter.name, parameter.default))
        except ValueError as error:
            errors[parameter.name] = [str(error)]
    if errors:
        raise ValidationError(errors)
    return clean
