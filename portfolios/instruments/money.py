"""Decimal helpers: parsing, currency minor units and the one rounding of cash."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction

from .errors import InstrumentError

__all__ = [
    "ZERO",
    "as_decimal",
    "check_currency",
    "fraction_to_decimal",
    "minor_units",
    "round_cash",
]

ZERO = Decimal(0)

# ISO 4217 currencies whose minor unit is not two decimal places. Every other well-formed
# code is taken to have two (the ISO table's overwhelming rule).
_MINOR_UNITS = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}


def as_decimal(value: object, what: str) -> Decimal:
    """`value` as a finite Decimal; a float goes through its shortest repr (no binary
    noise). `what` names the value in the error ("price of AAPL")."""
    if type(value) is Decimal and value.is_finite():
        return value
    if isinstance(value, bool):
        raise InstrumentError(f"{what} must be a number, not {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InstrumentError(f"{what} must be a number, not {value!r}") from None
    else:
        raise InstrumentError(f"{what} must be a number, not {value!r}")
    if not result.is_finite():
        raise InstrumentError(f"{what} must be a finite number, not {value!r}")
    return result


def check_currency(code: object, what: str = "currency") -> str:
    """A three-letter upper-case ISO 4217 code, or a clear error."""
    if not (isinstance(code, str) and len(code) == 3 and code.isalpha() and code.isupper()):
        raise InstrumentError(f"{what} must be a three-letter ISO code such as USD, not {code!r}")
    return code


def minor_units(currency: str) -> int:
    """Decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    return _MINOR_UNITS.get(check_currency(currency), 2)


def round_cash(amount: Decimal, currency: str) -> Decimal:
    """Round a cash amount to the currency's minor unit, half to even (the house rounding,
    `oms.numbers`). Applied once, to what is paid or received; valuations stay unrounded."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_EVEN)


def fraction_to_decimal(value: Fraction) -> Decimal:
    """An exact fraction as a Decimal at the context's precision (28 significant digits),
    so that a day-count fraction is rounded once, at the end, not per step."""
    return Decimal(value.numerator) / Decimal(value.denominator)
