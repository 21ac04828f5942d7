"""Request parsing that refuses what the application would choke on.

A JSON body is read at most up to Django's DATA_UPLOAD_MAX_MEMORY_SIZE and may
nest at most MAX_DEPTH levels: Python's decoder recurses once per level, so a
body of a few thousand brackets was a RecursionError (a 500), and no request of
this API nests more than three (a model's list of targets). Strings may not
hold a NUL character, which PostgreSQL cannot store.
"""

from __future__ import annotations

import io
import re
from itertools import accumulate

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 20

# A JSON string (its escapes included): brackets inside one are text, not nesting.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_LEVEL = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _depth(raw: bytes) -> int:
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_LEVEL.__getitem__, brackets)), default=0)


def too_large(limit: int) -> str:
    """What a body over DATA_UPLOAD_MAX_MEMORY_SIZE is told, whoever finds it."""
    return f"The body is larger than {limit:,} bytes."


def _find_nul(value, path: str = "") -> str | None:
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return f"{path}.{key!r}".lstrip(".")
            found = _find_nul(item, f"{path}.{key}".lstrip("."))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_nul(item, f"{path}[{index}]")
            if found:
                return found
    return None


class JSONParser(JSONParser):
    """JSON of bounded size and depth, with no NUL character in any string."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # None: no limit
        # One byte past the limit tells a body at the limit from one over it.
        raw = stream.read(-1 if limit is None else limit + 1) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise ParseError(too_large(limit))
        if _depth(raw) > MAX_DEPTH:
            raise ParseError(f"The body is nested more than {MAX_DEPTH} levels deep.")
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        where = _find_nul(data)
        if where:
            raise ParseError(f"Null characters are not allowed (in {where}).")
        return data
