"""Failed logins are counted, and a name or an address with too many is refused a while.

Two counters, in the cache, each for a window that starts at its first failure:
per username (someone guessing one person's password) and per client address
(someone trying many names). While either is over its limit, a login is refused
before the password is even checked, with a message that says when to try again;
a successful login clears its username's counter. The login page, the admin's
login and the API's token authentication (per address only: a token names no
user until it is found) all count here.

Settings: OMS_LOGIN_FAILURES_PER_USERNAME (default 5), OMS_LOGIN_FAILURES_PER_ADDRESS
(default 20), OMS_LOGIN_LOCKOUT_SECONDS (the window, default 900), OMS_NUM_PROXIES
(how many proxies in front of the server append to X-Forwarded-For; default 0:
the address is REMOTE_ADDR) and OMS_LOGIN_THROTTLE_CACHE (the cache alias). The
embedded demo's cache is per process; production's is Redis, shared by every
web server.
"""

from __future__ import annotations

import hashlib
import math

from django.conf import settings
from django.core.cache import caches

PREFIX = "oms:login-failures"


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or the entry of X-Forwarded-For that the
    nearest of OMS_NUM_PROXIES trusted proxies wrote (the same rule as DRF's)."""
    meta = getattr(request, "META", {})
    proxies = settings.OMS_NUM_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return meta.get("REMOTE_ADDR", "") or "unknown"


def _key(kind: str, value: str) -> str:
    # Usernames and addresses are hashed: cache keys have a restricted alphabet.
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"{PREFIX}:{kind}:{digest}"


def _limits(request, username: str | None) -> list[tuple[str, int, str]]:
    limits = [
        (
            _key("address", client_address(request)),
            settings.OMS_LOGIN_FAILURES_PER_ADDRESS,
            "from your address",
        )
    ]
    if username:
        limits.append(
            (
                _key("username", username),
                settings.OMS_LOGIN_FAILURES_PER_USERNAME,
                f"for {username}",
            )
        )
    return limits


def _cache():
    return caches[settings.OMS_LOGIN_THROTTLE_CACHE]


def _over(request, username: str | None) -> str | None:
    cache = _cache()
    for key, limit, whose in _limits(request, username):
        if (cache.get(key) or 0) >= limit:
            return whose
    return None


def refusal(request, username: str | None) -> str | None:
    """Why a login must be refused now, in the user's words, or None if it may go on."""
    whose = _over(request, username)
    if whose is None:
        return None
    minutes = math.ceil(settings.OMS_LOGIN_LOCKOUT_SECONDS / 60)
    return (
        f"Too many failed logins {whose}. Try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}, or ask operations to reset the password."
    )


def address_blocked(request) -> bool:
    """Whether this client's address has too many failures (for token logins)."""
    return _over(request, None) is not None


def record_failure(request, username: str | None) -> None:
    """Count one failed attempt for the address and the username."""
    cache = _cache()
    for key, _limit, _whose in _limits(request, username):
        # add() starts the window; incr() leaves its expiry alone.
        if not cache.add(key, 1, settings.OMS_LOGIN_LOCKOUT_SECONDS):
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.add(key, 1, settings.OMS_LOGIN_LOCKOUT_SECONDS)


def record_success(request, username: str) -> None:
    """A correct password clears its username's count (the address keeps its own)."""
    _cache().delete(_key("username", username))


def retry_after() -> int:
    return settings.OMS_LOGIN_LOCKOUT_SECONDS
