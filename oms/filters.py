"""Filter building blocks shared by every app's filter definitions."""

from __future__ import annotations

from datetime import UTC

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, brought to UTC.

    Python accepts offsets up to ±23:59 and PostgreSQL only up to ±15:59, and a
    date near year 1 can leave the calendar when shifted: both are a 400 here,
    never an error from the database."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError("Date and time out of range.", code="invalid") from exc


class UTCIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class IdFilter(filters.NumberFilter):
    """An object's id: a whole number that an id column can hold. Anything else is a
    400 naming the filter, never a database error (SQLite refuses an integer beyond
    64 bits with an OverflowError: a 500)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", -(2**63))
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)
