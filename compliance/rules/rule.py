"""Rules as data: a :class:`Rule` is a kind, its parameters, a severity and a scope.

Every check of a rule's parameters lives here, so that the command line, the API and the
rule book pages refuse the same things with the same words. A bad rule raises
:class:`RuleError`, which names the rule and the parameter at fault.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GROUP_BY",
    "KINDS",
    "SEVERITIES",
    "SIDES",
    "Kind",
    "RestrictedList",
    "Rule",
    "RuleError",
]

SIDES = ("buy", "sell", "sell_short", "buy_to_cover")
SEVERITIES = ("warning", "soft", "hard")
GROUP_BY = ("security", "issuer", "sector", "country", "asset_class", "currency")

_REQUIRED = object()


class RuleError(ValueError):
    """A rule that cannot be checked: an unknown kind, a missing or impossible parameter.

    ``rule`` is the rule's id (None when it has none yet) and ``field`` the parameter at
    fault (``"kind"``, ``"limit"``, ``"severity"``, ...), so that a form can put the
    message beside the right input.
    """

    def __init__(self, message: str, *, rule: Hashable | None = None, field: str | None = None):
        super().__init__(message)
        self.rule = rule
        self.field = field


@dataclass(frozen=True)
class Kind:
    """What a rule kind measures.

    ``level`` is ``"account"`` for a measure of the whole portfolio after the orders
    (which can be breached passively) or ``"order"`` for a measure of each order.
    ``params`` maps each parameter to its default (required ones have none).
    ``limit`` says what the limit is: ``"share"`` (a fraction of NAV, 0 to 1),
    ``"number"`` (any non-negative number), or None (the kind has a fixed limit).
    """

    name: str
    level: str
    params: Mapping[str, Any]
    limit: str | None
    default_severity: str
    measures: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "restricted",
            "order",
            {"list": _REQUIRED, "sides": ("buy",)},
            None,
            "hard",
            "per order of a listed side: 1 when its security or its issuer is on the list",
        ),
        Kind(
            "max_weight",
            "account",
            {"group_by": _REQUIRED, "limit": _REQUIRED},
            "share",
            "hard",
            "largest group weight after (a currency group counts its cash)",
        ),
        Kind("min_cash", "account", {"limit": _REQUIRED}, "share", "hard", "cash over NAV after"),
        Kind(
            "no_overdraft",
            "account",
            {},
            None,
            "hard",
            "lowest cash balance after, in base currency, over the account's currencies",
        ),
        Kind(
            "no_short",
            "account",
            {},
            None,
            "hard",
            "lowest position after of a long-only account (per sell: its position after)",
        ),
        Kind(
            "max_order_notional",
            "order",
            {"limit": _REQUIRED},
            "number",
            "hard",
            "per order: quantity x price x multiplier x FX, in the account's base currency",
        ),
        Kind(
            "max_adv_pct",
            "order",
            {"limit": _REQUIRED},
            "number",
            "hard",
            "per order: quantity over the security's average daily volume",
        ),
        Kind(
            "price_collar",
            "order",
            {"limit": _REQUIRED},
            "number",
            "hard",
            "per limit order: |limit price / price - 1|",
        ),
        Kind(
            "ucits_5_10_40",
            "account",
            {},
            None,
            "hard",
            "sum of the weights of issuers above 5% (<= 40%) and the largest issuer weight "
            "(<= 10%), government issuers excluded",
        ),
        Kind(
            "diversified_fund",
            "account",
            {},
            None,
            "hard",
            "share of NAV in cash, government securities, other investment companies and "
            "issuer positions each <= 5% of NAV and <= 10% of the issuer's voting securities "
            "(>= 75%; Investment Company Act of 1940, section 5(b)(1))",
        ),
        Kind(
            "wash_sale",
            "order",
            {"days": 30},
            None,
            "warning",
            "per buy: days since the latest sale of the security at a loss in the account",
        ),
        Kind(
            "duplicate_order",
            "order",
            {"minutes": _REQUIRED},
            None,
            "soft",
            "per order: minutes to the nearest other live order of the same account, "
            "security and side",
        ),
    )
}


#: A figure written as text, as the API takes every figure ("0.1", "-5", "2.5e-3").
_DECIMAL_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _number(value: Any, what: str, rule: Hashable, name: str) -> float:
    given = value
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value.strip()):
        value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleError(f"{what} must be a number, not {given!r}", rule=rule, field=name)
    if value < 0:
        raise RuleError(f"{what} must not be negative ({value})", rule=rule, field=name)
    return float(value)


@dataclass(frozen=True)
class Rule:
    """One rule of the rule book, as the engine checks it.

    ``id`` -- any hashable (a database key, a code such as ``"R1"``); results echo it.
    ``kind`` -- one of :data:`KINDS`.
    ``params`` -- the kind's parameters (see :data:`KINDS`; defaults are filled in, an
    unknown parameter is an error): ``limit``, ``group_by``, ``list`` (the name of a
    restricted list, or a tuple of names), ``sides``, ``days``, ``minutes``.
    ``severity`` -- ``"hard"`` (a failed order is rejected), ``"soft"`` (it needs an
    override) or ``"warning"`` (it goes through, the warning recorded); default: the
    kind's (``warning`` for wash_sale, ``soft`` for duplicate_order, else ``hard``).
    ``scope`` -- None for every account, or the collection of account ids it binds
    (accounts of a model or a group are resolved to ids by the caller).
    ``version`` -- the version of the rule the results were measured with.
    """

    id: Hashable
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    severity: str | None = None
    scope: Collection[Hashable] | None = None
    version: int = 1

    def __post_init__(self) -> None:
        rid = self.id
        spec = KINDS.get(self.kind)
        if spec is None:
            raise RuleError(
                f"rule {rid}: unknown kind {self.kind!r} (one of {', '.join(KINDS)})",
                rule=rid,
                field="kind",
            )
        severity = spec.default_severity if self.severity is None else self.severity
        if severity not in SEVERITIES:
            raise RuleError(
                f"rule {rid}: severity must be hard, soft or warning, not {severity!r}",
                rule=rid,
                field="severity",
            )
        if self.kind == "wash_sale" and severity != "warning":
            # a loss sale before a buy matters to the tax report, not to whether the buy
            # may trade: the issue's table makes it a warning, and only a warning
            raise RuleError(
                f"rule {rid}: a wash sale is a warning only (it never holds a buy), "
                f"not {severity!r}",
                rule=rid,
                field="severity",
            )
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise RuleError(
                f"rule {rid}: version must be a whole number", rule=rid, field="version"
            )
        scope = self.scope
        if scope is not None:
            if isinstance(scope, str | bytes) or not isinstance(scope, Iterable):
                raise RuleError(
                    f"rule {rid}: scope must be a collection of account ids",
                    rule=rid,
                    field="scope",
                )
            scope = frozenset(scope)
        params = dict(self.params or {})
        for name in params:
            if name not in spec.params:
                known = ", ".join(spec.params) or "none"
                raise RuleError(
                    f"rule {rid}: {self.kind} has no parameter {name!r} (its parameters: {known})",
                    rule=rid,
                    field=name,
                )
        for name, default in spec.params.items():
            if name not in params or params[name] is None:
                if default is _REQUIRED:
                    raise RuleError(f"rule {rid}: {self.kind} needs {name!r}", rule=rid, field=name)
                params[name] = default
        params = _normalise(self.kind, params, spec, rid)
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "scope", scope)
        object.__setattr__(self, "params", params)

    @property
    def spec(self) -> Kind:
        """The :class:`Kind` of this rule."""
        return KINDS[self.kind]

    @property
    def limit(self) -> float | None:
        """The limit the measured value is compared with (fixed for some kinds)."""
        kind = self.kind
        if "limit" in self.params:
            return self.params["limit"]
        if kind in ("no_overdraft", "no_short", "restricted"):
            return 0.0
        if kind == "ucits_5_10_40":
            return UCITS_AGGREGATE
        if kind == "diversified_fund":
            return DIVERSIFIED_MIN
        if kind == "wash_sale":
            return float(self.params["days"])
        if kind == "duplicate_order":
            return float(self.params["minutes"])
        raise AssertionError(kind)  # pragma: no cover

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """A rule from its flat JSON form: ``{"id", "kind", "severity", "scope",
        "version", ...parameters}``; ``scope`` is ``"all"`` or ``{"accounts": [...]}``."""
        if not isinstance(data, Mapping):
            raise RuleError("a rule must be a JSON object")
        rid = data.get("id")
        if rid is None or rid == "":
            raise RuleError("a rule has no id", field="id")
        if "kind" not in data:
            raise RuleError(f"rule {rid} has no kind", rule=rid, field="kind")
        scope = data.get("scope", "all")
        if scope is None or scope == "all":
            accounts = None
        elif isinstance(scope, Mapping) and set(scope) == {"accounts"}:
            accounts = scope["accounts"]
            if not isinstance(accounts, list):
                raise RuleError(
                    f"rule {rid}: scope accounts must be a list", rule=rid, field="scope"
                )
        else:
            raise RuleError(
                f'rule {rid}: scope must be "all" or {{"accounts": [...]}}, not {scope!r}',
                rule=rid,
                field="scope",
            )
        params = {
            k: v for k, v in data.items() if k not in ("id", "kind", "severity", "scope", "version")
        }
        return cls(
            id=rid,
            kind=data["kind"],
            params=params,
            severity=data.get("severity"),
            scope=accounts,
            version=data.get("version", 1),
        )


UCITS_ISSUER = 0.10
UCITS_THRESHOLD = 0.05
UCITS_AGGREGATE = 0.40
DIVERSIFIED_MIN = 0.75
DIVERSIFIED_ISSUER = 0.05
DIVERSIFIED_VOTING = 0.10


def _normalise(kind: str, params: dict, spec: Kind, rid: Hashable) -> dict:
    if "limit" in params:
        limit = _number(params["limit"], f"rule {rid}: limit", rid, "limit")
        if spec.limit == "share" and limit > 1:
            raise RuleError(
                f"rule {rid}: limit is a share of NAV and must be at most 1 (100%), not {limit}",
                rule=rid,
                field="limit",
            )
        params["limit"] = limit
    if "group_by" in params and params["group_by"] not in GROUP_BY:
        raise RuleError(
            f"rule {rid}: group_by must be one of {', '.join(GROUP_BY)}, "
            f"not {params['group_by']!r}",
            rule=rid,
            field="group_by",
        )
    if kind == "restricted":
        names = params["list"]
        if isinstance(names, str):
            names = (names,)
        elif isinstance(names, Iterable) and not isinstance(names, bytes | Mapping):
            names = tuple(names)
        else:
            raise RuleError(f"rule {rid}: list must name a restricted list", rule=rid, field="list")
        if not names or not all(isinstance(n, str) and n for n in names):
            raise RuleError(f"rule {rid}: list must name a restricted list", rule=rid, field="list")
        params["list"] = names
        sides = params["sides"]
        if isinstance(sides, str) or not isinstance(sides, Iterable):
            raise RuleError(
                f'rule {rid}: sides must be a list such as ["buy", "sell_short"], not {sides!r}',
                rule=rid,
                field="sides",
            )
        sides = tuple(sides)
        bad = [s for s in sides if s not in SIDES]
        if bad or not sides:
            raise RuleError(
                f"rule {rid}: sides must be taken from {', '.join(SIDES)}, not {bad or sides!r}",
                rule=rid,
                field="sides",
            )
        params["sides"] = sides
    if kind == "wash_sale":
        days = _number(params["days"], f"rule {rid}: days", rid, "days")
        if days != int(days):
            raise RuleError(
                f"rule {rid}: days must be a whole number of days, not {days!r}",
                rule=rid,
                field="days",
            )
        params["days"] = int(days)
    if kind == "duplicate_order":
        params["minutes"] = _number(params["minutes"], f"rule {rid}: minutes", rid, "minutes")
    return params


@dataclass(frozen=True)
class RestrictedList:
    """A restricted list: securities (by the book's security ids, e.g. tickers) and issuers
    (by name) that a ``restricted`` rule refuses for the sides it names."""

    name: str
    securities: frozenset = frozenset()
    issuers: frozenset = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "securities", frozenset(self.securities))
        object.__setattr__(self, "issuers", frozenset(self.issuers))
