"""Whether a quote is believable, before it is applied: the one statement of the
rule for every source. A quote that fails is quarantined with the reason this
returns, never applied (``portfolios.services.quotes``).

- a price that is not a finite number, or a negative one;
- zero, unless the instrument may trade at zero (an option far out of the money);
- a bid above the same venue's ask;
- dated in the future beyond the allowed clock skew (probing once posted a price dated
  9999-12-31, which then stayed the latest price for good);
- a move beyond ``jump_limit`` (a fraction: 0.25 = 25%) from the last accepted price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import isfinite

from .base import Quote


@dataclass(frozen=True)
class Limits:
    jump_limit: float = 0.25
    future_skew: timedelta = timedelta(seconds=5)


#: The reasons of a quote with a figure that is not a number (NaN, infinite): the
#: quarantine cannot keep such a figure (it stores none) and the quote is never released.
NOT_FINITE = "a price that is not a finite number"
SIZE_NOT_FINITE = "a size that is not a finite number"


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def quote_problem(
    quote: Quote,
    *,
    previous: float | None,
    zero_allowed: bool,
    now: datetime,
    limits: Limits,
) -> str | None:
    """Why the quote must not be applied, in words; None when it may."""
    present = False
    for name, value in (("bid", quote.bid), ("ask", quote.ask), ("last", quote.last)):
        if value is None:
            continue
        present = True
        if not isfinite(value):
            return NOT_FINITE
        if value <= 0:
            if value < 0:
                return f"negative {name} {_fmt(value)}"
            if not zero_allowed:
                return f"{name} of zero, and {quote.symbol} cannot trade at zero"
    if not present:
        return "no price"
    if not isfinite(quote.size):
        return SIZE_NOT_FINITE
    if quote.bid is not None and quote.ask is not None and quote.bid > quote.ask:
        return f"bid {_fmt(quote.bid)} above ask {_fmt(quote.ask)} on {quote.venue}"
    if quote.at > now + limits.future_skew:
        return f"dated {quote.at.isoformat()}, in the future (now {now.isoformat()})"
    reference = quote.reference
    if previous and reference is not None and previous > 0:
        move = abs(reference / previous - 1)
        if move > limits.jump_limit:
            return (
                f"{_fmt(reference)} is {move:.0%} from the last accepted {_fmt(previous)} "
                f"(the limit is {limits.jump_limit:.0%})"
            )
    return None
