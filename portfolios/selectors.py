"""Reads shared by pages, the API and tasks: holdings as frames for the engines."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Exists, F, FloatField, Min, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from oms.bulk import ids_in
from oms.roles import Action, can, sees_all_accounts

from .models import (
    CashBalance,
    CashMovement,
    FxRate,
    LotClosing,
    ModelPortfolio,
    ModelSleeve,
    ModelTarget,
    Portfolio,
    Position,
    RebalanceRun,
    Security,
    TaxLot,
)
from .rebalance import Book
from .rebalance.sleeves import flatten, reachable
from .terms import TERMS_FIELDS, accrued_per_unit, price_multiplier, unit_value


@dataclass(frozen=True)
class RealisedPnl:
    """What an account's sales realised, in its base currency: short and long term
    (a lot held more than a calendar year), each None when a gain is in a currency
    with no FX rate into the base."""

    currency: str
    short_term: Decimal | None
    long_term: Decimal | None

    @property
    def total(self) -> Decimal | None:
        if self.short_term is None or self.long_term is None:
            return None
        return self.short_term + self.long_term


def realised_pnl(
    portfolio_ids: Iterable[int], since: dt.date | None = None
) -> dict[int, RealisedPnl]:
    """account id → its realised P&L (`RealisedPnl`, base currency) from the lots its
    sales closed, as booked (`LotClosing`, busted sales offset), on or after the trade
    date ``since`` (None: all). An account that realised nothing in that time is
    absent: read it as zero. Gains are booked in the security's currency and converted
    at the latest FX rate. One query (two when a gain is in a currency other than its
    account's base), whatever the number of accounts."""
    portfolio_ids = sorted(set(portfolio_ids))
    if not portfolio_ids:
        return {}
    rows = LotClosing.objects.filter(portfolio_id__in=portfolio_ids)
    if since is not None:
        rows = rows.filter(closed_on__gte=since)
    rows = list(
        rows.order_by()
        .values_list("portfolio_id", "portfolio__base_currency", "security__currency", "term")
        .annotate(gain=Sum("realised_gain"))
    )
    fx = FxTable.latest() if any(base != ccy for _, base, ccy, _, _ in rows) else None
    sums: dict[int, dict] = {}
    for account, base, currency, term, gain in rows:
        figures = sums.setdefault(
            account, {"currency": base, "short": Decimal(0), "long": Decimal(0)}
        )
        key = "long" if term == LotClosing.Term.LONG else "short"
        rate = 1.0 if fx is None else fx.rate(currency, base)
        if rate is None or figures[key] is None:
            figures[key] = None
        else:
            figures[key] += gain if rate == 1.0 else gain * Decimal(repr(rate))
    cent = Decimal("0.01")
    return {
        account: RealisedPnl(
            currency=f["currency"],
            short_term=None if f["short"] is None else f["short"].quantize(cent),
            long_term=None if f["long"] is None else f["long"].quantize(cent),
        )
        for account, f in sums.items()
    }


def account_realised(portfolio: Portfolio) -> dict:
    """One account's realised P&L for its page and the API: ``currency`` (its base),
    ``today`` (trades dated today, UTC, as sales are booked) and ``total`` (since the
    books began), each a `RealisedPnl` (zero when nothing was realised). Two queries."""
    zero = RealisedPnl(portfolio.base_currency, Decimal("0.00"), Decimal("0.00"))
    today = timezone.now().date()
    return {
        "currency": portfolio.base_currency,
        "today": realised_pnl([portfolio.pk], since=today).get(portfolio.pk, zero),
        "total": realised_pnl([portfolio.pk]).get(portfolio.pk, zero),
    }


def portfolios_visible_to(user) -> QuerySet[Portfolio]:
    qs = Portfolio.objects.select_related("manager", "model")
    if sees_all_accounts(user, Action.PORTFOLIO_VIEW):
        return qs
    return qs.filter(manager=user)


def portfolios_for_action(user, action) -> QuerySet[Portfolio]:
    """The active accounts on which the user may take `action` (the queryset form
    of `oms.roles.may_act_for`): the ones they manage, or all of them for a role
    whose grant reaches every account."""
    qs = Portfolio.objects.filter(is_active=True).select_related("model")
    if not can(user, action):
        return qs.none()
    if sees_all_accounts(user, action):
        return qs
    return qs.filter(manager=user)


class FxTable:
    """Latest FX rates, with inverse and cross (through USD or EUR) conversions."""

    def __init__(self, rates: dict[tuple[str, str], float]) -> None:
        self.rates = dict(rates)
        for (a, b), rate in list(rates.items()):
            self.rates.setdefault((b, a), 1.0 / rate)

    @classmethod
    def latest(cls) -> FxTable:
        """The latest rate of each pair: one plain statement (`latest_statement`)."""
        sql, params = cls.latest_statement()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cls.from_rows(cursor.fetchall())

    @staticmethod
    def latest_statement() -> tuple[str, list]:
        """The latest rate of each pair as one plain SELECT of (currency, quote, rate),
        which on PostgreSQL reads one row per pair rather than the whole history (the
        pre-trade check asks on every order, and reads it with its other rows):
        `from_rows` makes the table of its rows."""
        table = FxRate._meta.db_table
        if connection.vendor == "postgresql":
            sql = (
                f"SELECT DISTINCT ON (currency, quote) currency, quote, rate FROM {table}"
                " ORDER BY currency, quote, as_of DESC"
            )
        else:
            sql = f"SELECT currency, quote, rate FROM {table} ORDER BY currency, quote, as_of DESC"
        return sql, []

    @classmethod
    def from_rows(cls, rows) -> FxTable:
        """The table of `latest_statement`'s rows (the first of each pair wins)."""
        rates: dict[tuple[str, str], float] = {}
        for currency, quote, rate in rows:
            rates.setdefault((currency, quote), float(rate))
        return cls(rates)

    def rate(self, currency: str, base: str) -> float | None:
        if currency == base:
            return 1.0
        direct = self.rates.get((currency, base))
        if direct is not None:
            return direct
        for via in ("USD", "EUR"):
            first, second = self.rates.get((currency, via)), self.rates.get((via, base))
            if first is not None and second is not None:
                return first * second
        return None

    def frame(self, currencies: Iterable[str], bases: Iterable[str]) -> pd.DataFrame:
        return pd.DataFrame(self._rows(currencies, bases), columns=["currency", "base", "rate"])

    def columns(self, currencies: Iterable[str], bases: Iterable[str]) -> dict[str, list]:
        """The rows of `frame` as columns, without a DataFrame (a single order's check
        hands the engine column mappings)."""
        rows = self._rows(currencies, bases)
        return {
            "currency": [c for c, _, _ in rows],
            "base": [b for _, b, _ in rows],
            "rate": [r for _, _, r in rows],
        }

    def _rows(self, currencies: Iterable[str], bases: Iterable[str]) -> list[tuple]:
        return [
            (c, b, r)
            for c in set(currencies)
            for b in set(bases)
            if c != b and (r := self.rate(c, b)) is not None
        ]


@dataclass(frozen=True)
class LoadedBook:
    """The engine's input, and the accounts that could not be put in it, with why."""

    book: Book
    skipped: dict[int, str]


def load_book(
    portfolio_ids: Iterable[int], *, pending: Iterable[tuple[int, int, float]] = ()
) -> LoadedBook:
    """The engine's input for these accounts, in a fixed number of queries.

    An account holding cash in a currency with no FX rate into its base currency
    cannot be valued: it is left out of the book and named in `skipped`.

    `pending` projects the book: ``(account, security, signed quantity)`` of orders
    already on their way (a rebalance sizes its trades on holdings plus what the desk
    is already buying and selling). Each is added to the holdings, its estimated value
    at the latest price taken from (a buy) or added to (a sell) the account's cash, and
    a pending sell takes its share of the position's tax lots pro rata."""
    portfolio_ids = list(portfolio_ids)
    pending = [(a, s, float(q)) for a, s, q in pending if q]
    portfolios = list(
        Portfolio.objects.filter(ids_in(Portfolio, "id", portfolio_ids)).values(
            "pk", "model_id", "base_currency", "cash_floor", "long_only"
        )
    )
    fx = FxTable.latest()
    base_of = {p["pk"]: p["base_currency"] for p in portfolios}
    cash: dict[int, float] = dict.fromkeys(base_of, 0.0)
    skipped: dict[int, str] = {}
    for portfolio_id, currency, amount in CashBalance.objects.filter(
        ids_in(CashBalance, "portfolio_id", portfolio_ids)
    ).values_list("portfolio_id", "currency", "amount"):
        rate = fx.rate(currency, base_of[portfolio_id])
        if rate is None:
            skipped[portfolio_id] = f"no FX rate from {currency} to {base_of[portfolio_id]}"
        else:
            cash[portfolio_id] += float(amount) * rate
    portfolios = [p for p in portfolios if p["pk"] not in skipped]
    portfolio_ids = [p["pk"] for p in portfolios]
    base_of = {p["pk"]: p["base_currency"] for p in portfolios}
    model_ids = {p["model_id"] for p in portfolios if p["model_id"]}
    targets, models = _flattened_models(model_ids)
    # Cast in the database: building half a million Decimals only to make floats of
    # them is most of the cost of loading a large book.
    holdings = _rows_frame(
        Position.objects.filter(portfolio_id__in=portfolio_ids)
        .exclude(quantity=0)
        .annotate(quantity_float=Cast("quantity", FloatField()))
        .values_list("portfolio_id", "security_id", "quantity_float"),
        ["account", "security", "quantity"],
        pg_sql=(
            f"SELECT portfolio_id, security_id, quantity::float8 FROM {Position._meta.db_table}"
            " WHERE portfolio_id = ANY(%s::bigint[]) AND quantity <> 0"
        ),
        pg_params=[portfolio_ids],
        floats=["quantity"],
    )
    valued = set(portfolio_ids)
    pending = [row for row in pending if row[0] in valued]
    held: dict[tuple[int, int], float] = {}
    if pending:
        sold = {(a, s) for a, s, q in pending if q < 0}
        if sold:
            pairs = pd.MultiIndex.from_arrays([holdings["account"], holdings["security"]])
            mine = holdings[pairs.isin(list(sold))]
            held = mine.groupby(["account", "security"])["quantity"].sum().to_dict()
        # the engine sums duplicated holdings
        holdings = pd.concat(
            [holdings, pd.DataFrame(pending, columns=["account", "security", "quantity"])],
            ignore_index=True,
        )
    security_ids = {s for _, s, _ in targets} | set(holdings["security"].unique().tolist())
    securities = list(
        Security.objects.filter(ids_in(Security, "id", security_ids))
        .with_latest_price()
        .values("pk", *TERMS_FIELDS, "latest_price", "latest_price_date")
    )
    currency_of = {s["pk"]: s["currency"] for s in securities}
    # What share of a position's lots is still there once its pending sells are done.
    kept: dict[tuple[int, int], float] = {}
    for a, s, q in pending:
        if q < 0 and held.get((a, s), 0.0) > 0:
            kept[(a, s)] = kept.get((a, s), 1.0) + q / held[(a, s)]
    kept = {key: min(max(share, 0.0), 1.0) for key, share in kept.items()}
    today = timezone.now().date()
    # The engine sees what one unit is worth (portfolios.terms.unit_value): a bond's
    # unit is one of face, worth its price in % of par plus the interest accrued today.
    price_of = {
        s["pk"]: float(unit_value(s, s["latest_price"], today))
        if s["latest_price"]
        else float("nan")
        for s in securities
    }
    for a, s, q in pending:
        rate = fx.rate(currency_of[s], base_of[a])
        cash[a] -= q * price_of[s] * (rate if rate is not None else float("nan"))
    lots = _lots_frame(
        portfolio_ids,
        kept,
        currency_of,
        base_of,
        fx,
        {s["pk"]: float(price_multiplier(s)) for s in securities},
        {s["pk"]: float(accrued_per_unit(s, today)) for s in securities},
    )
    stale_before = today - pd.Timedelta(days=settings.OMS_PRICE_STALE_DAYS)
    book = Book(
        securities=pd.DataFrame(
            {
                "security": [s["pk"] for s in securities],
                "price": [price_of[s["pk"]] for s in securities],
                # the quoted price, which proposed orders carry (the engine ignores it)
                "quote": [
                    float(s["latest_price"]) if s["latest_price"] else float("nan")
                    for s in securities
                ],
                "currency": [s["currency"] for s in securities],
                "lot": [float(s["round_lot"]) for s in securities],
                "min_qty": [float(s["min_quantity"]) for s in securities],
                "fractional": [bool(s["fractional"]) for s in securities],
                "stale": [
                    s["latest_price_date"] is None or s["latest_price_date"] < stale_before
                    for s in securities
                ],
            }
        ),
        accounts=pd.DataFrame(
            {
                "account": [p["pk"] for p in portfolios],
                "model": [p["model_id"] for p in portfolios],
                "cash": [cash[p["pk"]] for p in portfolios],
                "base_currency": [p["base_currency"] for p in portfolios],
                "cash_floor": [float(p["cash_floor"]) for p in portfolios],
                "long_only": [bool(p["long_only"]) for p in portfolios],
            }
        ),
        holdings=holdings,
        models=pd.DataFrame(
            [(m, s, float(w)) for m, s, w in targets], columns=["model", "security", "weight"]
        ),
        model_cash=pd.DataFrame(
            [(m, float(c), float(ba), float(br)) for m, (c, ba, br) in models.items()],
            columns=["model", "cash", "band_abs", "band_rel"],
        ),
        fx=fx.frame(currency_of.values(), base_of.values()),
        lots=lots,
        as_of=today,
    )
    return LoadedBook(book=book, skipped=skipped)


def _flattened_models(model_ids: set[int]) -> tuple[list[tuple], dict[int, tuple]]:
    """The targets ``(model, security, weight)`` and ``model → (cash, band_abs,
    band_rel)`` of these models with their sleeves flattened into security weights
    and cash (portfolios.rebalance.sleeves), each model keeping its own bands.

    Two queries when no model holds a sleeve, four whatever the depth or the number
    of models when one does: the sleeve graph is then read whole (a row per sleeve,
    a few hundred in a firm's book) and the models it reaches with it."""
    fields = ("pk", "cash_weight", "band_absolute", "band_relative")
    rows = list(
        ModelPortfolio.objects.filter(pk__in=model_ids)
        .annotate(has_sleeves=Exists(ModelSleeve.objects.filter(model=OuterRef("pk"))))
        .values_list(*fields, "has_sleeves")
    )
    settings_of = {pk: (cash, band_abs, band_rel) for pk, cash, band_abs, band_rel, _ in rows}
    graph: dict[int, dict[int, object]] = {}
    if any(row[-1] for row in rows):
        for model, sleeve, weight in ModelSleeve.objects.values_list(
            "model_id", "sleeve_id", "weight"
        ):
            graph.setdefault(model, {})[sleeve] = weight
        held = reachable(settings_of, graph)
        for pk, cash, band_abs, band_rel in ModelPortfolio.objects.filter(
            pk__in=held - set(settings_of)
        ).values_list(*fields):
            settings_of[pk] = (cash, band_abs, band_rel)
    own: dict[int, dict[int, object]] = {}
    for model, security, weight in ModelTarget.objects.filter(
        model_id__in=list(settings_of)
    ).values_list("model_id", "security_id", "weight"):
        own.setdefault(model, {})[security] = weight
    roots = [row[0] for row in rows]
    cash = {pk: values[0] for pk, values in settings_of.items()}
    flat = flatten(targets=own, cash=cash, sleeves=graph, roots=roots)
    targets = [(m, s, w) for m in roots for s, w in flat.targets[m].items()]
    models = {m: (flat.cash[m], *settings_of[m][1:]) for m in roots}
    return targets, models


def model_flattened(model_id: int) -> dict:
    """What a model comes to once its sleeves are spread: ``targets`` as
    ``(security, weight)`` by weight, and ``cash`` (the weights drift is measured against)."""
    targets, models = _flattened_models({model_id})
    securities = Security.objects.in_bulk([s for _, s, _ in targets])
    rows = sorted(
        ((securities[s], w) for _, s, w in targets), key=lambda row: (-row[1], row[0].ticker)
    )
    cash = models[model_id][0] if model_id in models else None
    return {"targets": rows, "cash": cash}


def _rows_frame(
    queryset,
    columns: list[str],
    *,
    pg_sql: str,
    pg_params,
    pg_order: str = "",
    floats=(),
    dates=(),
) -> pd.DataFrame:
    """The rows of a values_list queryset as a frame with these column names.

    On PostgreSQL the same rows are read by `pg_sql` (the query written with one
    array parameter, ``= ANY(%s)``, rather than an IN list of ten thousand), as ONE
    value: the server joins them into CSV text (``string_agg``, in the order of
    `pg_order`, the columns named ``c0``, ``c1``, ... by position), which pandas
    parses in C. Read row by row (``COPY ... TO STDOUT`` sends one message per row)
    half a million rows cost the client a Python call each, more than the parsing.
    The text is what COPY's CSV writes for numbers and dates (NULL an empty field);
    `pg_sql` selects no text columns (they would need CSV quoting). One value is at most
    1 GB of text (PostgreSQL's limit): some fifteen million lots, hundreds of times a
    run's chunk (`OMS_REBALANCE_CHUNK_SIZE`, 1,000 accounts). Elsewhere (SQLite)
    the driver's rows (`_raw_rows`). `floats` are read as floats (a whole quantity
    prints without a decimal point), `dates` parsed as dates."""
    if connection.vendor != "postgresql":
        frame = pd.DataFrame(_raw_rows(queryset), columns=columns)
        for name in dates:
            frame[name] = pd.to_datetime(frame[name])
        return frame
    names = [f"c{n}" for n in range(len(columns))]
    line = ", ',', ".join(names)
    order = f" ORDER BY {pg_order}" if pg_order else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT string_agg(concat({line}), E'\\n'{order})"
            f" FROM ({pg_sql}) AS t({', '.join(names)})",
            pg_params,
        )
        text = cursor.fetchone()[0]
    if not text:
        frame = pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})
        for name in dates:
            frame[name] = pd.to_datetime(frame[name])
        return frame
    return pd.read_csv(
        io.StringIO(text),
        header=None,
        names=columns,
        dtype=dict.fromkeys(floats, "float64"),
        parse_dates=list(dates),
    )


def _raw_rows(queryset) -> list[tuple]:
    """The rows of a values_list queryset as the driver gives them: Django's per-value
    converters cost more than the query on half a million rows of plain numbers."""
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # an empty IN list: no row can match
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _lots_frame(
    portfolio_ids,
    kept,
    currency_of,
    base_of,
    fx: FxTable,
    multiplier_of: dict[int, float],
    accrued_of: dict[int, float],
) -> pd.DataFrame:
    """The tax lots as the engine's frame, costs in each account's base currency. Cast
    and multiplied in the database, converted per column: half a million lots would
    otherwise cost seconds of Decimal arithmetic.

    A bond lot's cost carries the interest accrued today on its face (``accrued_of``, per
    unit): the engine prices a unit with it (``unit_value``), and a gain it estimates
    (price less cost) must be the clean gain the books realise, accrued interest being
    income, not basis (`LotClosing`)."""
    # "lot" is the tax lot's id: a run's sells name the lots they take (Order.lots)
    frame = _rows_frame(
        TaxLot.objects.filter(portfolio_id__in=portfolio_ids, quantity__gt=0)
        .annotate(
            quantity_float=Cast("quantity", FloatField()),
            cost_float=Cast(F("quantity") * F("unit_cost"), FloatField()),
        )
        .values_list(
            "portfolio_id", "security_id", "quantity_float", "cost_float", "acquired_on", "pk"
        )
        .order_by("portfolio_id", "security_id", "acquired_on", "pk"),
        ["account", "security", "quantity", "cost", "acquired", "lot"],
        pg_sql=(
            "SELECT portfolio_id, security_id, quantity::float8, (quantity * unit_cost)::float8,"
            f" acquired_on, id FROM {TaxLot._meta.db_table}"
            " WHERE portfolio_id = ANY(%s::bigint[]) AND quantity > 0"
        ),
        pg_params=[list(portfolio_ids)],
        pg_order="c0, c1, c4, c5",  # portfolio_id, security_id, acquired_on, id
        floats=["quantity", "cost"],
        dates=["acquired"],
    )
    if frame.empty:
        return frame
    pairs = frame["security"].map(currency_of) + "|" + frame["account"].map(base_of)
    rates = {pair: fx.rate(*pair.split("|")) for pair in pairs.unique()}
    rate_of_row = pairs.map({k: (v or float("nan")) for k, v in rates.items()}).to_numpy()
    frame["cost"] *= rate_of_row
    # A lot keeps its price per unit as quoted (a bond's in % of par): cost in money,
    # and a bond's accrued interest on top (in the security's currency, then converted).
    frame["cost"] *= frame["security"].map(multiplier_of).fillna(1.0).to_numpy()
    accrued = frame["security"].map(accrued_of).fillna(0.0).to_numpy()
    frame["cost"] += frame["quantity"].to_numpy() * accrued * rate_of_row
    if kept:
        keys = pd.MultiIndex.from_frame(frame[["account", "security"]])
        share = pd.Series(kept).reindex(keys).fillna(1.0).to_numpy()
        frame["quantity"] *= share
        frame["cost"] *= share
    return frame


def drift_by_account(portfolio_ids: Iterable[int]) -> dict[int, dict]:
    """account id → its drift figures (value, cash weight, drift, out of band, reason).

    An account that cannot be valued has a row with its reason and no figures."""
    from .rebalance import compute_drift

    portfolio_ids = list(portfolio_ids)
    if not portfolio_ids:
        return {}
    loaded = load_book(portfolio_ids)
    accounts = compute_drift(loaded.book).accounts
    rows = {row["account"]: row for row in accounts.to_dict("records")}
    blank = dict.fromkeys(accounts.columns)
    for account, reason in loaded.skipped.items():
        rows[account] = blank | {"account": account, "reason": reason, "out_of_band": False}
    return rows


def drift_of_positions(portfolio_id: int) -> list[dict]:
    """Weights against the model, one row per security held or in the model
    (none for an account that cannot be valued: drift_by_account says why)."""
    from .rebalance import compute_drift

    book = load_book([portfolio_id]).book
    positions = compute_drift(book).positions
    # The engine's price is a unit's value; the page shows the quoted price.
    quote = dict(zip(book.securities["security"], book.securities["quote"], strict=True))
    positions["price_local"] = positions["security"].map(quote)
    return positions.sort_values("value", ascending=False).to_dict("records")


def rebalance_runs_visible_to(user) -> QuerySet[RebalanceRun]:
    """Runs of the accounts a portfolio manager manages (or started); all for other viewers."""
    runs = RebalanceRun.objects.select_related("created_by")
    if sees_all_accounts(user, Action.PORTFOLIO_VIEW):
        return runs
    managed = RebalanceRun.portfolios.through.objects.filter(
        rebalancerun=OuterRef("pk"), portfolio__manager=user
    )
    return runs.filter(Q(created_by=user) | Q(Exists(managed)))


# --- Stored drift (portfolios.services.drift) -------------------------------------------


def drift_stale_q() -> Q:
    """On an account queryset: its stored figures are missing, older than their inputs,
    or were computed for another model than the account's."""
    return (
        Q(drift_figures__isnull=True)
        | Q(drift_figures__inputs_changed_at__gt=F("drift_figures__computed_at"))
        | Q(drift_figures__model_id__lt=F("model_id"))
        | Q(drift_figures__model_id__gt=F("model_id"))
        | (Q(drift_figures__model_id__isnull=True) & Q(model_id__isnull=False))
        | (Q(drift_figures__model_id__isnull=False) & Q(model_id__isnull=True))
    )


def drift_stale_ids() -> list[int]:
    """The active accounts whose stored drift needs a refresh, in pk order."""
    return list(
        Portfolio.objects.filter(is_active=True)
        .filter(drift_stale_q())
        .order_by("pk")
        .values_list("pk", flat=True)
        .distinct()
    )


def drift_rows_visible_to(user) -> QuerySet[Portfolio]:
    """The active accounts the user may see, each with its stored drift figures
    (`drift_figures`, None when never computed) and `drift_stale`, in one query."""
    from django.db.models import BooleanField, Case, Value, When

    return (
        portfolios_visible_to(user)
        .filter(is_active=True)
        .select_related("drift_figures", "drift_figures__largest_drift_security")
        .annotate(
            drift_stale=Case(
                When(drift_stale_q(), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
    )


#: The histogram's bin width, in weight (0.005 = half a percentage point of drift).
DRIFT_BIN = 0.005


def drift_summary(accounts: QuerySet[Portfolio]) -> dict:
    """Totals of a drift dashboard's accounts (from `drift_rows_visible_to`, filtered):
    accounts, out of band, stale, not valued; value by base currency; and the drift
    histogram (accounts per DRIFT_BIN of drift). Three queries, whatever the count."""
    from django.db.models import Count, Sum
    from django.db.models.functions import Floor

    plain = accounts.order_by()
    totals = plain.aggregate(
        accounts=Count("pk"),
        out_of_band=Count("pk", filter=Q(drift_figures__out_of_band=True)),
        stale=Count("pk", filter=Q(drift_stale=True)),
        not_valued=Count("pk", filter=~Q(drift_figures__reason="")),
    )
    aum = list(
        plain.filter(drift_figures__value__isnull=False)
        .values("base_currency")
        .annotate(value=Sum("drift_figures__value"), accounts=Count("pk"))
        .order_by("base_currency")
    )
    bins = (
        plain.filter(drift_figures__drift__isnull=False)
        .annotate(bin=Floor(Cast("drift_figures__drift", FloatField()) / DRIFT_BIN))
        .values("bin")
        .annotate(accounts=Count("pk"))
        .order_by("bin")
    )
    histogram = [
        {"from": float(row["bin"]) * DRIFT_BIN, "to": (float(row["bin"]) + 1) * DRIFT_BIN}
        | {"accounts": row["accounts"]}
        for row in bins
    ]
    return totals | {"aum": aum, "histogram": histogram}


def drift_by_asset_class(positions: list[dict], cash_weight, cash_target) -> list[dict]:
    """An account's weights and targets summed per asset class (positions as
    `drift_of_positions` gives them, with `security` the Security), cash apart."""
    from .models import AssetClass

    labels = dict(AssetClass.choices)
    totals: dict[str, list[float]] = {}
    for row in positions:
        security = row["security"]
        key = labels.get(security.asset_class, security.asset_class) if security else "Unknown"
        weights = totals.setdefault(key, [0.0, 0.0])
        weights[0] += float(row["weight"]) if row["weight"] == row["weight"] else 0.0
        weights[1] += float(row["target"])
    rows = [{"label": k, "weight": w, "target": t} for k, (w, t) in sorted(totals.items())]
    if cash_weight is not None and cash_weight == cash_weight:
        rows.append(
            {"label": "Cash", "weight": float(cash_weight), "target": float(cash_target or 0)}
        )
    return [row | {"drift": row["weight"] - row["target"]} for row in rows]


#: How long a dashboard's totals and histogram are kept for the same figures (seconds).
DRIFT_SUMMARY_SECONDS = 30


def drift_version() -> tuple:
    """What changes when any stored figure does: the last refresh (which also writes
    an account's first figures), the last mark, and the number of accounts with
    figures (an account deleted takes its row with it). One aggregate over the table's
    indexes (drift_by_computed, drift_by_marked), asked by every answer of the
    dashboard. What changes no stored figure (an account edited in the admin without a
    mark) shows once the kept answer expires (DRIFT_RESULTS_SECONDS)."""
    from django.db.models import Count, Max

    from .models import AccountDrift

    row = AccountDrift.objects.aggregate(
        computed=Max("computed_at"), marked=Max("inputs_changed_at"), rows=Count("pk")
    )
    return (row["computed"], row["marked"], row["rows"])


def drift_cache_key(kind: str, user, items, version: tuple) -> str:
    """A cache key for what a dashboard shows this user for these query items while the
    stored figures are at `version` (`drift_version`)."""
    import hashlib

    return f"drift-{kind}:" + hashlib.sha256(repr((user.pk, items, version)).encode()).hexdigest()


def drift_summary_cached(user, data, accounts: QuerySet[Portfolio], version: tuple) -> dict:
    """`drift_summary`, kept in the cache for the same user, filters and stored figures
    (a refresh or a mark changes `drift_version`), at most DRIFT_SUMMARY_SECONDS: every
    page and poll of a large book would otherwise aggregate it all again."""
    from django.core.cache import cache

    filters = sorted((k, v) for k, v in data.lists() if k not in ("page", "sort")) if data else []
    key = drift_cache_key("summary", user, filters, version)
    summary = cache.get(key)
    if summary is None:
        summary = drift_summary(accounts)
        cache.set(key, summary, DRIFT_SUMMARY_SECONDS)
    return summary


def drift_page(accounts: QuerySet[Portfolio], count: int, number, per_page: int = 50):
    """One page of the dashboard's accounts: the page's ids first (a slim sorted query
    on the account and its figures), then those rows with everything they show; the
    count is the summary's (no COUNT of its own)."""
    from django.core.paginator import Paginator

    paginator = Paginator(accounts, per_page)
    paginator.count = count  # a cached_property: the summary already counted them
    page = paginator.get_page(number)
    ids = list(page.object_list.values_list("pk", flat=True))
    rows = accounts.order_by().in_bulk(ids)
    page.object_list = [rows[pk] for pk in ids if pk in rows]
    return page


# --- Settled and unsettled cash ----------------------------------------------------------


@dataclass(frozen=True)
class CashLine:
    """One currency of an account's cash: ``amount`` on trade date (what the books,
    drift, the rebalancer and compliance use), of which ``unsettled`` still has to change
    hands (movements whose value date is after today: > 0 coming in, < 0 going out) and
    ``settled`` is in the account now; ``next_value_date`` the first of those days."""

    currency: str
    amount: Decimal
    settled: Decimal
    unsettled: Decimal
    next_value_date: dt.date | None


def cash_unsettled(
    account_ids: Iterable[int], on: dt.date | None = None
) -> dict[tuple[int, str], tuple[Decimal, dt.date]]:
    """``(account, currency) -> (unsettled amount, first value date)`` of the movements
    that settle after `on` (today), in one query. A movement is settled on its value date:
    nothing has to move it (decision 41)."""
    on = on or timezone.localdate()
    rows = (
        CashMovement.objects.filter(portfolio_id__in=list(account_ids), value_date__gt=on)
        .values("portfolio_id", "currency")
        .annotate(total=Sum("amount"), first=Min("value_date"))
        .order_by()
    )
    return {(r["portfolio_id"], r["currency"]): (r["total"], r["first"]) for r in rows}


def cash_lines(balances: Iterable[CashBalance], unsettled: dict) -> list[CashLine]:
    """The balances with their settled and unsettled parts (`cash_unsettled`'s rows;
    booking a movement always writes its currency's balance row)."""
    lines = []
    for balance in balances:
        amount, first = unsettled.get((balance.portfolio_id, balance.currency), (Decimal(0), None))
        lines.append(
            CashLine(balance.currency, balance.amount, balance.amount - amount, amount, first)
        )
    return lines


def account_cash(portfolio: Portfolio, on: dt.date | None = None) -> list[CashLine]:
    """An account's cash per currency, settled and unsettled apart (two queries)."""
    return cash_lines(portfolio.cash_balances.all(), cash_unsettled([portfolio.pk], on))


# --- Cash on its way: what an upper layer holds for an account's cash ---------------------

_CASH_ON_ITS_WAY: list = []


def register_cash_on_its_way(provider, *, statement=None) -> None:
    """Let an upper layer say what cash of an account is committed but not yet booked:
    ``provider(account_ids)`` gives ``(account, currency, amount)`` rows (> 0 cash coming
    in, < 0 going out). orchestration registers its cash flows held by open runs, so
    the pre-trade check counts a deposit a run invests and a withdrawal it raises.

    ``statement(account_ids)``: the same rows as one plain SELECT, ``(sql, params)``
    of ``(seq, account, currency, amount)`` with ``seq`` their order (1, 2, ...), so
    that a reader may ask for them in a statement of its own
    (`cash_on_its_way_statements`: the pre-trade check reads them with the cash)."""
    if all(p is not provider for p, _ in _CASH_ON_ITS_WAY):
        _CASH_ON_ITS_WAY.append((provider, statement))


def cash_on_its_way(account_ids) -> list[tuple[int, str, float]]:
    """Every registered provider's rows for these accounts (one query each)."""
    ids = list(account_ids)
    return [row for provider, _ in _CASH_ON_ITS_WAY for row in provider(ids)] if ids else []


def cash_on_its_way_statements(account_ids) -> list[tuple[str, list]] | None:
    """Every registered provider's rows for these accounts as plain SELECTs (see
    `register_cash_on_its_way`), in the providers' order; None when one of them has no
    statement (then read them with `cash_on_its_way`)."""
    ids = list(account_ids)
    if any(statement is None for _, statement in _CASH_ON_ITS_WAY):
        return None
    return [statement(ids) for _, statement in _CASH_ON_ITS_WAY]


def lifecycle_events_visible_to(user) -> QuerySet:
    """The booked life-cycle events of the accounts the user may see, newest first."""
    from .models import LifecycleEvent

    events = LifecycleEvent.objects.select_related("portfolio", "security")
    if sees_all_accounts(user, Action.PORTFOLIO_VIEW):
        return events
    return events.filter(portfolio__manager=user)
