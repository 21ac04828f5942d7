"""API token authentication, throttled per client address (oms.throttling).

A token is 40 random hex digits: guessing one is hopeless, but a client that
keeps sending wrong tokens is told to stop (429 with Retry-After) rather than
allowed to try forever, and a wrong token counts as a failed login of its address.
"""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled

from oms import throttling


class ThrottledTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, refused while the address has too many failures."""

    def authenticate(self, request):
        words = get_authorization_header(request).split()
        if not words or words[0].lower() != self.keyword.lower().encode():
            return None  # not a token login: nothing to count
        if throttling.address_blocked(request):
            raise Throttled(
                wait=throttling.retry_after(),
                detail="Too many requests with a wrong token from your address.",
            )
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            throttling.record_failure(request, None)
            raise
