"""Holdings: positions, tax lots and cash, as allocated fills are booked.

A sell closes the account's open lots of the security as its order says
(`lot_method`: fifo, hifo or min_tax, the rule of `portfolios.rebalance.lots.
closing_order`; and first the specific `lots` it names, as a rebalance run chose
them), and each lot it takes is recorded with what it realised (`LotClosing`). A
reversal reopens exactly the lots its allocation closed and offsets their rows.

Cash moves on trade date (`CashBalance.amount`), and each booking also writes what it
moves with its value date to the settlement ledger (`CashMovement`: a trade's net cash
on its market's cycle, an FX trade's two legs on its value date), which a reversal
offsets row by row. An FX fill books no position or lot (decision 41).

These run inside the caller's (audited) transaction: the allocation service
locks, books and records the event in one go."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import F, Q
from django.utils import timezone

from oms.bulk import update_rows
from oms.numbers import ZERO, money
from oms.numbers import qty as round_qty
from portfolios import terms
from portfolios.instruments import InstrumentError
from portfolios.models import (
    CashBalance,
    CashMovement,
    LotClosing,
    Portfolio,
    Position,
    Security,
    TaxLot,
)
from portfolios.rebalance.lots import closing_order, long_term_on
from portfolios.services.drift import drift_mark_stale
from portfolios.terms import fill_cash


def fill_amount(
    security: Security,
    quantity: Decimal,
    price: Decimal,
    on_date: date,
    settles: date | None = None,
) -> Decimal:
    """The cash a fill moves before commission (portfolios.terms.fill_cash): quantity x
    price x multiplier, and a bond's accrued interest to its settlement date (`settles`
    when the broker gave it) on top. The lot's cost stays quantity x price: accrued
    interest is income, not basis."""
    return fill_cash(security, quantity, price, on_date, settles).total


def settles_on(security: Security, on_date: date) -> date:
    """The day a trade in `security` on `on_date` settles by our books: its market's
    cycle (``portfolios.terms.settlement_date``). A trade the cycle cannot date (before
    the cycle's first day, or outside the span the holiday calendar knows) is taken as
    settled on its trade date, as the books held it before the ledger. A broker's own
    settlement date, when it gave one, is booked instead (``settles`` of the bookings)."""
    try:
        return terms.settlement_date(security, on_date)
    except InstrumentError:
        return on_date


def _ledger_row(
    security: Security,
    *,
    portfolio_id: int,
    signed: Decimal,
    on_date: date,
    settles: date,
    reason: str = "trade",
    quantity: Decimal | None = None,
    allocation_id: int | None = None,
    event=None,
    currency: str | None = None,
) -> CashMovement:
    """A settlement-ledger row in the security's currency, on its settlement date: a
    trade's signed net cash (principal, accrued interest and commission) with its signed
    units, or a life-cycle event's cash (``reason``, ``event``), or an FX trade's leg in
    ``currency``."""
    return CashMovement(
        portfolio_id=portfolio_id,
        currency=currency or security.currency,
        amount=signed,
        quantity=quantity,
        value_date=settles,
        trade_date=on_date,
        security=security,
        allocation_id=allocation_id,
        reason=reason,
        event=event,
    )


def _lock_position(portfolio: Portfolio, security: Security) -> Position:
    """The account's position in `security`, locked; created first when missing (a
    concurrent creator is waited for, never a unique violation: `_lock_pairs`)."""
    return _lock_pairs(Position, "security_id", {security.pk: {portfolio.pk}})[
        portfolio.pk, security.pk
    ]


def _lock_cash(portfolio: Portfolio, currency: str) -> CashBalance:
    """The account's cash in `currency`, locked; created first when missing."""
    return _lock_pairs(CashBalance, "currency", {currency: {portfolio.pk}})[portfolio.pk, currency]


def holdings_lock_positions(
    *, portfolio_id: int, security_ids: list[int], create: tuple[int, ...] = ()
) -> dict[int, Position]:
    """Lock the account's positions in `security_ids` (those it holds) and in `create`
    (created first when missing), in pk order in one statement, keyed by security: what
    a writer that moves several holdings of one account (an exercise: the option and
    the underlying it delivers) takes before any cash, as every writer of holdings
    does (`holdings_book_many`). Runs inside the caller's transaction."""
    if create:
        Position.objects.bulk_create(
            [Position(portfolio_id=portfolio_id, security_id=pk) for pk in sorted(create)],
            ignore_conflicts=True,
        )
    rows = (
        Position.objects.select_for_update()
        .filter(portfolio_id=portfolio_id, security_id__in={*security_ids, *create})
        .order_by("pk")
    )
    return {row.security_id: row for row in rows}


def _beyond_short(position: Decimal, quantity: Decimal) -> Decimal:
    """What of a buy of `quantity` opens a long holding, and so a tax lot: all of it on
    a flat or long position, what goes beyond covering a short otherwise (a short holds
    no lots)."""
    return quantity - min(quantity, max(-position, Decimal(0)))


def holdings_book_fill(
    *,
    portfolio: Portfolio,
    security: Security,
    buying: bool,
    quantity: Decimal,
    price: Decimal,
    on_date: date,
    commission: Decimal = Decimal(0),
    lot_method: str = "fifo",
    lots: list | tuple = (),
    allocation_id: int | None = None,
    settles: date | None = None,
) -> dict:
    """Book an allocated fill: position, tax lots and cash in the security's
    currency, net of the commission (a buy pays it on top, a sell receives less). A
    sell closes the specific ``lots`` first, then the rest by ``lot_method``, and
    records each lot it closes (`LotClosing`, naming ``allocation_id``). The cash
    settles on ``settles`` (the broker's date) when given, else on the market's cycle
    (`settles_on`). Runs inside the caller's transaction; returns the before/after
    figures for the caller's audit event."""
    if quantity <= 0:
        raise ValueError("booked quantity must be positive")
    if terms.is_fx(security):
        fill = Fill(portfolio.pk, buying, quantity, price, commission, allocation_id)
        return holdings_book_many(bookings=[Booking(security, [fill], on_date, settles)])[0][0]
    position = _lock_position(portfolio, security)
    cash = _lock_cash(portfolio, security.currency)
    before = _figures(position, cash)
    drift_mark_stale(portfolio_ids=[portfolio.pk])
    amount = fill_amount(security, quantity, price, on_date, settles)
    signed = -(amount + commission) if buying else amount - commission
    _ledger_row(
        security,
        portfolio_id=portfolio.pk,
        signed=signed,
        quantity=quantity if buying else -quantity,
        on_date=on_date,
        settles=settles or settles_on(security, on_date),
        allocation_id=allocation_id,
    ).save()
    if buying:
        opened = _beyond_short(position.quantity, quantity)
        if opened:
            TaxLot.objects.create(
                portfolio=portfolio,
                security=security,
                quantity=opened,
                original_quantity=opened,
                unit_cost=price,
                acquired_on=on_date,
            )
        position.quantity += quantity
        cash.amount -= amount + commission
    else:
        fill = Fill(
            portfolio_id=portfolio.pk,
            buying=False,
            quantity=quantity,
            price=price,
            commission=commission,
            allocation_id=allocation_id,
            lot_method=lot_method,
            lots=tuple(lots),
        )
        taken = _take_open_lots(portfolio, security, fill, on_date)
        position.quantity -= quantity
        cash.amount += amount - commission
        booked = _save(position, cash, before)
        booked["after"]["lots_closed"] = _named(taken)
        return booked
    return _save(position, cash, before)


@dataclass(frozen=True)
class Fill:
    """One allocated fill to book (`holdings_book_fills`)."""

    portfolio_id: int
    buying: bool
    quantity: Decimal
    price: Decimal
    commission: Decimal = Decimal(0)
    #: the allocation that books it (named by the lot closings it writes)
    allocation_id: int | None = None
    #: how a sell closes lots: the specific ``lots`` ([lot id, quantity], ...) first,
    #: then the rest by this method (``portfolios.rebalance.LOT_SELECTION``)
    lot_method: str = "fifo"
    lots: tuple = ()


@dataclass(frozen=True)
class Booking:
    """The allocated fills of one security on one trade date (`holdings_book_many`)."""

    security: Security
    fills: list[Fill]
    on_date: date
    #: the broker's settlement date (SettlDate) when it gave one: the cash (an FX
    #: trade's two legs) settles on it instead of on the market's cycle
    settles: date | None = None


def holdings_book_fills(*, security: Security, fills: list[Fill], on_date: date) -> list[dict]:
    """Book many allocated fills of one security at once: each exactly as
    `holdings_book_fill` books it, in the order given (two fills of one account see
    each other), with a number of statements that does not grow with the fills
    (`holdings_book_many`, with one booking). Runs inside the caller's transaction;
    returns each fill's before/after figures, in order, for the caller's audit events."""
    return holdings_book_many(bookings=[Booking(security, list(fills), on_date)])[0]


def holdings_book_many(*, bookings: list[Booking]) -> list[list[dict]]:
    """Book the fills of several securities at once (the blocks of one allocation):
    booking after booking and fill after fill in the order given, each exactly as
    `holdings_book_fill` books it (an account in two bookings sees the first in the
    second: its cash, and its position and lots of a security booked twice), with a
    number of statements that grows with neither the fills nor the bookings.

    **Lock order**, each in one statement, in pk order (the missing rows created
    first): the positions of every (account, security) pair booked, then the cash
    balances of every (account, currency) pair (an FX fill's two currencies; no
    position), then the open tax lots of the pairs that sell. Every writer of holdings
    takes positions before cash (`holdings_book_fill`, the life-cycle bookings, the
    reversal of a bust), and a pair's lots only under its position's lock, so that two
    allocations over the same accounts wait for each other rather than deadlock. The
    changed rows are written with one UPDATE per table, the new lots, the lot closings
    and the settlement-ledger rows with one INSERT each. Runs inside the caller's
    transaction; returns, per booking, each fill's before/after figures in order, for
    the caller's audit events. The accounts' stored drift is marked stale last."""
    booked: list[list[dict]] = [[] for _ in bookings]
    live = [(n, booking) for n, booking in enumerate(bookings) if booking.fills]
    if not live:
        return booked
    if any(fill.quantity <= 0 for _, booking in live for fill in booking.fills):
        raise ValueError("booked quantity must be positive")
    held: dict[int, set[int]] = {}  # security -> accounts (no FX: it holds no position)
    paying: dict[str, set[int]] = {}  # currency -> accounts
    selling: dict[int, set[int]] = {}  # security -> accounts that sell it
    for _, booking in live:
        security = booking.security
        accounts = {fill.portfolio_id for fill in booking.fills}
        fx = terms.is_fx(security)
        for currency in (security.base_currency, security.currency) if fx else (security.currency,):
            paying.setdefault(currency, set()).update(accounts)
        if not fx:
            held.setdefault(security.pk, set()).update(accounts)
            sellers = {fill.portfolio_id for fill in booking.fills if not fill.buying}
            if sellers:
                selling.setdefault(security.pk, set()).update(sellers)
    book = _Book(
        positions=_lock_pairs(Position, "security_id", held),
        cash=_lock_pairs(CashBalance, "currency", paying),
        open_lots=_lock_open_lots(selling),
    )
    # after the holdings, as every writer of holdings marks them: the UPDATE locks the
    # accounts' stored drift, which taken first would deadlock with a single booking
    drift_mark_stale(portfolio_ids=set().union(*paying.values()))
    for n, booking in live:
        if terms.is_fx(booking.security):
            booked[n] = book.fx(booking)
        else:
            booked[n] = book.fills(booking)
    book.write()
    return booked


@dataclass
class _Book:
    """The locked holdings of one `holdings_book_many`, changed in memory fill by fill
    and written once."""

    positions: dict  # (account, security id) -> Position
    cash: dict  # (account, currency) -> CashBalance
    open_lots: dict  # (account, security id) -> open TaxLots, first in, first out
    new_lots: list = field(default_factory=list)
    closed: dict = field(default_factory=dict)  # pk -> a stored lot a sell took from
    closings: list = field(default_factory=list)
    movements: list = field(default_factory=list)
    #: each sell's after-figures and the lots it took, named once new lots have pks
    sold: list = field(default_factory=list)

    def fills(self, booking: Booking) -> list[dict]:
        security, on_date = booking.security, booking.on_date
        settles = booking.settles or settles_on(security, on_date)
        booked = []
        for fill in booking.fills:
            pair = (fill.portfolio_id, security.pk)
            position = self.positions[pair]
            balance = self.cash[fill.portfolio_id, security.currency]
            before = _figures(position, balance)
            amount = fill_amount(security, fill.quantity, fill.price, on_date, booking.settles)
            if fill.buying:
                opened = _beyond_short(position.quantity, fill.quantity)
                if opened:
                    lot = TaxLot(
                        portfolio_id=fill.portfolio_id,
                        security=security,
                        quantity=opened,
                        original_quantity=opened,
                        unit_cost=fill.price,
                        acquired_on=on_date,
                    )
                    self.new_lots.append(lot)
                    if pair in self.open_lots:  # a later sell of this booking may take it
                        self.open_lots[pair].append(lot)
                        self.open_lots[pair].sort(key=_first_in)
                position.quantity += fill.quantity
                signed = -(amount + fill.commission)
            else:
                taken = _close_lots(self.open_lots[pair], fill, on_date)
                self.closed.update((lot.pk, lot) for lot, _ in taken if lot.pk is not None)
                self.closings += _closings(security, fill, taken, on_date)
                position.quantity -= fill.quantity
                signed = amount - fill.commission
            balance.amount += signed
            self.movements.append(
                _ledger_row(
                    security,
                    portfolio_id=fill.portfolio_id,
                    signed=signed,
                    quantity=fill.quantity if fill.buying else -fill.quantity,
                    on_date=on_date,
                    settles=settles,
                    allocation_id=fill.allocation_id,
                )
            )
            after = _figures(position, balance)
            if not fill.buying:
                self.sold.append((after, taken))
            booked.append({"before": before, "after": after})
        return booked

    def fx(self, booking: Booking) -> list[dict]:
        """An FX booking: no position, no lot; each fill's two legs (the engine's
        booking, ``portfolios.terms.fx_booking``) move the account's trade-date cash in
        both currencies now and are written to the settlement ledger on the value date.
        A commission is paid in the quote currency, on the value date too."""
        security, on_date = booking.security, booking.on_date
        currencies = sorted((security.base_currency, security.currency))
        booked = []
        for fill in booking.fills:
            before = _fx_figures(self.cash, currencies, fill.portfolio_id)
            legs = _fx_legs(security, fill, on_date, booking.settles)
            for currency, amount, value_date, reason in legs:
                self.cash[fill.portfolio_id, currency].amount += amount
                self.movements.append(
                    _ledger_row(
                        security,
                        portfolio_id=fill.portfolio_id,
                        signed=amount,
                        on_date=on_date,
                        settles=value_date,
                        reason=reason,
                        allocation_id=fill.allocation_id,
                        currency=currency,
                    )
                )
            booked.append(
                {"before": before, "after": _fx_figures(self.cash, currencies, fill.portfolio_id)}
            )
        return booked

    def write(self) -> None:
        update_rows(Position, list(self.positions.values()), ["quantity"])
        update_rows(CashBalance, list(self.cash.values()), ["amount"])
        update_rows(TaxLot, list(self.closed.values()), ["quantity"])
        # a lot bought and partly sold in one go is inserted as the sell left it
        TaxLot.objects.bulk_create(self.new_lots, batch_size=_ROWS_PER_INSERT)
        LotClosing.objects.bulk_create(self.closings, batch_size=_ROWS_PER_INSERT)
        CashMovement.objects.bulk_create(self.movements, batch_size=_ROWS_PER_INSERT)
        for after, taken in self.sold:
            after["lots_closed"] = _named(taken)


#: Rows per INSERT at most (PostgreSQL takes at most 65,535 parameters in one).
_ROWS_PER_INSERT = 1000


def _fx_legs(
    security: Security, fill: Fill, on_date: date, settles: date | None = None
) -> list[tuple]:
    """``(currency, signed amount, value date, reason)`` of an FX fill: the engine's two
    legs and the commission (quote currency), in the books' money places, on the
    engine's value date or on ``settles``, the broker's, when it gave one."""
    booking = terms.fx_booking(
        security,
        buying=fill.buying,
        quantity=fill.quantity,
        price=fill.price,
        trade_date=on_date,
        settles=settles,
    )
    legs = [(m.currency, money(m.amount), m.value_date, m.reason) for m in booking.cash]
    if fill.commission:
        legs.append((security.currency, -fill.commission, booking.settlement_date, "commission"))
    return legs


def _fx_figures(cash: dict, currencies: list[str], portfolio_id: int) -> dict:
    return {"cash": {c: cash[portfolio_id, c].amount for c in currencies}}


def _first_in(lot: TaxLot) -> tuple:
    """First in, first out: by acquisition, then booking order (a lot not stored yet
    after every stored one, in the order it was bought)."""
    return (lot.acquired_on, lot.pk is None, lot.pk or 0)


def _lock_pairs(model, column: str, wanted: dict) -> dict:
    """The rows of ``model`` for each account of ``wanted[key]`` with ``column`` = key
    (a position per security, a cash balance per currency), locked in pk order in one
    statement; the missing ones are created first (a concurrent creator is waited
    for). Keyed by ``(account, key)``."""
    if not wanted:
        return {}
    model.objects.bulk_create(
        [
            model(portfolio_id=pk, **{column: key})
            for key, accounts in sorted(wanted.items())
            for pk in sorted(accounts)
        ],
        ignore_conflicts=True,
        batch_size=_ROWS_PER_INSERT,
    )
    match = Q()
    for key, accounts in wanted.items():
        match |= Q(portfolio_id__in=sorted(accounts), **{column: key})
    rows = model.objects.select_for_update().filter(match).order_by("pk")
    return {(row.portfolio_id, getattr(row, column)): row for row in rows}


def _lock_open_lots(selling: dict) -> dict:
    """The open lots of the (account, security) pairs that sell, locked in one
    statement, first in, first out per pair."""
    open_lots: dict = {
        (pk, security): [] for security, accounts in selling.items() for pk in accounts
    }
    if not selling:
        return open_lots
    match = Q()
    for security, accounts in selling.items():
        match |= Q(portfolio_id__in=sorted(accounts), security_id=security)
    for lot in (
        TaxLot.objects.select_for_update()
        .filter(match, quantity__gt=0)
        .order_by("acquired_on", "pk")
    ):
        open_lots[lot.portfolio_id, lot.security_id].append(lot)
    return open_lots


def _close_lots(open_lots: list[TaxLot], fill: Fill, on_date: date) -> list[tuple]:
    """Take ``fill.quantity`` from the open lots (first in, first out order; changed in
    place): the fill's specific lots first, up to the quantity each names, then the
    others in the order its lot method gives. Returns ``(lot, quantity taken)``; what
    no lot covers went short and closes nothing."""
    by_pk = {lot.pk: lot for lot in open_lots if lot.pk is not None}
    taken: list[tuple] = []
    left = fill.quantity

    def take(lot: TaxLot, most: Decimal) -> None:
        nonlocal left
        quantity = min(lot.quantity, left, most)
        if quantity > 0:
            lot.quantity -= quantity
            left -= quantity
            taken.append((lot, quantity))

    for pk, quantity in fill.lots:
        if left <= 0:
            break
        lot = by_pk.get(int(pk))
        if lot is not None:
            take(lot, round_qty(Decimal(str(quantity))))
    if left > 0:
        # keyed by place, not pk: a lot bought earlier in the same booking has none yet
        still_open = [
            (n, lot.unit_cost, lot.acquired_on)
            for n, lot in enumerate(open_lots)
            if lot.quantity > 0
        ]
        for n in closing_order(
            still_open, method=fill.lot_method, price=float(fill.price), sold_on=on_date
        ):
            if left <= 0:
                break
            take(open_lots[n], left)
    return taken


def _take_open_lots(
    portfolio: Portfolio,
    security: Security,
    fill: Fill,
    on_date: date,
    *,
    event=None,
    at_cost: bool = False,
) -> list[tuple]:
    """Close ``fill.quantity`` of the account's open lots of `security` (locked, first
    in, first out order, then the fill's own choice: `_close_lots`) and store a
    `LotClosing` for each (naming the life-cycle ``event``, if any; ``at_cost``: closed
    at the lot's own cost, realising nothing). Returns ``(lot, quantity taken)``."""
    open_lots = list(
        TaxLot.objects.select_for_update()
        .filter(portfolio=portfolio, security=security, quantity__gt=0)
        .order_by("acquired_on", "pk")
    )
    taken = _close_lots(open_lots, fill, on_date)
    closings = _closings(security, fill, taken, on_date)
    for closing in closings:
        closing.event = event
        if at_cost:
            closing.proceeds_per_unit = closing.unit_cost
            closing.realised_gain = Decimal(0)
    update_rows(TaxLot, [lot for lot, _ in taken], ["quantity"])
    LotClosing.objects.bulk_create(closings)
    return taken


def _named(taken: list[tuple]) -> list:
    """The lots a sell closed, for its audit event: ``[[lot id, quantity], ...]``."""
    return [[lot.pk, str(quantity)] for lot, quantity in taken]


def _closings(security: Security, fill: Fill, taken: list[tuple], on_date: date) -> list:
    """A `LotClosing` per lot a sell took: its cost, the proceeds, its share of the
    commission (the shares of the covered part add up, the last row takes the cents
    left) and the gain it realised, in the security's currency."""
    rows = []
    covered = sum((quantity for _, quantity in taken), Decimal(0))
    commission_left = money(fill.commission * covered / fill.quantity) if taken else Decimal(0)
    for i, (lot, quantity) in enumerate(taken):
        share = (
            commission_left
            if i == len(taken) - 1
            else money(fill.commission * quantity / fill.quantity)
        )
        commission_left -= share
        gain = money(quantity * (fill.price - lot.unit_cost) * security.multiplier) - share
        rows.append(
            LotClosing(
                lot=lot,
                portfolio_id=fill.portfolio_id,
                security=security,
                allocation_id=fill.allocation_id,
                quantity=quantity,
                unit_cost=lot.unit_cost,
                proceeds_per_unit=fill.price,
                commission=share,
                realised_gain=gain,
                term=LotClosing.Term.LONG
                if long_term_on(lot.acquired_on, on_date)
                else LotClosing.Term.SHORT,
                closed_on=on_date,
            )
        )
    return rows


def holdings_backfill_closings(
    *,
    security: Security,
    portfolio_id: int,
    sells: list[tuple[Fill, date, datetime]],
    store: bool = True,
) -> tuple[list[LotClosing], str]:
    """The closings of sells booked before closings were recorded, found by replaying
    them (in the order given, each on its trade date; the moment each was booked dates
    its rows, as for a sell booked now) over the account's lots of the
    security from their original quantities, first in, first out as the books then
    closed them, through the same rules as a sell booked today (`_close_lots`,
    `_closings`), and stored (unless not ``store``) when the replay reproduces the books.
    Returns the rows and ``""``, or no rows and the reason it does not (a lot it leaves
    at another quantity than the one held: a bust or a hand edit changed them since),
    and then nothing is stored. Lots are read, never changed: the sells closed them
    already. Locks the lots; runs inside the caller's transaction."""
    lots = list(
        TaxLot.objects.select_for_update()
        .filter(portfolio_id=portfolio_id, security=security)
        .order_by("acquired_on", "pk")
    )
    replayed = {
        lot.pk: TaxLot(
            pk=lot.pk,
            portfolio_id=lot.portfolio_id,
            security=security,
            quantity=lot.original_quantity,
            original_quantity=lot.original_quantity,
            unit_cost=lot.unit_cost,
            acquired_on=lot.acquired_on,
        )
        for lot in lots
    }
    closings: list[LotClosing] = []
    for fill, on_date, _ in sells:
        held = [lot for lot in replayed.values() if lot.acquired_on <= on_date]
        closings += _closings(security, fill, _close_lots(held, fill, on_date), on_date)
    for lot in lots:
        if replayed[lot.pk].quantity != lot.quantity:
            return [], (
                f"replayed first in, first out, the lot bought on {lot.acquired_on} would hold "
                f"{replayed[lot.pk].quantity} where the books hold {lot.quantity}"
            )
    if store and closings:
        LotClosing.objects.bulk_create(closings)
        for fill, _, booked_at in sells:  # auto_now_add dated them now
            LotClosing.objects.filter(allocation_id=fill.allocation_id).update(created_at=booked_at)
    return closings, ""


def holdings_reverse_fill(
    *,
    portfolio: Portfolio,
    security: Security,
    buying: bool,
    quantity: Decimal,
    price: Decimal,
    commission: Decimal = Decimal(0),
    allocation_id: int | None = None,
    on_date: date | None = None,
) -> dict:
    """Undo a booked fill (a broker's trade bust): position and cash back by the
    same amounts, and the tax lots put back as they were: a bought lot shrinks
    (newest first); a sell reopens exactly the lots its allocation closed (its
    `LotClosing` rows, the last first) and writes a reversing row for each. A sell
    booked before closings were recorded (none name its allocation) reopens the
    closed lots newest first, as the books used to. The cash comes back by the
    settlement-ledger rows the allocation wrote, offset (a bond's accrued interest ran
    to the settlement date booked, the broker's where it gave one); a fill booked before
    the ledger by the amount again, ``on_date`` the day it was booked. Runs inside the
    caller's transaction."""
    if quantity <= 0:
        raise ValueError("reversed quantity must be positive")
    if terms.is_fx(security):
        return _reverse_fx(
            portfolio,
            security,
            Fill(portfolio.pk, buying, quantity, price, commission, allocation_id),
            on_date or timezone.localdate(),
        )
    position = _lock_position(portfolio, security)
    cash = _lock_cash(portfolio, security.currency)
    before = _figures(position, cash)
    drift_mark_stale(portfolio_ids=[portfolio.pk])
    reversing = _reverse_movements(portfolio, allocation_id)
    if reversing:  # back exactly what the booking moved, whatever day it settled on
        back = sum((row.amount for row in reversing if row.currency == cash.currency), ZERO)
    else:  # booked before the ledger: the amount again, on our settlement date
        amount = fill_amount(security, quantity, price, on_date or timezone.localdate())
        back = amount + commission if buying else commission - amount
    lots = TaxLot.objects.select_for_update().filter(portfolio=portfolio, security=security)
    left = quantity
    reopened = None
    if buying:
        for lot in lots.filter(quantity__gt=0).order_by("-acquired_on", "-pk"):
            if left <= 0:
                break
            take = min(lot.quantity, left)
            lot.quantity -= take
            lot.save(update_fields=["quantity"])
            left -= take
        position.quantity -= quantity
    elif (reopened := _reopen_closed(portfolio, allocation_id, quantity)) is None:
        closed = lots.filter(quantity__lt=F("original_quantity")).order_by("-acquired_on", "-pk")
        for lot in closed:
            if left <= 0:
                break
            give = min(lot.original_quantity - lot.quantity, left)
            lot.quantity += give
            lot.save(update_fields=["quantity"])
            left -= give
    if not buying:
        position.quantity += quantity
    cash.amount += back
    reversed_ = _save(position, cash, before)
    if reopened:
        reversed_["after"]["lots_reopened"] = reopened
    return reversed_


def _reverse_movements(portfolio: Portfolio, allocation_id: int | None) -> list[CashMovement]:
    """Offset the settlement-ledger rows the allocation booked and no row offsets yet,
    each with a row of the opposite sign on the same value date; returns the new rows.
    Nothing when the allocation booked none (booked before the ledger)."""
    if allocation_id is None:
        return []
    rows = list(
        CashMovement.objects.select_for_update()
        .filter(portfolio=portfolio, allocation_id=allocation_id)
        .order_by("pk")
    )
    offset = {row.reverses_id for row in rows if row.reverses_id is not None}
    reversing = [
        CashMovement(
            portfolio_id=row.portfolio_id,
            currency=row.currency,
            amount=-row.amount,
            quantity=None if row.quantity is None else -row.quantity,
            value_date=row.value_date,
            trade_date=row.trade_date,
            security_id=row.security_id,
            allocation_id=row.allocation_id,
            reason=row.reason,
            reverses=row,
        )
        for row in rows
        if row.reverses_id is None and row.pk not in offset
    ]
    return CashMovement.objects.bulk_create(reversing)


def _reverse_fx(portfolio: Portfolio, security: Security, fill: Fill, on_date: date) -> dict:
    """Undo a booked FX fill: the legs its allocation wrote are offset and the
    trade-date cash moves back by them (a fill booked before the ledger: by the legs
    the engine gives again)."""
    currencies = sorted((security.base_currency, security.currency))
    # in pk order in one statement, as every writer of cash locks it
    cash = _lock_pairs(CashBalance, "currency", {c: {portfolio.pk} for c in currencies})
    before = _fx_figures(cash, currencies, portfolio.pk)
    drift_mark_stale(portfolio_ids=[portfolio.pk])
    reversing = _reverse_movements(portfolio, fill.allocation_id)
    if reversing:
        legs = [(row.currency, row.amount) for row in reversing]
    else:
        legs = [(c, -amount) for c, amount, _, _ in _fx_legs(security, fill, on_date)]
    for currency, amount in legs:
        cash[portfolio.pk, currency].amount += amount
    for row in cash.values():
        row.save(update_fields=["amount"])
    return {"before": before, "after": _fx_figures(cash, currencies, portfolio.pk)}


def _reopen_closed(
    portfolio: Portfolio, allocation_id: int | None, quantity: Decimal
) -> list | None:
    """Reopen up to ``quantity`` of what the allocation's closings still hold (the
    latest first) and offset each with a reversing row of the opposite sign; returns
    the lots reopened (``[[lot id, quantity], ...]``). None when no closing names the
    allocation (nothing done)."""
    if allocation_id is None:
        return None
    rows = list(
        LotClosing.objects.select_for_update()
        .filter(portfolio=portfolio, allocation_id=allocation_id)
        .order_by("pk")
    )
    if not rows:
        return None
    net = {row.pk: row.quantity for row in rows if row.reverses_id is None}
    for row in rows:
        if row.reverses_id is not None:
            net[row.reverses_id] = net.get(row.reverses_id, Decimal(0)) + row.quantity
    still = [row for row in reversed(rows) if row.reverses_id is None and net[row.pk] > 0]
    lots = {
        lot.pk: lot
        for lot in TaxLot.objects.select_for_update()
        .filter(pk__in=sorted({row.lot_id for row in still}))
        .order_by("pk")
    }
    left = quantity
    reversing = []
    for row in still:
        if left <= 0:
            break
        give = min(net[row.pk], left)
        left -= give
        lot = lots[row.lot_id]
        lot.quantity += give
        part = give / row.quantity
        commission = money(row.commission * part)
        reversing.append(
            LotClosing(
                lot_id=row.lot_id,
                portfolio_id=row.portfolio_id,
                security_id=row.security_id,
                allocation_id=row.allocation_id,
                quantity=-give,
                unit_cost=row.unit_cost,
                proceeds_per_unit=row.proceeds_per_unit,
                commission=-commission,
                realised_gain=-(
                    money(row.realised_gain * part) if give != row.quantity else row.realised_gain
                ),
                term=row.term,
                closed_on=row.closed_on,
                reverses=row,
            )
        )
    update_rows(TaxLot, list(lots.values()), ["quantity"])
    LotClosing.objects.bulk_create(reversing)
    return [[row.lot_id, str(-row.quantity)] for row in reversing]


def _figures(position: Position, cash: CashBalance) -> dict:
    return {"position": position.quantity, "cash": cash.amount, "cash_currency": cash.currency}


def _save(position: Position, cash: CashBalance, before: dict) -> dict:
    """Store the moved position and cash; the before/after for the caller's event."""
    position.save(update_fields=["quantity"])
    cash.save(update_fields=["amount"])
    return {"before": before, "after": _figures(position, cash)}


# --- life-cycle events (portfolios.services.lifecycle) ------------------------------


def _event_cash(security, portfolio, signed, on_date, value_date, reason, event) -> None:
    """A life-cycle event's cash in the settlement ledger, on its value date."""
    _ledger_row(
        security,
        portfolio_id=portfolio.pk,
        signed=signed,
        on_date=on_date,
        settles=value_date,
        reason=reason,
        event=event,
    ).save()


def holdings_close_position(
    *,
    portfolio: Portfolio,
    security: Security,
    price: Decimal,
    on_date: date,
    value_date: date,
    reason: str,
    event=None,
    at_cost: bool = False,
) -> dict:
    """Close the whole position in `security` at `price` (a bond redeemed at 100, a future
    at its final settlement, an option at its intrinsic value or at zero): a long
    position's open lots are closed first in, first out, each with its `LotClosing`
    (naming ``event``), and cash moves by quantity x price x multiplier (paid for a
    short, which holds no lots), on ``value_date`` in the settlement ledger.
    ``at_cost``: the lots are closed at their own cost with no cash (an exercised
    option, whose premium goes into the underlying's cost or proceeds). Returns the
    before/after figures and ``closed``: the ``(quantity, unit cost)`` of each lot
    taken. Runs inside the caller's (audited) transaction."""
    position = _lock_position(portfolio, security)
    cash = _lock_cash(portfolio, security.currency)
    before = _figures(position, cash)
    drift_mark_stale(portfolio_ids=[portfolio.pk])
    quantity = position.quantity
    taken: list[tuple] = []
    if quantity > 0:
        fill = Fill(portfolio_id=portfolio.pk, buying=False, quantity=quantity, price=price)
        taken = _take_open_lots(portfolio, security, fill, on_date, event=event, at_cost=at_cost)
    amount = Decimal(0) if at_cost else money(quantity * price * terms.price_multiplier(security))
    position.quantity = Decimal(0)
    cash.amount += amount
    if amount:
        _event_cash(security, portfolio, amount, on_date, value_date, reason, event)
    booked = _save(position, cash, before)
    booked["after"]["lots_closed"] = _named(taken)
    booked["closed"] = [(q, lot.unit_cost) for lot, q in taken]
    booked["amount"] = amount
    return booked


def holdings_deliver(
    *,
    portfolio: Portfolio,
    security: Security,
    buying: bool,
    quantity: Decimal,
    price: Decimal,
    on_date: date,
    value_date: date,
    reason: str,
    event=None,
    lot_costs: list[tuple[Decimal, Decimal]] | None = None,
    proceeds: Decimal | None = None,
) -> dict:
    """Book a delivery of `quantity` units of `security` at `price` (the underlying of an
    exercised or assigned option, at the strike): cash quantity x price x multiplier on
    ``value_date``. A buy opens lots (``lot_costs``: ``(quantity, unit cost)`` each, the
    strike plus the premium paid; one lot at `price` by default) for what goes beyond
    covering a short (the first units delivered cover it); a sell closes lots first
    in, first out at ``proceeds`` per unit (the strike less the premium paid; `price`
    by default), what no lot covers going short. Runs inside the caller's (audited)
    transaction; the before/after figures."""
    if quantity <= 0:
        raise ValueError("delivered quantity must be positive")
    position = _lock_position(portfolio, security)
    cash = _lock_cash(portfolio, security.currency)
    before = _figures(position, cash)
    drift_mark_stale(portfolio_ids=[portfolio.pk])
    amount = money(quantity * price * terms.price_multiplier(security))
    signed = -amount if buying else amount
    taken: list[tuple] = []
    if buying:
        covered = quantity - _beyond_short(position.quantity, quantity)
        opened = []
        for q, cost in lot_costs or [(quantity, price)]:
            closing = min(q, covered)  # the first units delivered close the short
            covered -= closing
            if q - closing > 0:
                opened.append((q - closing, cost))
        TaxLot.objects.bulk_create(
            TaxLot(
                portfolio=portfolio,
                security=security,
                quantity=q,
                original_quantity=q,
                unit_cost=cost,
                acquired_on=on_date,
            )
            for q, cost in opened
        )
        position.quantity += quantity
    else:
        fill = Fill(
            portfolio_id=portfolio.pk,
            buying=False,
            quantity=quantity,
            price=price if proceeds is None else proceeds,
        )
        taken = _take_open_lots(portfolio, security, fill, on_date, event=event)
        position.quantity -= quantity
    cash.amount += signed
    _event_cash(security, portfolio, signed, on_date, value_date, reason, event)
    booked = _save(position, cash, before)
    if taken:
        booked["after"]["lots_closed"] = _named(taken)
    booked["amount"] = signed
    return booked


def holdings_credit(
    *,
    portfolio: Portfolio,
    security: Security,
    amount: Decimal,
    on_date: date,
    value_date: date,
    reason: str,
    event=None,
) -> dict:
    """Move `amount` (signed) of the security's currency into the account's cash with
    no change of position (a bond's coupon), in the settlement ledger on ``value_date``.
    Runs inside the caller's (audited) transaction; the before/after of the cash."""
    cash = _lock_cash(portfolio, security.currency)
    before = {"cash": cash.amount, "cash_currency": cash.currency}
    drift_mark_stale(portfolio_ids=[portfolio.pk])
    cash.amount += amount
    cash.save(update_fields=["amount"])
    _event_cash(security, portfolio, amount, on_date, value_date, reason, event)
    return {"before": before, "after": {"cash": cash.amount, "cash_currency": cash.currency}}
