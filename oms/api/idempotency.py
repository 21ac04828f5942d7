"""`Idempotency-Key` for POSTs: a retry with the same key gets the first answer.

The key is stored, with the answer, in the transaction that made the change: a
key exists only for a change that committed, and a change never commits without
its key. A retry (same user, same key, same request) gets the stored status and
body back and changes nothing; the same key with a different request is refused
with 422. Only successful answers are stored: a request that failed changed
nothing and may be sent again, corrected, with the same key.

Concurrent requests with one key: the first thing a request does in its
transaction is to claim the key, by inserting its row. A second request's insert
waits on the unique index until the first transaction ends: if it committed,
the insert fails and the second replays the stored answer; if it rolled back
(the request failed), the insert goes through and the second runs as if it were
first. Looking for the key and then running, as before, let a retry that looked
before the first committed run the change again and answer 409 (2 of 20 in a
burst). On SQLite writers are serialised whole (BEGIN IMMEDIATE), which gives
the same result.
"""

from __future__ import annotations

import functools
import hashlib
import json

from django.core.files.uploadedfile import UploadedFile
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


def _file_print(value):
    """An uploaded file in a fingerprint: its name, size and content's digest (its
    bytes are no JSON)."""
    if not isinstance(value, UploadedFile):
        return value
    digest = hashlib.sha256()
    for chunk in value.chunks():
        digest.update(chunk)
    value.seek(0)
    return {"file": value.name, "size": value.size, "sha256": digest.hexdigest()}


def _fingerprint(request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # a form body (QueryDict), files included
        data = {k: [_file_print(v) for v in values] for k, values in data.lists()}
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


class _Unsuccessful(Exception):
    """Carries an answer that is not a success out of the claim's transaction, so that
    the claim is rolled back with whatever the request did."""

    def __init__(self, response: Response) -> None:
        self.response = response


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
    stored = keys.first()  # a plain retry, long after: no need to claim anything
    if stored is not None:
        return _replay(stored, fingerprint)
    try:
        with transaction.atomic():
            # The claim: it waits here for a concurrent request with this key to end.
            claim = IdempotencyKey.objects.create(
                user=request.user,
                key=key,
                method=request.method,
                path=request.get_full_path()[:500],
                fingerprint=fingerprint,
                status_code=0,  # not answered yet; never visible outside this transaction
            )
            response = handler()
            if not status.is_success(response.status_code):
                raise _Unsuccessful(response)
            claim.status_code = response.status_code
            claim.response_body = _plain(response.data)
            claim.save(update_fields=["status_code", "response_body"])
            return response
    except _Unsuccessful as unsuccessful:
        return unsuccessful.response
    except IntegrityError:
        # The key was claimed by a request that committed first: its answer stands.
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
