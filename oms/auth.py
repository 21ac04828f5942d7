"""Logging in, throttled (oms.throttling): the backend refuses, the form says why.

`ThrottledModelBackend` is the project's authentication backend: every password
login (the login page, the admin's, anything that calls `authenticate()` with a
request) is refused while its username or address has too many failures, and
counts its own failure or success. The forms put the refusal in words on the
page before the password is checked.
"""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError

from . import throttling

THROTTLED = "throttled"


class ThrottledModelBackend(ModelBackend):
    """Django's user-and-password backend, behind the failed-login counters."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:  # not a login from outside (a test's client.login, a shell)
            return super().authenticate(request, username, password, **kwargs)
        if throttling.refusal(request, username):
            raise PermissionDenied  # stops authenticate() without trying the password
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            throttling.record_failure(request, username)
        else:
            throttling.record_success(request, username)
        return user


class ThrottledLoginMixin:
    """Refuse, in words, a login that the counters do not allow."""

    def clean(self):
        username = self.cleaned_data.get("username")
        message = throttling.refusal(self.request, username) if self.request else None
        if message:
            raise ValidationError(message, code=THROTTLED)
        return super().clean()

    def is_throttled(self) -> bool:
        return self.has_error("__all__", THROTTLED)


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    """The login page's form."""


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's login form."""
