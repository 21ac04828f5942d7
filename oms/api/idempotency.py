"""`Idempotency-Key` for POSTs: a retry with the same key gets the first answer.

The key is stored, with the answer, in the transaction that made the change: a
key exists only for a change that committed, and a change never commits without
its key. A retry (same user, same key, same request) gets the stored status and
body back and changes nothing; the same key with a different request is refused
with 422. Only successful answers are stored: a request that failed changed
nothing and may be sent again, corrected, with the same key.
"""

from __future__ import annotations

import functools
import hashlib
import json

from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from oms.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


def _plain(data) -> object:
    """The body as it goes out on the wire, and comes back the same from the database."""
    return json.loads(json.dumps(data, cls=JSONEncoder))


def _fingerprint(request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # a form body (QueryDict)
        data = dict(data.lists())
    body = json.dumps(
        [request.method, request.get_full_path(), data], sort_keys=True, cls=JSONEncoder
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _replay(stored: IdempotencyKey, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"{HEADER} {stored.key!r} was first used for {stored.method} {stored.path} with "
            "another body: send a new key for a new request."
        )
    response = Response(stored.response_body, status=stored.status_code)
    response[REPLAYED_HEADER] = "true"
    return response


def run_once(request, handler) -> Response:
    """Answer `request` with `handler()`, or with the stored answer of its first run."""
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError({HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable characters."]})
    fingerprint = _fingerprint(request)
    keys = IdempotencyKey.objects.filter(user=request.user, key=key)
    try:
        with transaction.atomic():
            stored = keys.first()
            if stored is not None:
                return _replay(stored, fingerprint)
            response = handler()
            if status.is_success(response.status_code):
                IdempotencyKey.objects.create(
                    user=request.user,
                    key=key,
                    method=request.method,
                    path=request.get_full_path()[:500],
                    fingerprint=fingerprint,
                    status_code=response.status_code,
                    response_body=_plain(response.data),
                )
            return response
    except IntegrityError:
        # A concurrent request with the same key committed first: its answer stands,
        # and what this one did was rolled back with its key.
        stored = keys.first()
        if stored is None:
            raise
        return _replay(stored, fingerprint)


def idempotent(method):
    """Decorate a viewset's POST handler so that it honours `Idempotency-Key`."""

    @functools.wraps(method)
    def wrapper(view, request, *args, **kwargs):
        return run_once(request, lambda: method(view, request, *args, **kwargs))

    return wrapper
