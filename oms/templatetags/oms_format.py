"""Display helpers for money, quantities, prices, weights and status badges.

Figures are formatted once, here, so that every page shows them the same way:
thousands separated, right-aligned by the stylesheet, a dash for a missing value.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from decimal import Decimal, InvalidOperation

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html
from django_htmx.templatetags.django_htmx import htmx_script

register = template.Library()
log = logging.getLogger(__name__)

DASH = "—"


def _number(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    if number.is_nan() or number.is_infinite():
        return None
    return number


@register.filter
def fields(form, names: str) -> list:
    """The form's bound fields named in `names` (space-separated), in that order: one
    column of a form page (templates/form_page.html)."""
    return [form[name] for name in names.split()]


def _figure(format_number):
    """A filter of a figure: a dash for what is not a number, else
    `format_number(number, ...)` of the value as a Decimal."""

    @functools.wraps(format_number)
    def figure(value, *args) -> str:
        number = _number(value)
        return DASH if number is None else format_number(number, *args)

    return figure


@register.filter
@_figure
def money(number: Decimal, places: int = 2) -> str:
    """1234567.891 → 1,234,567.89"""
    return f"{number:,.{int(places)}f}"


@register.filter
@_figure
def qty(number: Decimal) -> str:
    """A quantity without trailing zeros: 1200.000000 → 1,200; 0.500000 → 0.5"""
    text = f"{number:,.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


@register.filter
@_figure
def price(number: Decimal) -> str:
    """A price with two to six decimals: 101.50000000 → 101.50; 0.12345 → 0.12345"""
    text = f"{number:,.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


@register.filter
@_figure
def pct(number: Decimal, places: int = 2) -> str:
    """A weight as a percentage: 0.1234 → 12.34%"""
    return f"{number * 100:,.{int(places)}f}%"


@register.filter
@_figure
def pct_signed(number: Decimal, places: int = 2) -> str:
    """A drift as a signed percentage: 0.0123 → +1.23%, -0.0123 → −1.23%"""
    text = f"{abs(number) * 100:,.{int(places)}f}%"
    if round(number * 100, int(places)) == 0:
        return text
    return ("+" if number > 0 else "−") + text


@register.filter
def is_number(value) -> bool:
    number = _number(value)
    return number is not None and not math.isnan(float(number))


@register.filter
def pretty_json(value) -> str:
    if not value:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.simple_tag
def badge(obj_or_status, label: str | None = None) -> str:
    """A status badge: {% badge order %} or {% badge "proposed" "Proposed" %}."""
    if hasattr(obj_or_status, "status"):
        status = obj_or_status.status
        label = label or obj_or_status.get_status_display()
    else:
        status = str(obj_or_status)
        label = label or status.replace("_", " ").capitalize()
    return format_html('<span class="badge badge-{}">{}</span>', status, label)


@register.simple_tag
def side(value: str, label: str | None = None) -> str:
    buying = value in ("buy", "buy_to_cover")
    return format_html(
        '<span class="side side-{}">{}</span>',
        "buy" if buying else "sell",
        label or value.replace("_", " ").capitalize(),
    )


def asset_url(path: str) -> str:
    """The static URL of an asset; without a manifest entry (no collectstatic yet, as in
    tests) the plain URL, so that a page, and above all an error page, still renders."""
    try:
        return static(path)
    except ValueError:
        log.warning("static asset %s is missing from the manifest: run collectstatic", path)
        return f"{settings.STATIC_URL}{path}"


@register.simple_tag
def asset(path: str) -> str:
    return asset_url(path)


@register.simple_tag(takes_context=True)
def htmx_assets(context) -> str:
    """django-htmx's own htmx script tag, falling back to the plain asset URL."""
    try:
        return htmx_script(context)
    except ValueError:
        return format_html('<script src="{}"></script>', asset_url("django_htmx/htmx-2.min.js"))


@register.filter
def plain(value) -> str:
    """A parameter as a person writes it: ['buy', 'sell_short'] → buy, sell short;
    1000000.0 → 1,000,000; 0.25 → 0.25; True → yes."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(plain(item) for item in value) or DASH
    if isinstance(value, int | float | Decimal):
        return qty(value)
    if value is None or value == "":
        return DASH
    return str(value).replace("_", " ") if str(value).islower() else str(value)
