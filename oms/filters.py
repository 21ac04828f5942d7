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
