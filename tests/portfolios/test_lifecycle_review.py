"""Review of the life-cycle events (portfolios.services.lifecycle): faults found.

- A currency option in the money by less than 0.01 of its pair's rate (0.5 cent on
  EUR/USD at 1.085 against a 1.08 strike: 50 pips, about 0.46%) was let expire
  worthless: OCC Rule 805(d)'s $0.01 is a threshold for equity options' dollar
  prices, and a cash-settled option costs nothing to exercise, so the holder loses
  2 x 125,000 x 0.005 = 1,250.00.
- A sale through zero (a long sold beyond its lots, the rest going short) that settles
  on or after the coupon date added back only the lots it closed: the face held
  settled on the record date came out as the position left after the sale plus the
  lots, not the position before the sale.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portfolios.models import Price
from portfolios.services import reference
from portfolios.services.holdings import holdings_book_fill
from portfolios.services.lifecycle import face_on_record, lifecycle_book

from .test_lifecycle import EXPIRY, _account, _cash, _hold, euro_call, treasury  # noqa: F401

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def _manager(pm):
    from . import test_lifecycle

    test_lifecycle.MANAGER = pm


def test_a_currency_option_half_a_cent_in_the_money_is_cash_settled_not_lost(ops):
    pair, call = euro_call(ops)
    acc = _account("ACC1", cash="0")
    _hold(acc, call, 2, "0.0030")
    Price.objects.create(security=pair, as_of=EXPIRY, price=D("1.0850"))

    [event] = lifecycle_book(on=EXPIRY).booked

    # 2 x 125,000 x (1.085 - 1.08) = 1,250.00
    assert (event.outcome, event.amount) == ("cash_settled", D("1250.00"))
    assert _cash(acc) == D("1250.00")


def test_a_sale_through_zero_settling_on_the_coupon_date_leaves_the_face_on_record(
    treasury,  # noqa: F811
):
    """ACC1 held 300,000 settled and sold 500,000 on Monday 31 August 2020 (T+1: it
    settles on the coupon date, 1 September): on the record date it held 300,000, and
    the coupon is 300,000 x 8% / 2 = 12,000.00."""
    acc = _account("ACC1")
    fill = {"security": treasury, "price": D("101.50")}
    holdings_book_fill(
        portfolio=acc, buying=True, quantity=D(300_000), on_date=date(2020, 7, 2), **fill
    )
    holdings_book_fill(
        portfolio=acc, buying=False, quantity=D(500_000), on_date=date(2020, 8, 31), **fill
    )

    assert face_on_record(acc.pk, treasury, date(2020, 9, 1)) == D(300_000)
    [event] = lifecycle_book(on=date(2020, 9, 1)).booked
    assert event.amount == D("12000.00")


def test_the_command_refuses_a_day_that_has_not_come(ops):
    """The page refuses to book a day after today; the command (and the service under
    both) booked it: an option expiring next week exercised at today's price, a bond
    redeemed before its maturity."""
    import datetime as dt

    from django.core.management import CommandError, call_command
    from django.utils import timezone

    from portfolios.models import LifecycleEvent

    today = timezone.now().date()
    xyz = reference.security_create(
        actor=ops, ticker="XYZ", name="XYZ Corp", asset_class="equity", currency="USD"
    )
    call = reference.security_create(
        actor=ops,
        ticker="XYZ-C100",
        name="XYZ call 100",
        asset_class="option",
        currency="USD",
        country="US",
        multiplier=D(100),
        underlying=xyz,
        option_right="call",
        strike=D("100"),
        expiry=today + dt.timedelta(days=7),
    )
    acc = _account("ACC1")
    _hold(acc, call, 1, "5", acquired=today)
    Price.objects.create(security=xyz, as_of=today, price=D("115"))

    with pytest.raises(CommandError, match="not come"):
        call_command("book_lifecycle_events", "--date", str(today + dt.timedelta(days=7)))
    assert not LifecycleEvent.objects.exists()


def test_an_option_on_a_future_expiring_with_it_leaves_no_position_in_the_expired_future(ops):
    """A quarterly option on a future expires with it (the E-mini S&P's quarterly
    options do). The day's events were booked in ticker order: the future ("ESM4") was
    settled first, then the call ("ESM4-C5000") exercised into one more ESM4 at the
    strike, a position in a contract that has expired and whose expiry is booked for the
    account already, so that no run ever settles it."""
    from portfolios.models import Position

    future = reference.security_create(
        actor=ops,
        ticker="ESM4",
        name="E-mini S&P 500 Jun 2024",
        asset_class="future",
        currency="USD",
        country="US",
        multiplier=D(50),
        contract_unit="$50 x index",
        expiry=EXPIRY,
    )
    call = reference.security_create(
        actor=ops,
        ticker="ESM4-C5000",
        name="ESM4 call 5000",
        asset_class="option",
        currency="USD",
        country="US",
        multiplier=D(50),
        underlying=future,
        option_right="call",
        strike=D("5000"),
        expiry=EXPIRY,
    )
    acc, only_the_call = _account("ACC1"), _account("ACC2")
    _hold(acc, future, 1, "5000")
    _hold(acc, call, 1, "20")
    _hold(only_the_call, call, 1, "20")
    Price.objects.create(security=future, as_of=EXPIRY, price=D("5100"))

    lifecycle_book(on=EXPIRY)  # one run of the day settles what its exercises delivered

    for account in (acc, only_the_call):
        assert Position.objects.get(portfolio=account, security=future).quantity == 0


def test_a_buy_covering_a_short_settling_on_the_coupon_date_leaves_the_short_on_record(
    treasury,  # noqa: F811
):
    """Short 200,000 settled, covered on Monday 31 August 2020 (settling on the coupon
    date): on the record date the account was still short 200,000, not flat or long."""
    acc = _account("ACC1")
    fill = {"security": treasury, "price": D("101.50")}
    holdings_book_fill(
        portfolio=acc, buying=False, quantity=D(200_000), on_date=date(2020, 7, 2), **fill
    )
    holdings_book_fill(
        portfolio=acc, buying=True, quantity=D(200_000), on_date=date(2020, 8, 31), **fill
    )
    assert face_on_record(acc.pk, treasury, date(2020, 9, 1)) == D(-200_000)


def test_a_trade_busted_before_the_coupon_counts_for_nothing_on_record(treasury):  # noqa: F811
    from portfolios.services.holdings import holdings_reverse_fill

    acc = _account("ACC1")
    fill = {"security": treasury, "price": D("101.50")}
    holdings_book_fill(
        portfolio=acc, buying=True, quantity=D(300_000), on_date=date(2020, 7, 2), **fill
    )
    holdings_book_fill(
        portfolio=acc,
        buying=True,
        quantity=D(100_000),
        on_date=date(2020, 8, 31),
        allocation_id=77,
        **fill,
    )
    holdings_reverse_fill(
        portfolio=acc,
        buying=True,
        quantity=D(100_000),
        on_date=date(2020, 8, 31),
        allocation_id=77,
        **fill,
    )
    assert face_on_record(acc.pk, treasury, date(2020, 9, 1)) == D(300_000)


def test_trades_booked_before_the_ledger_kept_their_units_are_read_by_their_lots(
    treasury,  # noqa: F811
):
    """ACC1 bought 300,000 in July and 200,000 on Monday 31 August (settling on the
    coupon date); ledger rows from before the units were kept carry none: the face on
    record comes from the lots, 300,000, alone and on the page's set-based read."""
    from portfolios.models import CashMovement
    from portfolios.services.lifecycle import lifecycle_due

    acc = _account("ACC1")
    fill = {"security": treasury, "price": D("101.50"), "portfolio": acc, "buying": True}
    holdings_book_fill(quantity=D(300_000), on_date=date(2020, 7, 2), **fill)
    holdings_book_fill(quantity=D(200_000), on_date=date(2020, 8, 31), **fill)
    CashMovement.objects.filter(portfolio=acc, reason="trade").update(quantity=None)

    assert face_on_record(acc.pk, treasury, date(2020, 9, 1)) == D(300_000)
    [due] = lifecycle_due(on=date(2020, 9, 1))
    assert due.quantity == D(300_000)


def test_a_busted_trade_from_before_the_ledger_kept_units_does_not_send_the_face_to_the_lots(
    treasury,  # noqa: F811
):
    """Long 300,000, sold 500,000 on Monday 31 August 2020 (units kept, settling on the
    coupon date), and a buy of 100,000 that day booked before the ledger kept units and
    busted (its row and the reversing row carry none): the pair counts for nothing, so
    the face on record is the 300,000 held, not the lots' short-changed figure."""
    from portfolios.models import CashMovement
    from portfolios.services.holdings import holdings_reverse_fill

    acc = _account("ACC1")
    fill = {"security": treasury, "price": D("101.50"), "portfolio": acc}
    holdings_book_fill(buying=True, quantity=D(300_000), on_date=date(2020, 7, 2), **fill)
    busted = {"buying": True, "quantity": D(100_000), "on_date": date(2020, 8, 31)}
    holdings_book_fill(allocation_id=77, **busted, **fill)
    holdings_reverse_fill(allocation_id=77, **busted, **fill)
    CashMovement.objects.filter(portfolio=acc, allocation_id=77).update(quantity=None)
    holdings_book_fill(buying=False, quantity=D(500_000), on_date=date(2020, 8, 31), **fill)

    assert face_on_record(acc.pk, treasury, date(2020, 9, 1)) == D(300_000)
