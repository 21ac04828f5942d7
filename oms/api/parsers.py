"""Request parsing that refuses what the database would choke on."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


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
    """JSON, with no NUL character in any string: PostgreSQL cannot store one, and
    a lookup with one is a database error, not bad input, unless refused here."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        where = _find_nul(data)
        if where:
            raise ParseError(f"Null characters are not allowed (in {where}).")
        return data
