"""API error handling: domain errors become 4xx answers that say what is wrong."""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from oms.state import TransitionError


def _noun(model) -> str:
    return str(model._meta.verbose_name) if model is not None else "object"


def _missing_from_view(context) -> str:
    """ "No order #12 among those you may see." (rather than Django's "No Order matches
    the given query.", which names a class)."""
    view = context.get("view")
    queryset = getattr(view, "queryset", None)
    noun = _noun(queryset.model if queryset is not None else None)
    pk = (context.get("kwargs") or {}).get("pk")
    return f"No {noun} #{pk} among those you may see." if pk else f"No such {noun}."


def _missing_object(exc: ObjectDoesNotExist) -> str:
    """ "No such order." (rather than "Order matching query does not exist.")."""
    model = next((m for m in apps.get_models() if type(exc) is m.DoesNotExist), None)
    return f"No such {_noun(model)}."


def exception_handler(exc, context):
    """Domain errors as 4xx answers; every message in the user's words (no class names)."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = ValidationError(detail=detail)
    if isinstance(exc, TransitionError):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Http404):
        exc = NotFound(_missing_from_view(context))
    elif isinstance(exc, ObjectDoesNotExist):
        # A service looked up an object that is gone (or never was).
        exc = NotFound(_missing_object(exc))
    return drf_exception_handler(exc, context)
