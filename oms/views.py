"""What every page view shares.

Page views are thin: they parse input, call one service (or read through a
selector), and render. The helpers here keep that shape the same everywhere:
one permission check per action, one way to page a list, one way to put a
service's ValidationError onto a form, one way to say why a step was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from oms.roles import Action, require
from oms.state import TransitionError

PAGE_SIZE = 50


def action_required(action: Action) -> Callable:
    """Log in, then the one permission check of the action (PermissionDenied → 403)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            require(request.user, action)
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator


def paginate(request: HttpRequest, items, per_page: int = PAGE_SIZE) -> Page:
    return Paginator(items, per_page).get_page(request.GET.get("page"))


REFUSED = (TransitionError, ValidationError)


def refusal_messages(error: Exception) -> list[str]:
    """Why a service refused, in the user's words: each message of a ValidationError
    (of every field), or what a TransitionError says (the object is past that step)."""
    if isinstance(error, ValidationError):
        if hasattr(error, "error_dict"):
            return [m for field_messages in error.message_dict.values() for m in field_messages]
        return list(error.messages)
    return [str(error)]


def refusal(error: Exception) -> str:
    return " ".join(refusal_messages(error))


def service_step(request: HttpRequest, call: Callable[[], object], success) -> bool:
    """Run one service call for a page and flash its outcome: `success` (a message,
    or a function of what the call returned), or why the step was refused. True
    when the step went through."""
    try:
        result = call()
    except REFUSED as error:
        messages.error(request, refusal(error))
        return False
    messages.success(request, success(result) if callable(success) else success)
    return True


def add_service_errors(form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: on its field where the form has
    one, above the form otherwise."""
    if hasattr(error, "error_dict"):
        for field, field_messages in error.message_dict.items():
            target = field if field in form.fields else None
            for message in field_messages:
                form.add_error(target, message if target else f"{field}: {message}")
    else:
        for message in error.messages:
            form.add_error(None, message)


def partial_or_page(request: HttpRequest, page: str, partial: str, context: dict, **kwargs):
    """NetBox-style lists: an HTMX request (filtering, paging) gets the table only."""
    htmx = getattr(request, "htmx", None)
    template = partial if htmx and not htmx.boosted and htmx.target else page
    return render(request, template, context, **kwargs)
