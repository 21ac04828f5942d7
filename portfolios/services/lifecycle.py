"""Instruments' life-cycle events, booked: a bond's coupons and its redemption at
maturity, a future's final settlement, a listed option's exercise, assignment, cash
settlement or worthless expiry (docs/instruments.md, *Life-cycle events*).

For a day (or a span of days: the beat task catches up the days it missed) the service
finds what falls due on the holdings (`lifecycle_due`), works out what each event does
(`lifecycle_plan`: the figures, or why the books cannot do it) and books each event in
its own transaction (`lifecycle_book_event`): the holding is locked, the event row is
written (one per account, security, event and date, held by the database, so a day
booked twice books nothing twice), the holdings service moves positions, lots and cash
(`portfolios.services.holdings`: `LotClosing` and `CashMovement` rows name the event)
and the audit event is appended, all or nothing.

Conventions (each in the docs):

- **Coupon record date**: the face held *settled* at the end of the day before the
  coupon date, i.e. the position less the trades that settle on or after it. That is
  the convention the accrued interest already follows (accrued to the settlement date,
  zero on a coupon date): a buyer whose trade settles on the coupon date paid no
  accrued interest and does not get the coupon; its seller, who was paid none, does.
  Short positions hold no lots, so their face is the position as it stands.
- **Coupon amount**: face x the engine's coupon for the period
  (``Bond.coupon_per_100``: coupon_rate / frequency for a regular period under
  ACT/ACT ICMA and 30/360, the odd period's fraction otherwise), rounded once to the
  currency's minor unit, paid on the coupon date rolled to the next business day of
  the bond's settlement calendar (accrual does not move, the payment does).
- **Redemption** at par (100) of the face held at maturity: the lots are closed at 100,
  the gain against their cost realised (`LotClosing`).
- **Futures** are held fully paid (decision 39): at expiry the position is closed at
  the final settlement price, the future's last price on or before its expiry
  (``Price``), on the contract's settlement cycle, as a sale (or a buy to cover) at
  that price would be.
- **Options**: an option in the money by at least ``OMS_OPTION_EXERCISE_THRESHOLD``
  (0.01 of the underlying's price: OCC Rule 805(d), *exercise by exception*, which
  exercises expiring equity options in the money by $0.01 or more unless the holder
  instructs otherwise) at the underlying's last price on or before expiry is exercised
  (a currency option, cash settled, from any amount in the money):
  a long call buys the underlying at the strike, a long put sells it; a short one is
  assigned the opposite. The deliverable is contracts x multiplier / the underlying's
  multiplier (100 shares; one future). A long holder's premium follows the US tax
  rule (IRS Publication 550, *Options*): added to the cost of what a call buys,
  taken off the proceeds of what a put sells, the option's lots closed with no gain.
  Shorts hold no lots (the books record no cost for a short), so an assignment books
  the underlying at the strike only. An option on a currency (an FX underlying)
  settles its intrinsic value in cash. Out of the money (or below the threshold) it
  expires worthless: its lots are closed at zero and the premium is realised as a loss.
- What the terms do not support is refused with the reason and nothing booked: an
  option whose underlying is a bond or another option, whose underlying trades in
  another currency than its strike, or with no price of the underlying (or of the
  future) within ``OMS_LIFECYCLE_PRICE_MAX_AGE_DAYS`` of the expiry.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record, audited_transaction
from oms.numbers import money
from portfolios import terms
from portfolios.instruments import InstrumentError
from portfolios.instruments.money import round_cash
from portfolios.models import (
    AssetClass,
    CashMovement,
    LifecycleEvent,
    LotClosing,
    Portfolio,
    Position,
    Price,
    Security,
    TaxLot,
)
from portfolios.services.holdings import (
    holdings_close_position,
    holdings_credit,
    holdings_deliver,
    holdings_lock_positions,
)

__all__ = [
    "Due",
    "LifecycleRefused",
    "LifecycleRun",
    "Plan",
    "face_on_record",
    "lifecycle_book",
    "lifecycle_book_event",
    "lifecycle_due",
    "lifecycle_plan",
    "lifecycle_plans",
]

log = logging.getLogger(__name__)

Event, Outcome = LifecycleEvent.Event, LifecycleEvent.Outcome
HUNDRED = Decimal(100)
#: How far back a trade can have been done and still settle on or after a coupon date
#: (calendar days: the longest cycle is T+2, over a long weekend and holidays).
_SETTLEMENT_WINDOW = dt.timedelta(days=10)
#: Underlyings an option on which is exercised by delivering them.
_DELIVERABLE = {
    AssetClass.EQUITY,
    AssetClass.ETF,
    AssetClass.FIXED_INCOME,
    AssetClass.MONEY_MARKET,
    AssetClass.FUTURE,
}


class LifecycleRefused(ValueError):
    """The books cannot book this event as the instrument's terms stand; the message
    says why, in the desk's words."""


@dataclass(frozen=True)
class Due:
    """An event that falls due on a holding: ``quantity`` is the holding it applies to
    (a coupon's face on the record date; the position, for the others)."""

    portfolio_id: int
    security: Security
    event: str
    event_date: dt.date
    quantity: Decimal

    @property
    def key(self) -> tuple:
        return (self.portfolio_id, self.security.pk, self.event, self.event_date)


@dataclass(frozen=True)
class Plan:
    """What booking a due event does: its outcome, the price it uses, the cash of the
    instrument itself (signed, in its currency) and, for a delivery, the underlying's
    side, quantity and cash."""

    due: Due
    outcome: str
    price: Decimal | None
    amount: Decimal
    value_date: dt.date
    details: dict = field(default_factory=dict)


@dataclass
class LifecycleRun:
    """What a run found and did: the events booked (or, dry, planned), those refused
    with why, and how many were booked already."""

    on: dt.date
    since: dt.date
    booked: list = field(default_factory=list)
    planned: list = field(default_factory=list)
    refused: list = field(default_factory=list)


# --- what falls due ---------------------------------------------------------------


def lifecycle_due(
    *,
    on: dt.date,
    since: dt.date | None = None,
    portfolio_ids=None,
    include_booked: bool = False,
) -> list[Due]:
    """The events dated from `since` (default `on`) to `on` on the accounts' holdings
    (all accounts, or ``portfolio_ids``), not booked yet (unless ``include_booked``), in
    date order: coupons and maturities of the bonds held, expiries of the futures and
    options held."""
    since = since or on
    securities = list(
        Security.objects.filter(
            Q(asset_class=AssetClass.BOND, maturity__gte=since, issue_date__lt=on)
            | Q(
                asset_class__in=(AssetClass.FUTURE, AssetClass.OPTION),
                expiry__gte=since,
                expiry__lte=on,
            )
        ).select_related("underlying")
    )
    if not securities:
        return []
    dates: dict[int, list[tuple[str, dt.date]]] = {}
    for security in securities:
        events = _events_of(security, since, on)
        if events:
            dates[security.pk] = events
    if not dates:
        return []
    by_pk = {s.pk: s for s in securities}
    positions = Position.objects.filter(security_id__in=sorted(dates))
    if portfolio_ids is not None:
        positions = positions.filter(portfolio_id__in=list(portfolio_ids))
    held = list(positions.values_list("portfolio_id", "security_id", "quantity"))
    booked = set()
    if not include_booked:
        booked = set(
            LifecycleEvent.objects.filter(
                security_id__in=sorted(dates), event_date__gte=since, event_date__lte=on
            ).values_list("portfolio_id", "security_id", "event", "event_date")
        )
    wanted = [
        (portfolio_id, by_pk[security_id], event, day, quantity)
        for portfolio_id, security_id, quantity in held
        for event, day in dates[security_id]
        if (portfolio_id, security_id, event, day) not in booked
    ]
    faces = _faces_on_record(
        [(p, s, day, quantity) for p, s, event, day, quantity in wanted if event == Event.COUPON]
    )
    due = []
    for portfolio_id, security, event, day, quantity in wanted:
        coupon = event == Event.COUPON
        quantity_due = faces[portfolio_id, security.pk, day] if coupon else quantity
        if quantity_due:
            due.append(Due(portfolio_id, security, event, day, quantity_due))
    # Options first on their day: what an exercise delivers (a future expiring with its
    # option) is then settled by the same day's events, never left after them.
    due.sort(
        key=lambda d: (
            d.event_date,
            d.security.asset_class != AssetClass.OPTION,
            d.security.ticker,
            d.portfolio_id,
            d.event,
        )
    )
    return due


def _events_of(security: Security, since: dt.date, on: dt.date) -> list[tuple[str, dt.date]]:
    """The events of `security` dated in [since, on]: a bond's coupon dates (not a
    zero-coupon bond's) and its maturity, a contract's expiry."""
    if security.asset_class != AssetClass.BOND:
        return [(Event.EXPIRY, security.expiry)]
    try:
        bond = terms.instrument_of(security)
    except InstrumentError:
        return []
    events = []
    if bond.frequency:
        events += [(Event.COUPON, d) for d in bond.coupon_dates if since <= d <= on]
    if since <= bond.maturity <= on:
        events.append((Event.MATURITY, bond.maturity))
    return events


def _faces_on_record(
    holdings: list[tuple[int, Security, dt.date, Decimal]],
) -> dict[tuple[int, int, dt.date], Decimal]:
    """`face_on_record` of many holdings (account, bond, coupon date, position now) in
    one query of their trades' ledger rows, keyed by (account id, security id, coupon
    date). Each trade's ledger row carries its units and its settlement date: the face
    on record is the position less every trade settling on or after the coupon date
    (buys, sales, a sale through zero or a buy covering a short alike; a trade and the
    row reversing it count for nothing); a holding with standing trades booked before
    the ledger kept their units is read by its lots (`_face_by_lots`; trading
    migration 0016 gave most of them their units)."""
    if not holdings:
        return {}
    trades: dict[tuple[int, int], list[tuple[dt.date, Decimal | None]]] = defaultdict(list)
    rows = list(
        CashMovement.objects.filter(
            portfolio_id__in={h[0] for h in holdings},
            security_id__in={h[1].pk for h in holdings},
            reason="trade",
            value_date__gte=min(h[2] for h in holdings),
        ).values_list("pk", "reverses_id", "portfolio_id", "security_id", "value_date", "quantity")
    )
    # a row and the row reversing it (same value date) net to nothing, units kept or not
    reversed_ids = {r[1] for r in rows if r[1] is not None}
    for pk, reverses_id, portfolio_id, security_id, value_date, quantity in rows:
        if pk not in reversed_ids and reverses_id is None:
            trades[portfolio_id, security_id].append((value_date, quantity))
    faces = {}
    for portfolio_id, security, coupon_date, position in holdings:
        unsettled = [q for day, q in trades[portfolio_id, security.pk] if day >= coupon_date]
        key = (portfolio_id, security.pk, coupon_date)
        if None in unsettled:
            faces[key] = _face_by_lots(portfolio_id, security, coupon_date, position)
        else:
            faces[key] = position - sum(unsettled, Decimal(0))
    return faces


def face_on_record(portfolio_id: int, security: Security, coupon_date: dt.date) -> Decimal:
    """The face the account held settled at the end of the day before `coupon_date`:
    its position less what it bought that settles on or after the coupon date, plus
    what it sold that does (`_faces_on_record`). Later trades are taken off too, so a
    day booked late pays what was held then."""
    position = (
        Position.objects.filter(portfolio_id=portfolio_id, security=security)
        .values_list("quantity", flat=True)
        .first()
    ) or Decimal(0)
    faces = _faces_on_record([(portfolio_id, security, coupon_date, position)])
    return faces[portfolio_id, security.pk, coupon_date]


def _face_by_lots(
    portfolio_id: int, security: Security, coupon_date: dt.date, position: Decimal
) -> Decimal:
    """The face on record of a holding whose trades were booked before the ledger kept
    their units: the position less the lots bought, plus the closings of the sales,
    that settle on or after the coupon date by the security's settlement cycle."""
    start = coupon_date - _SETTLEMENT_WINDOW
    late_lots = {
        pk: quantity
        for pk, quantity, acquired in TaxLot.objects.filter(
            portfolio_id=portfolio_id, security=security, acquired_on__gte=start
        ).values_list("pk", "quantity", "acquired_on")
        if _settles(security, acquired) >= coupon_date
    }
    held = position - sum(late_lots.values(), Decimal(0))
    for quantity, closed in (
        LotClosing.objects.filter(
            portfolio_id=portfolio_id, security=security, closed_on__gte=start
        )
        .exclude(lot_id__in=list(late_lots))
        .values_list("quantity", "closed_on")
    ):
        if _settles(security, closed) >= coupon_date:
            held += quantity
    return held


def _settles(security: Security, trade_date: dt.date) -> dt.date:
    try:
        return terms.settlement_date(security, trade_date)
    except InstrumentError:
        return trade_date


def _pay_date(security: Security, day: dt.date) -> dt.date:
    """`day` rolled to the next business day of the security's settlement calendar (a
    day the calendar does not know stays as it is)."""
    instrument = terms.instrument_of(security)
    name = getattr(instrument, "settlement_calendar", None)
    try:
        calendar = terms.calendars_for(instrument)[name]
        return calendar.roll(day)
    except (InstrumentError, KeyError):
        return day


class _Closes:
    """The closing prices a plan reads: from the database one security at a time, or
    from those of many securities loaded at once (`_Closes.of`)."""

    def __init__(self, loaded: dict[int, list[tuple[Decimal, dt.date]]] | None = None):
        self.loaded = loaded  # security id -> (price, as_of), latest first

    @classmethod
    def of(cls, dues: list[Due]) -> _Closes:
        """The prices the plans of `dues` read (their contracts' and the options'
        underlyings', over the days those plans look back), in one query."""
        wanted = [
            (
                d.security.underlying_id
                if d.security.asset_class == AssetClass.OPTION
                else d.security.pk,
                d.event_date,
            )
            for d in dues
            if d.security.asset_class in (AssetClass.FUTURE, AssetClass.OPTION)
        ]
        loaded: dict[int, list[tuple[Decimal, dt.date]]] = defaultdict(list)
        wanted = [(pk, day) for pk, day in wanted if pk is not None]
        if wanted:
            days = [day for _, day in wanted]
            for security_id, price, as_of in (
                Price.objects.filter(
                    security_id__in={pk for pk, _ in wanted},
                    as_of__lte=max(days),
                    as_of__gte=min(days) - _price_max_age(),
                )
                .order_by("security_id", "-as_of")
                .values_list("security_id", "price", "as_of")
            ):
                loaded[security_id].append((price, as_of))
        return cls(loaded)

    def last(self, security: Security, on: dt.date) -> tuple[Decimal, dt.date] | None:
        oldest = on - _price_max_age()
        if self.loaded is not None:
            return next(
                ((p, d) for p, d in self.loaded.get(security.pk, ()) if oldest <= d <= on), None
            )
        return (
            Price.objects.filter(security=security, as_of__lte=on, as_of__gte=oldest)
            .order_by("-as_of")
            .values_list("price", "as_of")
            .first()
        )


def _price_max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.OMS_LIFECYCLE_PRICE_MAX_AGE_DAYS)


def _last_price(
    security: Security, on: dt.date, closes: _Closes | None = None
) -> tuple[Decimal, dt.date]:
    """The last price of `security` on or before `on`, no older than the limit."""
    row = (closes or _Closes()).last(security, on)
    if row is None:
        raise LifecycleRefused(
            f"No price of {security.ticker} on {on.isoformat()} or in the "
            f"{settings.OMS_LIFECYCLE_PRICE_MAX_AGE_DAYS} days before: load its closing price "
            "and book the day again."
        )
    return row


# --- what an event does -------------------------------------------------------------


def lifecycle_plans(dues: list[Due]) -> list[Plan | LifecycleRefused]:
    """`lifecycle_plan` of each of `dues`, in order, with the prices they read loaded in
    one query (a page of what is due costs the same whatever its length)."""
    closes = _Closes.of(dues)
    plans: list[Plan | LifecycleRefused] = []
    for due in dues:
        try:
            plans.append(lifecycle_plan(due, closes=closes))
        except LifecycleRefused as exc:
            plans.append(exc)
    return plans


def lifecycle_plan(due: Due, *, closes: _Closes | None = None) -> Plan:
    """What booking `due` would do (reads only), or :class:`LifecycleRefused`."""
    security = due.security
    if due.event == Event.COUPON:
        bond = terms.instrument_of(security)
        period = next(p for p in bond.periods if p.end == due.event_date)
        per_100 = bond.coupon_per_100(period)
        amount = money(round_cash(due.quantity * per_100 / HUNDRED, security.currency))
        return Plan(
            due,
            Outcome.PAID,
            per_100,
            amount,
            _pay_date(security, due.event_date),
            {"period": [period.start.isoformat(), period.end.isoformat()]},
        )
    if due.event == Event.MATURITY:
        return Plan(
            due,
            Outcome.REDEEMED,
            HUNDRED,
            money(due.quantity * HUNDRED * terms.price_multiplier(security)),
            _pay_date(security, due.event_date),
        )
    if security.asset_class == AssetClass.FUTURE:
        price, as_of = _last_price(security, due.event_date, closes)
        return Plan(
            due,
            Outcome.SETTLED,
            price,
            money(due.quantity * price * terms.price_multiplier(security)),
            _settles(security, due.event_date),
            {"price_date": as_of.isoformat()},
        )
    return _option_plan(due, closes)


def _option_plan(due: Due, closes: _Closes | None) -> Plan:
    option = due.security
    underlying = option.underlying
    if underlying is None:
        raise LifecycleRefused(f"{option.ticker} has no underlying security to exercise into.")
    spot, as_of = _last_price(underlying, due.event_date, closes)
    strike = option.strike
    intrinsic = spot - strike if option.option_right == "call" else strike - spot
    details = {
        "underlying": underlying.ticker,
        "underlying_price": str(spot),
        "price_date": as_of.isoformat(),
        "strike": str(strike),
        "right": option.option_right,
        "threshold": str(settings.OMS_OPTION_EXERCISE_THRESHOLD),
    }
    cash_settled = underlying.asset_class in terms.FX_KINDS
    # OCC Rule 805(d)'s cent is a threshold of equity options' dollar prices: a
    # currency option is cash settled, costs nothing to exercise and is worth its
    # intrinsic value however small (0.01 on EUR/USD is a hundred pips).
    if intrinsic <= 0 or (not cash_settled and intrinsic < settings.OMS_OPTION_EXERCISE_THRESHOLD):
        return Plan(due, Outcome.EXPIRED, spot, Decimal(0), due.event_date, details)
    if cash_settled:
        amount = money(due.quantity * intrinsic * terms.price_multiplier(option))
        details["intrinsic"] = str(intrinsic)
        return Plan(
            due, Outcome.CASH_SETTLED, spot, amount, _settles(option, due.event_date), details
        )
    if underlying.asset_class not in _DELIVERABLE:
        raise LifecycleRefused(
            f"{option.ticker} is in the money but the books cannot exercise an option on "
            f"{underlying.ticker}, a {underlying.get_asset_class_display().lower()}: book its "
            "exercise by hand."
        )
    if underlying.currency != option.currency:
        raise LifecycleRefused(
            f"{option.ticker} is in the money but its strike is in {option.currency} and "
            f"{underlying.ticker} trades in {underlying.currency}: book its exercise by hand."
        )
    delivered = (
        abs(due.quantity) * terms.price_multiplier(option) / terms.price_multiplier(underlying)
    )
    long = due.quantity > 0
    buying = (option.option_right == "call") == long
    details |= {
        "deliver": str(delivered),
        "side": "buy" if buying else "sell",
        "intrinsic": str(intrinsic),
    }
    amount = money(delivered * strike * terms.price_multiplier(underlying))
    return Plan(
        due,
        Outcome.EXERCISED if long else Outcome.ASSIGNED,
        spot,
        -amount if buying else amount,
        _settles(underlying, due.event_date),
        details,
    )


# --- booking ------------------------------------------------------------------------


def lifecycle_book(
    *, on: dt.date, since: dt.date | None = None, actor=None, dry_run: bool = False
) -> LifecycleRun:
    """Book every event due from `since` (default `on`) to `on` that is not booked yet,
    each in its own transaction (`lifecycle_book_event`); one that cannot be booked is
    refused with why and the others go on. ``dry_run``: plan only, write nothing (a day
    to come may be planned; only a day that has come may be booked: a coupon booked
    ahead of its date would pay it early)."""
    if not dry_run and on > timezone.now().date():
        raise ValidationError(
            f"{on.isoformat()} has not come yet: a day is booked on or after it "
            "(a dry run shows what it would book)."
        )
    run = LifecycleRun(on=on, since=since or on)
    seen: set[tuple] = set()
    dues = lifecycle_due(on=on, since=since)
    while dues:
        delivered = _book_dues(run, dues, seen, actor=actor, dry_run=dry_run)
        # An exercise that delivered a contract falling due in the span (a future
        # expiring with its option) into an account that did not hold it: its event
        # is due now too.
        dues = (
            [d for d in lifecycle_due(on=on, since=since) if d.key not in seen] if delivered else []
        )
    return run


def _book_dues(run: LifecycleRun, dues: list[Due], seen: set, *, actor, dry_run: bool) -> bool:
    """Book (or plan) `dues` into `run`; whether an exercise or assignment delivered."""
    delivered = False
    for due in dues:
        seen.add(due.key)
        try:
            plan = lifecycle_plan(due)
        except LifecycleRefused as exc:
            run.refused.append((due, str(exc)))
            log.warning("life-cycle event not booked: %s", exc)
            continue
        if dry_run:
            run.planned.append(plan)
            continue
        try:
            event = lifecycle_book_event(due=due, actor=actor)
        except LifecycleRefused as exc:
            run.refused.append((due, str(exc)))
            continue
        if event is not None:
            run.booked.append(event)
            delivered |= event.outcome in (Outcome.EXERCISED, Outcome.ASSIGNED)
    return delivered


def lifecycle_book_event(*, due: Due, actor=None) -> LifecycleEvent | None:
    """Book one due event: lock the holding (and an option's underlying position), skip
    it when it is booked already, plan it again on the locked books, write the event,
    move the holdings and record ``lifecycle.<outcome>``, in one transaction. None when
    there was nothing (left) to book."""
    portfolio = Portfolio.objects.get(pk=due.portfolio_id)
    security = due.security
    try:
        with audited_transaction():
            # the positions the event moves, in pk order, before any cash (as every
            # writer of holdings takes them): the option's and the underlying's, created
            # first when an exercise delivers it into an account that does not hold it
            # (a concurrent allocation of the underlying waits, rather than deadlock)
            holdings_lock_positions(
                portfolio_id=portfolio.pk,
                security_ids=[security.pk],
                create=_delivered_into(due),
            )
            if LifecycleEvent.objects.filter(
                portfolio=portfolio,
                security=security,
                event=due.event,
                event_date=due.event_date,
            ).exists():
                return None
            quantity = _quantity_now(due)
            if not quantity:
                return None
            plan = lifecycle_plan(
                Due(due.portfolio_id, security, due.event, due.event_date, quantity)
            )
            event = LifecycleEvent.objects.create(
                portfolio=portfolio,
                security=security,
                event=due.event,
                event_date=due.event_date,
                outcome=plan.outcome,
                quantity=quantity,
                price=plan.price,
                currency=security.currency,
                amount=plan.amount,
                value_date=plan.value_date,
                details=_jsonable(plan.details),
            )
            booked = _apply(plan, event, portfolio)
            audit_record(
                actor=actor,
                kind=f"lifecycle.{plan.outcome}",
                obj=event,
                before=booked["before"],
                after=booked["after"]
                | {
                    "event": due.event,
                    "event_date": due.event_date,
                    "quantity": quantity,
                    "price": plan.price,
                    "amount": plan.amount,
                    "value_date": plan.value_date,
                },
            )
            return event
    except IntegrityError:
        booked = LifecycleEvent.objects.filter(
            portfolio=portfolio, security=security, event=due.event, event_date=due.event_date
        ).exists()
        if booked:  # a concurrent run booked it first
            return None
        raise  # another integrity failure: not a duplicate, so not silently "not booked"


def _delivered_into(due: Due) -> tuple[int, ...]:
    """The underlying an option's event delivers (exercised or assigned), by its plan on
    the figures read before any lock: the event plans again on the locked books, and a
    position created for nothing stays at zero."""
    security = due.security
    if security.asset_class != AssetClass.OPTION or not security.underlying_id:
        return ()
    try:
        outcome = lifecycle_plan(due).outcome
    except LifecycleRefused:
        return ()
    return (security.underlying_id,) if outcome in (Outcome.EXERCISED, Outcome.ASSIGNED) else ()


def _quantity_now(due: Due) -> Decimal:
    if due.event == Event.COUPON:
        return face_on_record(due.portfolio_id, due.security, due.event_date)
    return (
        Position.objects.filter(portfolio_id=due.portfolio_id, security=due.security)
        .values_list("quantity", flat=True)
        .first()
    ) or Decimal(0)


def _apply(plan: Plan, event: LifecycleEvent, portfolio: Portfolio) -> dict:
    due, security = plan.due, plan.due.security
    common = {"portfolio": portfolio, "on_date": due.event_date, "event": event}
    if plan.outcome == Outcome.PAID:
        return holdings_credit(
            security=security,
            amount=plan.amount,
            value_date=plan.value_date,
            reason="coupon",
            **common,
        )
    if plan.outcome in (Outcome.REDEEMED, Outcome.SETTLED, Outcome.CASH_SETTLED, Outcome.EXPIRED):
        price = {
            Outcome.REDEEMED: HUNDRED,
            Outcome.SETTLED: plan.price,
            Outcome.CASH_SETTLED: Decimal(plan.details.get("intrinsic", 0)),
            Outcome.EXPIRED: Decimal(0),
        }[plan.outcome]
        reason = {
            Outcome.REDEEMED: "redemption",
            Outcome.SETTLED: "final_settlement",
            Outcome.CASH_SETTLED: "cash_settlement",
            Outcome.EXPIRED: "expiry",
        }[plan.outcome]
        return holdings_close_position(
            security=security, price=price, value_date=plan.value_date, reason=reason, **common
        )
    # exercised or assigned: the option's lots at their cost, the underlying delivered
    closed = holdings_close_position(
        security=security,
        price=Decimal(0),
        value_date=plan.value_date,
        reason="exercise",
        at_cost=True,
        **common,
    )
    strike = security.strike
    delivered = Decimal(plan.details["deliver"])
    buying = plan.details["side"] == "buy"
    ratio = delivered / abs(due.quantity)
    lots = closed["closed"]
    lot_costs = proceeds = None
    if lots and buying:  # a long call: the premium paid is part of what the shares cost
        lot_costs = [(q * ratio, strike + cost) for q, cost in lots]
    elif lots:  # a long put: the premium paid comes off what the shares sold for
        held = sum((q for q, _ in lots), Decimal(0))
        proceeds = strike - sum((q * cost for q, cost in lots), Decimal(0)) / held
    delivery = holdings_deliver(
        security=security.underlying,
        buying=buying,
        quantity=delivered,
        price=strike,
        value_date=plan.value_date,
        reason="exercise" if plan.outcome == Outcome.EXERCISED else "assignment",
        lot_costs=lot_costs,
        proceeds=proceeds,
        **common,
    )
    return {
        "before": closed["before"] | {"underlying": delivery["before"]},
        "after": closed["after"] | {"underlying": delivery["after"]},
    }


def _jsonable(details: dict) -> dict:
    return {k: (str(v) if isinstance(v, Decimal | dt.date) else v) for k, v in details.items()}
