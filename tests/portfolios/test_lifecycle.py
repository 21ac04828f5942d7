"""Life-cycle events booked (issue 12, item 7): coupons and redemptions of bonds, the
final settlement of futures, the exercise, assignment and expiry of listed options
(portfolios.services.lifecycle).

The figures are from published references, named where they are used:

- 31 CFR Part 356, Appendix B (Treasury marketable securities): a note of $1,000 at 8%
  pays $40 every half-year, whatever the days of the period; Hull, *Options, Futures,
  and Other Derivatives*, ch. 6, uses the same 8% Treasury paying on 1 March and
  1 September. 1,000,000 face pays 40,000.00 on 1 September 2020.
- Apple Inc., prospectus supplement of 30 April 2013: 2.400% Notes due 3 May 2023,
  interest on 3 May and 3 November, 30/360, minimum denominations of $2,000 and
  multiples of $1,000 above. At maturity 100,000 face pays the last coupon,
  100,000 x 0.024 / 2 = 1,200.00, and is redeemed at par; bought at 98.50 it realises
  100,000 x (100 - 98.50) / 100 = 1,500.00.
- Hull, ch. 10 ("Mechanics of options markets"): a call on 100 shares struck at $100
  bought for $5 a share; at $115 at expiry it is exercised, a gain of $1,500 on the
  shares less the $500 premium: $1,000 net. A put on 100 shares struck at $70 bought
  for $7; at $55 the shares bought at $55 are sold at $70: $1,500 less $700, $800 net.
  Out of the money each loses its premium ($500, $700).
- OCC Rule 805(d) (exercise by exception): an expiring equity option in the money by
  $0.01 or more is exercised automatically.
- Hull, ch. 2, Table 2.1: two gold futures (100 ounces each) bought at $1,250 an
  ounce, ending at $1,226.90: a loss of 2 x 100 x 23.10 = $4,620 (booked here as the
  final settlement at expiry).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from portfolios.models import (
    CashBalance,
    CashMovement,
    LifecycleEvent,
    LotClosing,
    Portfolio,
    Position,
    Price,
    TaxLot,
)
from portfolios.services import reference
from portfolios.services.holdings import holdings_book_fill
from portfolios.services.lifecycle import lifecycle_book, lifecycle_due

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def _manager(pm):
    global MANAGER
    MANAGER = pm


MANAGER = None


def _account(code: str, cash: str = "1000000") -> Portfolio:
    account = Portfolio.objects.create(code=code, name=code, manager=MANAGER, long_only=False)
    CashBalance.objects.create(portfolio=account, currency="USD", amount=D(cash))
    return account


def _cash(account) -> Decimal:
    return CashBalance.objects.get(portfolio=account, currency="USD").amount


def _position(account, security) -> Decimal:
    row = Position.objects.filter(portfolio=account, security=security).first()
    return row.quantity if row else D(0)


def _hold(account, security, quantity, unit_cost, acquired=date(2024, 3, 1)):
    Position.objects.update_or_create(
        portfolio=account, security=security, defaults={"quantity": D(quantity)}
    )
    if D(quantity) > 0:
        TaxLot.objects.create(
            portfolio=account,
            security=security,
            quantity=D(quantity),
            original_quantity=D(quantity),
            unit_cost=D(unit_cost),
            acquired_on=acquired,
        )


def _realised(account, security) -> Decimal:
    return sum(
        (c.realised_gain for c in LotClosing.objects.filter(portfolio=account, security=security)),
        D(0),
    )


# --- bonds ------------------------------------------------------------------------


@pytest.fixture
def treasury(ops):
    return reference.security_create(
        actor=ops,
        ticker="T 8 09/01/29",
        name="US Treasury 8% 2029",
        asset_class="bond",
        currency="USD",
        country="US",
        government=True,
        coupon_rate=D("0.08"),
        coupon_frequency=2,
        day_count="ACT/ACT ICMA",
        issue_date=date(2019, 3, 1),
        maturity=date(2029, 9, 1),
        min_quantity=D(100),
        round_lot=D(100),
    )


def test_a_treasury_coupon_is_paid_on_the_face_held_settled_the_day_before(treasury):
    """ACC1 bought 1,000,000 in July and sold 100,000 on Monday 31 August: the sale
    settles on the coupon date (T+1), so the buyer paid no accrued interest and ACC1
    gets the coupon on the whole 1,000,000. ACC2 bought 200,000 more on 31 August: not
    settled by the coupon date, so it is paid on its 300,000 only."""
    acc1, acc2 = _account("ACC1"), _account("ACC2")
    fill = {"security": treasury, "price": D("101.50")}
    holdings_book_fill(
        portfolio=acc1, buying=True, quantity=D(1_000_000), on_date=date(2020, 7, 2), **fill
    )
    holdings_book_fill(
        portfolio=acc1, buying=False, quantity=D(100_000), on_date=date(2020, 8, 31), **fill
    )
    holdings_book_fill(
        portfolio=acc2, buying=True, quantity=D(300_000), on_date=date(2020, 7, 2), **fill
    )
    holdings_book_fill(
        portfolio=acc2, buying=True, quantity=D(200_000), on_date=date(2020, 8, 31), **fill
    )
    cash_before = {a.pk: _cash(a) for a in (acc1, acc2)}

    run = lifecycle_book(on=date(2020, 9, 1))

    assert not run.refused
    paid = {e.portfolio_id: e for e in run.booked}
    assert paid[acc1.pk].quantity == D(1_000_000)
    assert paid[acc1.pk].amount == D("40000.00")  # $40 per $1,000 at 8% (31 CFR 356)
    assert paid[acc2.pk].quantity == D(300_000)
    assert paid[acc2.pk].amount == D("12000.00")
    assert paid[acc1.pk].price == D(4)  # coupon per 100
    assert paid[acc1.pk].outcome == LifecycleEvent.Outcome.PAID
    assert _cash(acc1) - cash_before[acc1.pk] == D("40000.00")
    movement = CashMovement.objects.get(portfolio=acc1, reason="coupon")
    assert (movement.amount, movement.value_date) == (D("40000.00"), date(2020, 9, 1))
    assert movement.event == paid[acc1.pk]
    assert _position(acc1, treasury) == D(900_000)  # a coupon moves no position
    event = AuditEvent.objects.get(kind="lifecycle.paid", object_id=str(paid[acc1.pk].pk))
    assert D(event.after["amount"]) == D("40000.00")


def test_booking_a_day_twice_books_nothing_twice(treasury):
    acc1 = _account("ACC1")
    _hold(acc1, treasury, 1_000_000, "101.50", acquired=date(2020, 7, 2))
    first = lifecycle_book(on=date(2020, 9, 1))
    cash = _cash(acc1)
    again = lifecycle_book(on=date(2020, 9, 1), since=date(2020, 8, 25))
    assert len(first.booked) == 1
    assert again.booked == [] and again.refused == []
    assert _cash(acc1) == cash
    assert LifecycleEvent.objects.count() == 1
    assert CashMovement.objects.filter(reason="coupon").count() == 1
    assert lifecycle_due(on=date(2020, 9, 1)) == []


def test_a_dry_run_books_nothing(treasury, capsys):
    acc1 = _account("ACC1")
    _hold(acc1, treasury, 1_000_000, "101.50", acquired=date(2020, 7, 2))
    call_command("book_lifecycle_events", "--date", "2020-09-01", "--dry-run")
    out = capsys.readouterr().out
    assert "would book 2020-09-01 T 8 09/01/29" in out and "40,000.00 USD" in out
    assert LifecycleEvent.objects.count() == 0
    call_command("book_lifecycle_events", "--date", "2020-09-01")
    assert "1 event(s) booked" in capsys.readouterr().out
    assert LifecycleEvent.objects.count() == 1


def _next_coupon_date() -> date:
    """The treasury's next coupon date (1 March, 1 September) after today."""
    today = timezone.now().date()
    return min(
        d
        for year in (today.year, today.year + 1)
        for d in (date(year, 3, 1), date(year, 9, 1))
        if d > today
    )


def test_a_day_to_come_is_planned_but_never_booked(treasury, capsys):
    """A coupon booked ahead of its date would pay it early: the service refuses a day
    that has not come (the page, the command and beat all book through it)."""
    from django.core.exceptions import ValidationError
    from django.core.management.base import CommandError

    acc1 = _account("ACC1")
    _hold(acc1, treasury, 1_000_000, "101.50", acquired=date(2020, 7, 2))
    cash = _cash(acc1)
    coupon = _next_coupon_date()
    with pytest.raises(ValidationError, match="has not come yet"):
        lifecycle_book(on=coupon)
    with pytest.raises(CommandError, match="has not come yet"):
        call_command("book_lifecycle_events", "--date", coupon.isoformat())
    call_command("book_lifecycle_events", "--date", coupon.isoformat(), "--dry-run")
    assert f"would book {coupon.isoformat()} T 8 09/01/29" in capsys.readouterr().out
    assert LifecycleEvent.objects.count() == 0
    assert _cash(acc1) == cash


def test_the_command_refuses_a_date_it_cannot_read():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("book_lifecycle_events", "--date", "1 Sept 2020")


def test_a_corporate_bond_pays_its_last_coupon_and_is_redeemed_at_par(ops):
    apple = reference.security_create(
        actor=ops,
        ticker="AAPL 2.4 05/03/23",
        name="Apple 2.400% notes due 2023",
        asset_class="bond",
        currency="USD",
        country="US",
        issuer="Apple Inc.",
        coupon_rate=D("0.024"),
        coupon_frequency=2,
        day_count="30/360 US",
        issue_date=date(2013, 5, 3),
        maturity=date(2023, 5, 3),
        min_quantity=D(2000),
        round_lot=D(1000),
    )
    acc = _account("ACC1", cash="0")
    _hold(acc, apple, 100_000, "98.50", acquired=date(2020, 1, 15))

    run = lifecycle_book(on=date(2023, 5, 3))

    outcomes = {e.outcome: e for e in run.booked}
    assert set(outcomes) == {"paid", "redeemed"}
    assert outcomes["paid"].amount == D("1200.00")
    assert outcomes["redeemed"].amount == D("100000.00")
    assert _cash(acc) == D("101200.00")
    assert _position(acc, apple) == 0
    assert TaxLot.objects.get(portfolio=acc, security=apple).quantity == 0
    closing = LotClosing.objects.get(portfolio=acc, security=apple)
    assert (closing.proceeds_per_unit, closing.realised_gain) == (D(100), D("1500.00"))
    assert closing.event == outcomes["redeemed"]
    assert lifecycle_book(on=date(2023, 5, 3)).booked == []


# --- options ------------------------------------------------------------------------

EXPIRY = date(2024, 6, 21)  # a Friday; exercise settles T+1, Monday 24 June


@pytest.fixture
def xyz(ops):
    return reference.security_create(
        actor=ops, ticker="XYZ", name="XYZ Corp", asset_class="equity", currency="USD"
    )


def _option(ops, underlying, right: str, strike: str, ticker: str | None = None):
    return reference.security_create(
        actor=ops,
        ticker=ticker or f"XYZ-{right[0].upper()}{strike}",
        name=f"XYZ {right} {strike}",
        asset_class="option",
        currency="USD",
        country="US",
        multiplier=D(100),
        underlying=underlying,
        option_right=right,
        strike=D(strike),
        expiry=EXPIRY,
    )


def _close(security, price):
    Price.objects.create(security=security, as_of=EXPIRY, price=D(price))


def test_a_call_in_the_money_is_exercised_and_its_premium_is_part_of_the_shares_cost(ops, xyz):
    call = _option(ops, xyz, "call", "100")
    acc = _account("ACC1", cash="20000")
    _hold(acc, call, 1, "5")
    _close(xyz, "115")

    [event] = lifecycle_book(on=EXPIRY).booked

    assert (event.outcome, event.amount) == ("exercised", D("-10000.00"))
    assert _position(acc, call) == 0 and _position(acc, xyz) == 100
    [lot] = TaxLot.objects.filter(portfolio=acc, security=xyz)
    assert (lot.quantity, lot.unit_cost, lot.acquired_on) == (100, D(105), EXPIRY)
    assert _cash(acc) == D("10000.00")
    assert CashMovement.objects.get(portfolio=acc, reason="exercise").value_date == date(
        2024, 6, 24
    )
    assert _realised(acc, call) == 0  # the premium is carried into the shares
    # Hull's net profit: the shares at 115 against what they cost, strike and premium.
    assert (D(115) - lot.unit_cost) * lot.quantity == D(1000)


def test_a_call_out_of_the_money_expires_worthless_and_loses_its_premium(ops, xyz):
    call = _option(ops, xyz, "call", "100")
    acc = _account("ACC1", cash="0")
    _hold(acc, call, 1, "5")
    _close(xyz, "95")

    [event] = lifecycle_book(on=EXPIRY).booked

    assert (event.outcome, event.amount) == ("expired", D(0))
    assert _position(acc, call) == 0 and _position(acc, xyz) == 0
    assert _realised(acc, call) == D("-500.00")
    assert _cash(acc) == 0
    assert not CashMovement.objects.filter(portfolio=acc).exists()


def test_a_put_in_the_money_sells_the_shares_at_the_strike_less_its_premium(ops, xyz):
    put = _option(ops, xyz, "put", "70")
    acc = _account("ACC1", cash="0")
    _hold(acc, put, 1, "7")
    _hold(acc, xyz, 100, "55", acquired=EXPIRY)
    _close(xyz, "55")

    [event] = lifecycle_book(on=EXPIRY).booked

    assert (event.outcome, event.amount) == ("exercised", D("7000.00"))
    assert _position(acc, put) == 0 and _position(acc, xyz) == 0
    assert _cash(acc) == D("7000.00")
    closing = LotClosing.objects.get(portfolio=acc, security=xyz)
    assert closing.proceeds_per_unit == D(63)
    assert _realised(acc, xyz) == D("800.00")  # Hull's $800 net
    assert _realised(acc, put) == 0


def test_a_put_out_of_the_money_expires_worthless(ops, xyz):
    put = _option(ops, xyz, "put", "70")
    acc = _account("ACC1", cash="0")
    _hold(acc, put, 1, "7")
    _close(xyz, "75")
    [event] = lifecycle_book(on=EXPIRY).booked
    assert event.outcome == "expired"
    assert _realised(acc, put) == D("-700.00")


def test_a_short_call_in_the_money_is_assigned_and_delivers_the_shares(ops, xyz):
    call = _option(ops, xyz, "call", "100")
    acc = _account("ACC1", cash="0")
    Position.objects.create(portfolio=acc, security=call, quantity=D(-1))  # written
    _hold(acc, xyz, 100, "55")
    _close(xyz, "115")

    [event] = lifecycle_book(on=EXPIRY).booked

    assert (event.outcome, event.quantity, event.amount) == ("assigned", -1, D("10000.00"))
    assert _position(acc, call) == 0 and _position(acc, xyz) == 0
    assert _cash(acc) == D("10000.00")
    assert _realised(acc, xyz) == D("4500.00")


@pytest.mark.parametrize(("close", "outcome"), [("100.01", "exercised"), ("100.005", "expired")])
def test_an_option_is_exercised_from_a_cent_in_the_money(ops, xyz, close, outcome):
    """OCC Rule 805(d): in the money by $0.01 or more is exercised."""
    call = _option(ops, xyz, "call", "100")
    acc = _account("ACC1")
    _hold(acc, call, 2, "1")
    _close(xyz, close)
    [event] = lifecycle_book(on=EXPIRY).booked
    assert event.outcome == outcome


def euro_call(ops):
    """EUR/USD spot and a euro call struck at 1.08 on it (125,000 euros a contract, as
    the CME's euro FX options), expiring on EXPIRY."""
    pair = reference.security_create(
        actor=ops,
        ticker="EURUSD",
        name="EUR/USD spot",
        asset_class="fx_spot",
        currency="USD",
        base_currency="EUR",
    )
    call = reference.security_create(
        actor=ops,
        ticker="EUR-C1.08",
        name="EUR call 1.08",
        asset_class="option",
        currency="USD",
        country="US",
        multiplier=D(125000),
        underlying=pair,
        option_right="call",
        strike=D("1.08"),
        expiry=EXPIRY,
    )
    return pair, call


def test_a_currency_option_settles_its_intrinsic_value_in_cash(ops):
    pair, call = euro_call(ops)
    acc = _account("ACC1", cash="0")
    _hold(acc, call, 2, "0.0050")
    Price.objects.create(security=pair, as_of=EXPIRY, price=D("1.0900"))

    [event] = lifecycle_book(on=EXPIRY).booked

    # 2 x 125,000 x (1.09 - 1.08) = 2,500; the premium paid was 2 x 125,000 x 0.005.
    assert (event.outcome, event.amount) == ("cash_settled", D("2500.00"))
    assert _cash(acc) == D("2500.00")
    assert _realised(acc, call) == D("1250.00")


def test_an_option_the_books_cannot_exercise_is_refused_and_nothing_booked(ops, treasury):
    call = reference.security_create(
        actor=ops,
        ticker="TBOND-C100",
        name="Call on a bond",
        asset_class="option",
        currency="USD",
        multiplier=D(1000),
        underlying=treasury,
        option_right="call",
        strike=D(100),
        expiry=EXPIRY,
    )
    acc = _account("ACC1")
    _hold(acc, call, 1, "1")
    Price.objects.create(security=treasury, as_of=EXPIRY, price=D(105))

    run = lifecycle_book(on=EXPIRY)

    assert run.booked == []
    [(due, reason)] = run.refused
    assert "cannot exercise an option on T 8 09/01/29, a bond" in reason
    assert _position(acc, call) == 1
    assert not LifecycleEvent.objects.exists()


def test_an_expiry_without_a_price_is_refused(ops, xyz):
    call = _option(ops, xyz, "call", "100")
    acc = _account("ACC1")
    _hold(acc, call, 1, "5")
    run = lifecycle_book(on=EXPIRY)
    [(_, reason)] = run.refused
    assert reason.startswith("No price of XYZ on 2024-06-21")
    assert _position(acc, call) == 1


# --- futures ------------------------------------------------------------------------


def test_a_future_is_closed_at_its_final_settlement_price(ops):
    gold = reference.security_create(
        actor=ops,
        ticker="GCM4",
        name="COMEX gold Jun 2024",
        asset_class="future",
        currency="USD",
        country="US",
        multiplier=D(100),
        contract_unit="100 troy ounces",
        expiry=EXPIRY,
    )
    acc = _account("ACC1", cash="0")
    _hold(acc, gold, 2, "1250")
    _close(gold, "1226.90")

    [event] = lifecycle_book(on=EXPIRY).booked

    assert (event.outcome, event.price) == ("settled", D("1226.90"))
    assert event.amount == D("245380.00")  # held fully paid: 2 x 100 x 1,226.90 back
    assert _position(acc, gold) == 0
    assert _realised(acc, gold) == D("-4620.00")  # Hull, Table 2.1
    movement = CashMovement.objects.get(portfolio=acc, reason="final_settlement")
    assert movement.value_date == date(2024, 6, 24)  # T+1


# --- the operations page and the API ------------------------------------------------


def _note_maturing_soon(ops, today):
    """A 5% annual note maturing in 15 days: its last coupon and its redemption fall due
    in the next 30."""
    from datetime import timedelta

    return reference.security_create(
        actor=ops,
        ticker="SOON",
        name="A note maturing soon",
        asset_class="bond",
        currency="USD",
        country="US",
        coupon_rate=D("0.05"),
        coupon_frequency=1,
        day_count="30/360 US",
        issue_date=today - timedelta(days=700),
        maturity=today + timedelta(days=15),
        min_quantity=D(1000),
        round_lot=D(1000),
    )


def test_operations_book_a_day_from_the_page_and_see_what_is_due(client, ops, pm, treasury):
    from datetime import timedelta

    from django.utils import timezone

    acc = _account("ACC1")
    _hold(acc, treasury, 1_000_000, "101.50", acquired=date(2020, 7, 2))
    today = timezone.now().date()
    soon = _note_maturing_soon(ops, today)
    _hold(acc, soon, 10_000, "100", acquired=today - timedelta(days=300))

    client.force_login(pm)
    page = client.get("/portfolios/lifecycle/")
    assert page.status_code == 200
    assert b"SOON" in page.content  # due in the next 30 days: its coupon and redemption
    assert b"Book the day" not in page.content  # a PM sees, does not book
    assert client.post("/portfolios/lifecycle/", {"date": "2020-09-01"}).status_code == 403

    client.force_login(ops)
    answer = client.post("/portfolios/lifecycle/", {"date": "2020-09-01"}, follow=True)
    assert b"2020-09-01: 1 event(s) booked, 0 refused." in answer.content
    assert b"40,000.00 USD" in answer.content
    refused = client.post("/portfolios/lifecycle/", {"date": "soon"}, follow=True)
    assert b"Give the day to book as YYYY-MM-DD." in refused.content
    ahead = client.post("/portfolios/lifecycle/", {"date": str(today + timedelta(days=1))})
    assert ahead.status_code == 302
    assert LifecycleEvent.objects.count() == 1


def test_the_page_costs_the_same_queries_whatever_was_booked(
    client, ops, treasury, django_assert_num_queries
):
    """Session and user, the pending and upcoming reads (no bond or contract due), the
    booked page's count and rows: 7, for one event booked or three."""
    acc = _account("ACC1")
    _hold(acc, treasury, 1_000_000, "101.50", acquired=date(2020, 7, 2))
    lifecycle_book(on=date(2020, 9, 1))
    client.force_login(ops)
    with django_assert_num_queries(7):
        assert client.get("/portfolios/lifecycle/").status_code == 200
    lifecycle_book(on=date(2021, 9, 1), since=date(2021, 3, 1))
    assert LifecycleEvent.objects.count() == 3
    with django_assert_num_queries(7):
        assert b"2021-09-01" in client.get("/portfolios/lifecycle/").content


def test_the_api_lists_the_events_of_the_accounts_you_may_see(client, ops, pm, other_pm, treasury):
    acc = _account("ACC1")
    _hold(acc, treasury, 1_000_000, "101.50", acquired=date(2020, 7, 2))
    lifecycle_book(on=date(2020, 9, 1))
    client.force_login(pm)
    rows = client.get("/api/v1/lifecycle-events/?outcome=paid").json()["results"]
    assert [(r["portfolio"], r["security"], r["event"], D(r["amount"])) for r in rows] == [
        ("ACC1", "T 8 09/01/29", "coupon", D(40000))
    ]
    assert client.get("/api/v1/lifecycle-events/?outcome=expired").json()["results"] == []
    client.force_login(other_pm)
    assert client.get("/api/v1/lifecycle-events/").json()["results"] == []


def test_beat_books_today_and_the_days_a_run_missed(ops, settings):
    """The daily task (beat, after the close) books today's events and the week's before."""
    from datetime import timedelta

    from django.utils import timezone

    from portfolios.tasks import book_lifecycle_events

    entry = settings.CELERY_BEAT_SCHEDULE["book-lifecycle-events"]
    assert entry["task"] == "portfolios.tasks.book_lifecycle_events"
    today = timezone.now().date()
    note = reference.security_create(
        actor=ops,
        ticker="DUE",
        name="A note that matured three days ago",
        asset_class="bond",
        currency="USD",
        country="US",
        coupon_rate=D("0.05"),
        coupon_frequency=1,
        day_count="30/360 US",
        issue_date=today - timedelta(days=3 + 365 * 2),
        maturity=today - timedelta(days=3),
        min_quantity=D(1000),
        round_lot=D(1000),
    )
    acc = _account("ACC1", cash="0")
    _hold(acc, note, 10_000, "100", acquired=today - timedelta(days=300))
    assert book_lifecycle_events() == 2  # its last coupon and its redemption
    assert _cash(acc) == D("10500.00")
    assert book_lifecycle_events() == 0


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_book_the_coupon_once(treasury, monkeypatch):
    """Both runs find the coupon due and plan it together (held at a barrier); the
    holding's lock makes the second wait for the first and then find it booked."""
    import contextlib
    import threading

    from django.db import connection

    from portfolios.services import lifecycle
    from tests.conftest import service_missing

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: writers at once (SQLite serialises them)")
    acc = _account("ACC1")
    _hold(acc, treasury, 1_000_000, "101.50", acquired=date(2020, 7, 2))
    cash = _cash(acc)
    real = lifecycle.lifecycle_plan
    both_planned = threading.Barrier(2, timeout=1.5)

    def plan_then_wait(due):
        plan = real(due)
        with contextlib.suppress(threading.BrokenBarrierError):
            both_planned.wait()
        return plan

    monkeypatch.setattr(lifecycle, "lifecycle_plan", plan_then_wait)
    booked: list[int] = []

    def run():
        try:
            booked.append(len(lifecycle.lifecycle_book(on=date(2020, 9, 1)).booked))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(booked) == [0, 1]
    assert LifecycleEvent.objects.count() == 1
    assert _cash(acc) - cash == D("40000.00")


def test_an_integrity_failure_that_is_not_a_duplicate_is_raised_not_dropped(treasury, monkeypatch):
    """Only a duplicate event (a concurrent run booked it first) is skipped quietly;
    any other refusal of the database is raised, not reported as nothing to book."""
    from django.db import IntegrityError

    acc1 = _account("ACC1")
    _hold(acc1, treasury, 1_000_000, "101.50", acquired=date(2020, 7, 2))

    def refuse(**kwargs):
        raise IntegrityError("a check constraint refused the row")

    monkeypatch.setattr(LifecycleEvent.objects, "create", refuse)
    with pytest.raises(IntegrityError, match="check constraint"):
        lifecycle_book(on=date(2020, 9, 1))
    assert LifecycleEvent.objects.count() == 0


def test_the_page_costs_the_same_queries_whatever_falls_due(
    client, ops, treasury, django_assert_num_queries
):
    """What is due in the next 30 days on many holdings (each account's face on the
    record date, each contract's last price) is read set-based: the page costs as many
    queries for one account holding a bond and a future as for four."""
    from datetime import timedelta

    today = timezone.now().date()
    soon = _note_maturing_soon(ops, today)
    gold = reference.security_create(
        actor=ops,
        ticker="GCSOON",
        name="Gold expiring soon",
        asset_class="future",
        currency="USD",
        country="US",
        multiplier=D(100),
        contract_unit="100 troy ounces",
        expiry=today + timedelta(days=10),
    )
    Price.objects.create(security=gold, as_of=today, price=D("2300"))

    def hold(code):
        acc = _account(code)
        _hold(acc, soon, 10_000, "100", acquired=today - timedelta(days=300))
        _hold(acc, gold, 2, "2250", acquired=today - timedelta(days=30))

    hold("ACC1")
    client.force_login(ops)
    with django_assert_num_queries(11):
        page = client.get("/portfolios/lifecycle/")
    assert page.content.count(b"SOON") >= 2  # its coupon and its redemption
    for code in ("ACC2", "ACC3", "ACC4"):
        hold(code)
    with django_assert_num_queries(11):
        page = client.get("/portfolios/lifecycle/")
    assert page.content.count(b"ACC4") == 3  # coupon, redemption, final settlement
