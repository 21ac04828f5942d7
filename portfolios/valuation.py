"""Live valuation of the book above the account: per account, then totalled by model,
by manager and for the firm, and the firm's exposure by asset class, currency, sector
and country (issue 12, items 4 and 9). A selector: reads only.

One pass over the whole book, whatever the number of accounts: the accounts, their
positions with their securities, the open tax lots' cost, the cash, in four queries;
the prices from the quote store with their freshness (``portfolios.quotes.prices_for``,
at most one query), the previous closes (one query), FX with crosses
(``portfolios.quotes.FxBoard``, two queries); then pandas. The account page's
positions (``portfolios.quotes.positions_valued``) read the same prices and FX, so
an account's figures here are the ones its page shows.

Figures:

- **market value**: quantity x multiplier x price, in the security's currency,
  converted to the account's base currency and to the firm's (``OMS_BASE_CURRENCY``),
  each directly from the security's currency;
- **cash**: every cash balance converted the same way; **NAV** = market value + cash;
- **unrealised P&L**: market value less the open tax lots' cost (x multiplier), both
  in the security's currency, converted at today's rate;
- **day P&L**: quantity x multiplier x (price - previous close), converted; a
  security with no close before today adds nothing to it.

A position whose price or FX rate is **stale** is valued at it and counted in
``stale``; one whose price or FX rate is **missing** cannot be valued: it adds nothing
to the figures and is counted in ``missing`` (cash in a currency with no rate is
counted in ``cash_missing``). Every total that any of them touches says so
(``incomplete``): nothing is dropped without a count.

Floats inside, rounded once to cents (``Decimal``) at the boundary (``rows``).

- **realised P&L**: what the account's sales realised, from the lots they closed as
  booked (``portfolios.selectors.realised_pnl``, all time), in the account's base and
  converted to the firm's; a gain with no FX rate into the base cannot be counted and
  adds to ``missing``.

A bond's market value is its dirty value: face x price / 100 plus the interest accrued
to today (``portfolios.terms.accrued_per_unit``, as the account page values it); its
unrealised and day P&L are on the clean price (accrued interest is income, not basis).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import F, FloatField, QuerySet, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from .marketdata import Freshness
from .models import AssetClass, CashBalance, CashMovement, Portfolio, Position, Security, TaxLot
from .quotes import FxBoard, previous_closes, prices_for
from .selectors import FxTable, _raw_rows, realised_pnl
from .terms import TERMS_FIELDS, accrued_per_unit, instrument_of

#: The money figures of every level, in the order pages, CSV and the API give them.
FIGURES = ("market_value", "cash", "nav", "unrealised_pnl", "day_pnl", "realised_pnl")
COUNTS = ("positions", "stale", "missing", "cash_missing")
LEVELS = ("firm", "manager", "model", "account")
DIMENSIONS = {
    "asset_class": "Asset class",
    "currency": "Currency",
    "sector": "Sector",
    "country": "Country",
}
CASH = "Cash"
UNCLASSIFIED = "Unclassified"
NO_MODEL = "No model"
CENT = Decimal("0.01")
WEIGHT = Decimal("0.000001")


def firm_currency() -> str:
    return settings.OMS_BASE_CURRENCY


def _cents(x) -> Decimal:
    return Decimal(repr(round(float(x), 2))).quantize(CENT)


def _incomplete(counts: dict) -> bool:
    return bool(counts["stale"] or counts["missing"] or counts["cash_missing"])


@dataclass(frozen=True)
class BookValuation:
    """The valued book: ``positions`` (one row per position) and ``cash`` (one row per
    balance) as frames with firm-currency and base-currency columns, ``accounts`` (one
    row per account). Levels and dimensions are read from them (``totals``,
    ``exposure``)."""

    currency: str
    at: datetime
    accounts: pd.DataFrame
    positions: pd.DataFrame
    cash: pd.DataFrame

    # --- totals by level -------------------------------------------------------------

    def totals(self, level: str) -> list[dict]:
        """One row per account, model, manager, or the one firm row; money in the firm's
        currency (and, per account, in its base currency too), with the counts of stale
        and missing prices and ``incomplete`` when either is not zero."""
        if level not in LEVELS:
            raise ValueError(f"No level {level!r}: choose one of {', '.join(LEVELS)}.")
        accounts = self.accounts
        firm = accounts[[f"{f}_firm" for f in FIGURES] + list(COUNTS)]
        if level == "account":
            rows = []
            for record in accounts.sort_values("code").to_dict("records"):
                row = self._row(record, suffix="_firm")
                row |= {
                    "account": record["account"],
                    "code": record["code"],
                    "name": record["name"],
                    "manager": record["manager_name"],
                    "model": record["model_name"],
                    "base_currency": record["base_currency"],
                    "base": {f: _cents(record[f"{f}_base"]) for f in FIGURES},
                }
                rows.append(row)
            return rows
        if level == "firm":
            record = firm.sum().to_dict() | {"accounts": len(accounts)}
            return [self._row(record, suffix="_firm") | {"key": "firm", "label": "Firm"}]
        key, label = ("manager", "manager_name") if level == "manager" else ("model", "model_name")
        grouped = (
            accounts.assign(_key=accounts[key].fillna(0).astype(int))
            .groupby("_key")
            .agg(
                **{column: (column, "sum") for column in firm.columns},
                accounts=("account", "size"),
                _label=(label, "first"),
            )
            .reset_index()
            .sort_values("_label")
        )
        return [
            self._row(record, suffix="_firm")
            | {"key": int(record["_key"]) or None, "label": record["_label"]}
            for record in grouped.to_dict("records")
        ]

    def _row(self, record: dict, *, suffix: str) -> dict:
        counts = {c: int(record[c]) for c in COUNTS}
        row = {"currency": self.currency} | {f: _cents(record[f + suffix]) for f in FIGURES}
        row |= counts | {"incomplete": _incomplete(counts)}
        if "accounts" in record:
            row["accounts"] = int(record["accounts"])
        return row

    # --- exposure by dimension --------------------------------------------------------

    def exposure(self, dimension: str) -> list[dict]:
        """Market value in the firm's currency and weight of NAV per asset class,
        currency, sector or country; cash is its own row (in its own currency for the
        currency breakdown), so that the weights add up to the whole NAV. A row counts
        the positions in it whose price is stale or missing."""
        if dimension not in DIMENSIONS:
            raise ValueError(
                f"No breakdown by {dimension!r}: choose one of {', '.join(DIMENSIONS)}."
            )
        positions, cash = self.positions, self.cash
        if dimension == "currency":
            cash_key = cash["currency"]
        else:
            cash_key = pd.Series(CASH, index=cash.index, dtype=object)
        parts = [
            pd.DataFrame(
                {
                    "label": positions[dimension],
                    "market_value": positions["value_firm"].fillna(0.0),
                    "positions": 1,
                    "stale": positions["stale"].astype(int),
                    "missing": positions["missing"].astype(int),
                    "cash_missing": 0,
                }
            ),
            pd.DataFrame(
                {
                    "label": cash_key,
                    "market_value": cash["amount_firm"].fillna(0.0),
                    "positions": 0,
                    "stale": 0,
                    "missing": 0,
                    "cash_missing": cash["amount_firm"].isna().astype(int),
                }
            ),
        ]
        parts = [part for part in parts if not part.empty]
        if not parts:
            return []
        frame = pd.concat(parts)
        grouped = frame.groupby("label", sort=False).sum(numeric_only=True).reset_index()
        nav = float(grouped["market_value"].sum())
        grouped = grouped.sort_values(["market_value", "label"], ascending=[False, True])
        labels = dict(AssetClass.choices) if dimension == "asset_class" else {}
        rows = []
        for record in grouped.to_dict("records"):
            counts = {c: int(record[c]) for c in COUNTS}
            value = float(record["market_value"])
            rows.append(
                {
                    "key": record["label"],
                    "label": labels.get(record["label"], record["label"]),
                    "currency": self.currency,
                    "market_value": _cents(value),
                    "weight": (Decimal(repr(value / nav)).quantize(WEIGHT) if nav else None),
                    **counts,
                    "incomplete": _incomplete(counts),
                }
            )
        return rows


def _by_pair(pairs: pd.Series, board: FxBoard) -> tuple[pd.Series, pd.Series]:
    """The rate and whether it is stale, for each "CCY|BASE" of ``pairs``: one
    lookup per distinct pair, not per row."""
    readings = {}
    for pair in pairs.unique():
        currency, quote = pair.split("|")
        readings[pair] = board.rate(currency, quote)
    rate = pairs.map({p: (r.rate if r.rate is not None else np.nan) for p, r in readings.items()})
    stale = pairs.map({p: r.freshness == Freshness.STALE for p, r in readings.items()})
    return rate.astype(float), stale.astype(bool)


POSITION_COLUMNS = [
    "account",
    "security",
    "quantity",
    "multiplier",
    "ticker",
    "asset_class",
    "currency",
    "sector",
    "country",
]


def _open_forwards(portfolio_ids, now: datetime) -> pd.DataFrame:
    """The FX forwards the accounts have dealt and not yet settled, one row per account
    and forward, as position rows (one query): ``quantity`` the net base amount,
    ``contract_cost`` the contract rate (quote paid per unit of base), ``base`` its base
    currency. Its legs stay in the cash; the row carries what the legs at spot leave
    out."""
    legs = (
        CashMovement.objects.filter(
            portfolio_id__in=portfolio_ids,
            value_date__gt=timezone.localdate(now),
            security__asset_class=AssetClass.FX_FORWARD,
            reason="fx_leg",
        )
        .values(
            "portfolio_id",
            "security_id",
            "currency",
            "security__base_currency",
            "security__currency",
            "security__ticker",
        )
        .annotate(total=Sum("amount"))
        .order_by()
    )
    rows: dict[tuple[int, int], dict] = {}
    for leg in legs:
        row = rows.setdefault(
            (leg["portfolio_id"], leg["security_id"]),
            {
                "account": leg["portfolio_id"],
                "security": leg["security_id"],
                "quantity": 0.0,
                "quote_amount": 0.0,
                "multiplier": 1.0,
                "ticker": leg["security__ticker"],
                "asset_class": AssetClass.FX_FORWARD.value,
                "currency": leg["security__currency"],
                "sector": "",
                "country": "",
                "base": leg["security__base_currency"],
            },
        )
        if leg["currency"] == leg["security__base_currency"]:
            row["quantity"] += float(leg["total"])
        else:
            row["quote_amount"] += float(leg["total"])
    open_ = [r for r in rows.values() if r["quantity"]]
    for row in open_:
        row["contract_cost"] = -row.pop("quote_amount")
    return pd.DataFrame(open_, columns=[*POSITION_COLUMNS, "base", "contract_cost"])


@dataclass(frozen=True)
class OpenForward:
    """An FX forward an account has dealt and not settled, as its page shows it:
    ``quantity`` of the base currency (> 0 bought), at ``contract_rate``, for
    ``value_date``; ``outright`` today's price for that date and ``value`` what the
    engine makes of it, quantity x (outright - contract rate), in the quote currency
    (None without a price). ``points_base`` is what the forward adds to the account's
    value beside its legs, which are cash at spot: quantity x (outright - spot), in the
    account's base currency (None without a price or a rate)."""

    security: Security
    quantity: Decimal
    contract_rate: Decimal
    outright: Decimal | None
    stale: bool
    value: Decimal | None
    points_base: Decimal | None = None


def open_forwards(
    portfolio: Portfolio, *, now: datetime | None = None, drift_rates: bool = False
) -> list[OpenForward]:
    """The account's open FX forwards, valued by the engine (``FxForward.value``) at
    their latest price, with their points against spot and in the account's base at
    the FX board's live rates, or with ``drift_rates`` at the daily FX table's (the
    rates the stored drift converts at: `portfolios.selectors.FxTable`, so that the
    account's value card adds both at the same rates). A fixed number of queries."""
    now = now or timezone.now()
    rows = _open_forwards([portfolio.pk], now)
    if rows.empty:
        return []
    securities = Security.objects.in_bulk(rows["security"].tolist())
    readings = prices_for(securities.values(), now=now)
    if drift_rates:
        rate = FxTable.latest().rate
    else:
        board = FxBoard.load(now=now)

        def rate(currency: str, quote: str) -> float | None:
            return board.rate(currency, quote).rate

    found = []
    for row in rows.itertuples(index=False):
        security = securities[row.security]
        quantity = Decimal(repr(row.quantity)).quantize(CENT)
        cost = Decimal(repr(row.contract_cost)).quantize(CENT)
        reading = readings.get(security.pk)
        outright = reading.price if reading is not None else None
        value = points_base = None
        if outright is not None:
            value = instrument_of(security).value(quantity, outright, cost=cost).market_value
            value = value.quantize(CENT)
            spot = rate(security.base_currency, security.currency)
            to_base = rate(security.currency, portfolio.base_currency)
            if spot is not None and to_base is not None:
                points = quantity * (outright - Decimal(repr(spot)))
                points_base = (points * Decimal(repr(to_base))).quantize(CENT)
        found.append(
            OpenForward(
                security=security,
                quantity=quantity,
                contract_rate=(cost / quantity).quantize(Decimal("0.000001")),
                outright=outright,
                stale=bool(reading is not None and reading.stale),
                value=value,
                points_base=points_base,
            )
        )
    return sorted(found, key=lambda f: (f.security.value_date, f.security.ticker))


def forward_points(forwards: list[OpenForward]) -> Decimal | None:
    """What open forwards add to their account's value beside their legs (cash at
    spot): the sum of their points in base (decision 41), None when none is priced."""
    points = [f.points_base for f in forwards if f.points_base is not None]
    return sum(points, Decimal(0)) if points else None


def _accrued(positions: pd.DataFrame, now: datetime) -> pd.Series:
    """Interest accrued per unit of quantity today, per position: a bond's (its terms read
    in one query, only when the book holds bonds), zero for every other kind."""
    bonds = positions.loc[positions["asset_class"] == AssetClass.BOND, "security"].unique()
    if not len(bonds):
        return pd.Series(0.0, index=positions.index)
    today = timezone.localdate(now)
    per_unit = {
        row["pk"]: float(accrued_per_unit(row, today))
        for row in Security.objects.filter(pk__in=list(bonds)).values("pk", *TERMS_FIELDS)
    }
    return positions["security"].map(per_unit).fillna(0.0).astype(float)


def book_valuation(
    portfolio_ids: Iterable[int] | QuerySet[Portfolio],
    *,
    currency: str | None = None,
    now: datetime | None = None,
) -> BookValuation:
    """Value these accounts (ids, or a queryset of them) now (see the module), in a
    fixed number of queries whatever their number."""
    now = now or timezone.now()
    currency = currency or firm_currency()
    if isinstance(portfolio_ids, QuerySet):
        portfolio_ids = portfolio_ids.values("pk")  # a subquery: no query of its own
    else:
        portfolio_ids = list(portfolio_ids)
    # Rows as the driver gives them (selectors._raw_rows): Django's per-value converters
    # cost more than the queries on a book of tens of thousands of positions.
    accounts = pd.DataFrame(
        _raw_rows(
            Portfolio.objects.filter(pk__in=portfolio_ids).values_list(
                "pk",
                "code",
                "name",
                "base_currency",
                "manager_id",
                "manager__username",
                "model_id",
                "model__name",
            )
        ),
        columns=[
            "account",
            "code",
            "name",
            "base_currency",
            "manager",
            "manager_name",
            "model",
            "model_name",
        ],
    )
    accounts["model_name"] = accounts["model_name"].fillna(NO_MODEL)
    positions = pd.DataFrame(
        _raw_rows(
            Position.objects.filter(portfolio_id__in=portfolio_ids)
            .exclude(quantity=0)
            .annotate(
                quantity_float=Cast("quantity", FloatField()),
                multiplier_float=Cast("security__multiplier", FloatField()),
            )
            .values_list(
                "portfolio_id",
                "security_id",
                "quantity_float",
                "multiplier_float",
                "security__ticker",
                "security__asset_class",
                "security__currency",
                "security__sector",
                "security__country",
            )
        ),
        columns=POSITION_COLUMNS,
    )
    forwards = _open_forwards(portfolio_ids, now)
    if forwards.empty:
        positions = positions.assign(base=None, contract_cost=np.nan)
    else:
        positions = pd.concat([positions, forwards], ignore_index=True)
    costs = pd.DataFrame(
        _raw_rows(
            TaxLot.objects.filter(portfolio_id__in=portfolio_ids, quantity__gt=0)
            .values("portfolio_id", "security_id")
            .annotate(cost=Cast(Sum(F("quantity") * F("unit_cost")), FloatField()))
            .values_list("portfolio_id", "security_id", "cost")
        ),
        columns=["account", "security", "cost"],
    )
    cash = pd.DataFrame(
        _raw_rows(
            CashBalance.objects.filter(portfolio_id__in=portfolio_ids)
            .annotate(amount_float=Cast("amount", FloatField()))
            .values_list("portfolio_id", "currency", "amount_float")
        ),
        columns=["account", "currency", "amount"],
    )
    securities = (
        positions[["security", "ticker", "asset_class"]].drop_duplicates("security")
        if not positions.empty
        else positions
    )
    # prices_for reads ticker and asset class only: no need to load the rows again.
    readings = prices_for(
        [Security(pk=s, ticker=t, asset_class=a) for s, t, a in securities.itertuples(False)],
        now=now,
    )
    closes = previous_closes(readings, now=now) if readings else {}
    board = FxBoard.load(now=now)

    base_of = accounts.set_index("account")["base_currency"]
    positions["sector"] = positions["sector"].replace("", UNCLASSIFIED)
    positions["country"] = positions["country"].replace("", UNCLASSIFIED)
    positions = positions.merge(costs, on=["account", "security"], how="left")
    # an open forward's cost is what it pays or receives at its contract rate, q x K
    positions["cost"] = positions["cost"].fillna(positions["contract_cost"]).fillna(0.0)
    price = {pk: (float(r.price) if r.price is not None else np.nan) for pk, r in readings.items()}
    positions["price"] = positions["security"].map(price).astype(float)
    positions["price_stale"] = (
        positions["security"].map({pk: r.stale for pk, r in readings.items()}).astype(bool)
    )
    positions["previous_close"] = (
        positions["security"].map({pk: float(p) for pk, p in closes.items()}).astype(float)
    )
    positions["base_currency"] = positions["account"].map(base_of)
    fx_base, fx_base_stale = _by_pair(
        positions["currency"] + "|" + positions["base_currency"], board
    )
    fx_firm, fx_firm_stale = _by_pair(positions["currency"] + "|" + currency, board)
    units = positions["quantity"] * positions["multiplier"]
    clean = units * positions["price"]
    unrealised = clean - positions["cost"] * positions["multiplier"]
    day = (units * (positions["price"] - positions["previous_close"])).fillna(0.0)
    value = clean + positions["quantity"] * _accrued(positions, now)
    # An open forward's legs are cash, valued at spot with the rest of the cash; what it
    # adds is its forward points to the value date, q x (F - S), so that legs + points
    # make the engine's value q x (F - K) (docs/instruments.md, decision 41).
    forward = positions["base"].notna()
    if forward.any():
        spot, spot_stale = _by_pair(
            positions["base"].where(forward, "") + "|" + positions["currency"], board
        )
        value = value - (positions["quantity"] * spot).where(forward, 0.0)
        fx_base_stale = fx_base_stale | (spot_stale & forward)
    positions["value"] = value
    for suffix, rate in (("base", fx_base), ("firm", fx_firm)):
        positions[f"value_{suffix}"] = value * rate
        positions[f"unrealised_{suffix}"] = unrealised * rate
        positions[f"day_{suffix}"] = day * rate
    positions["missing"] = positions["value_base"].isna() | positions["value_firm"].isna()
    positions["stale"] = ~positions["missing"] & (
        positions["price_stale"] | fx_base_stale | fx_firm_stale
    )

    cash["base_currency"] = cash["account"].map(base_of)
    cash_base, _ = _by_pair(cash["currency"] + "|" + cash["base_currency"], board)
    cash_firm, _ = _by_pair(cash["currency"] + "|" + currency, board)
    cash["amount_base"] = cash["amount"] * cash_base
    cash["amount_firm"] = cash["amount"] * cash_firm

    def per_account(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
        summed = frame.groupby("account")[list(columns)].sum(min_count=0)
        return summed.rename(columns=columns).reindex(accounts["account"]).fillna(0)

    held = per_account(
        positions.assign(positions=1),
        {
            "value_base": "market_value_base",
            "value_firm": "market_value_firm",
            "unrealised_base": "unrealised_pnl_base",
            "unrealised_firm": "unrealised_pnl_firm",
            "day_base": "day_pnl_base",
            "day_firm": "day_pnl_firm",
            "positions": "positions",
            "stale": "stale",
            "missing": "missing",
        },
    )
    money = per_account(
        cash.assign(cash_missing=cash["amount_base"].isna() | cash["amount_firm"].isna()),
        {"amount_base": "cash_base", "amount_firm": "cash_firm", "cash_missing": "cash_missing"},
    )
    accounts = accounts.join(held, on="account").join(money, on="account")
    realised = realised_pnl(accounts["account"].tolist())
    total = {a: r.total for a, r in realised.items()}
    accounts["realised_pnl_base"] = (
        accounts["account"].map(lambda a: np.nan if total.get(a, 0) is None else total.get(a, 0))
    ).astype(float)
    to_firm, _ = _by_pair(accounts["base_currency"] + "|" + currency, board)
    accounts["realised_pnl_firm"] = accounts["realised_pnl_base"] * to_firm.to_numpy()
    uncounted = accounts["realised_pnl_firm"].isna()
    accounts["missing"] = accounts["missing"] + uncounted.astype(int)
    accounts[["realised_pnl_base", "realised_pnl_firm"]] = accounts[
        ["realised_pnl_base", "realised_pnl_firm"]
    ].fillna(0.0)
    for suffix in ("base", "firm"):
        accounts[f"nav_{suffix}"] = accounts[f"market_value_{suffix}"] + accounts[f"cash_{suffix}"]
    for column in COUNTS:
        accounts[column] = accounts[column].astype(int)
    return BookValuation(
        currency=currency, at=now, accounts=accounts, positions=positions, cash=cash
    )
