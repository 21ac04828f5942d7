"""FX spot and forwards on the order path, and the settlement ledger (issue 12, items 7
and 8): a fill books two cash legs on the value date and no position, trade-date cash
moves at once in both currencies, and each account's cash is shown settled and
unsettled apart (decision 41).

Figures from published references:

- Value dates: a EUR/USD spot dealt on Friday 16 June 2023 is for value Tuesday 20 June,
  not Monday 19 June, US Juneteenth (London FX value date tables, londonfx.co.uk/valdates,
  as the engine's own tests replay them).
- A pair is quoted in units of the quote currency per one unit of the base (ISO 4217
  codes, base first: EUR/USD 1.0925 is 1.0925 dollars a euro), and a forward's outright
  is spot plus forward points: 1.6000 + 5 points = 1.6005 (Association of Corporate
  Treasurers wiki, "Forward points").
- US equities settle T+1 from 28 May 2024 (SEC Rule 15c6-1 as amended, Release
  34-96930): bought on Monday 3 June 2024, they settle on Tuesday 4 June.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from portfolios import terms
from portfolios.models import CashBalance, CashMovement, Position, Price, Security, TaxLot
from portfolios.selectors import account_cash
from portfolios.services import reference
from portfolios.services.holdings import holdings_book_fill, holdings_reverse_fill
from tests.clients import api_client, page_client
from tests.desk import broker_report
from trading.models import Allocation, Block, Order
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db

D = Decimal
DEALT = date(2023, 6, 16)  # a Friday; Monday 19 June is Juneteenth, a US holiday
SPOT = date(2023, 6, 20)
FORWARD = date(2023, 9, 20)  # three months after spot, a day London and New York settle


def fx_spot(ops, ticker="EURUSD", base="EUR", quote="USD", rate="1.0925") -> Security:
    security = reference.security_create(
        actor=ops,
        ticker=ticker,
        name=f"{base}/{quote} spot",
        asset_class="fx_spot",
        currency=quote,
        base_currency=base,
        tick_size=D("0.0001"),
        min_quantity=D("0.01"),
        fractional=True,
    )
    Price.objects.create(security=security, as_of=timezone.localdate(), price=D(rate))
    return security


def fx_forward(ops, value_date, ticker="GBPUSD-FWD", rate="1.6005") -> Security:
    security = reference.security_create(
        actor=ops,
        ticker=ticker,
        name="GBP/USD outright",
        asset_class="fx_forward",
        currency="USD",
        base_currency="GBP",
        value_date=value_date,
        tick_size=D("0.0001"),
        min_quantity=D("0.01"),
        fractional=True,
    )
    Price.objects.create(security=security, as_of=timezone.localdate(), price=D(rate))
    return security


def _cash(account, currency):
    row = CashBalance.objects.filter(portfolio=account, currency=currency).first()
    return row.amount if row else D(0)


def _lines(account, on):
    return {line.currency: line for line in account_cash(account, on)}


# --- 1. Booking: two legs on the value date, no position ----------------------------------


def test_an_fx_spot_buy_books_both_legs_for_the_spot_date_and_no_position(ops, book):
    eurusd = fx_spot(ops)
    account = book["accounts"][0]
    usd = _cash(account, "USD")
    holdings_book_fill(
        portfolio=account,
        security=eurusd,
        buying=True,
        quantity=D(1_000_000),
        price=D("1.0925"),
        on_date=DEALT,
        allocation_id=9001,
    )
    legs = {
        (m.currency, m.amount, m.value_date, m.reason)
        for m in CashMovement.objects.filter(allocation_id=9001)
    }
    assert legs == {
        ("EUR", D(1_000_000), SPOT, "fx_leg"),
        ("USD", D(-1_092_500), SPOT, "fx_leg"),  # 1,000,000 x 1.0925 dollars a euro
    }
    assert _cash(account, "EUR") == D(1_000_000)  # trade-date cash moves at once
    assert _cash(account, "USD") == usd - D(1_092_500)
    assert not Position.objects.filter(security=eurusd).exists()
    assert not TaxLot.objects.filter(security=eurusd).exists()


def test_an_fx_forward_sell_books_its_legs_on_its_value_date(ops, book):
    cable = fx_forward(ops, FORWARD)
    outright = terms.instrument_of(cable).outright_rate("1.6000", 5)
    assert outright == D("1.6005")  # ACT wiki, "Forward points"
    account = book["accounts"][0]
    holdings_book_fill(
        portfolio=account,
        security=cable,
        buying=False,
        quantity=D(500_000),
        price=outright,
        on_date=DEALT,
        commission=D(25),
        allocation_id=9002,
    )
    legs = sorted(
        (m.currency, m.amount, m.value_date, m.reason)
        for m in CashMovement.objects.filter(allocation_id=9002)
    )
    assert legs == [
        ("GBP", D(-500_000), FORWARD, "fx_leg"),
        ("USD", D(-25), FORWARD, "commission"),
        ("USD", D(800_250), FORWARD, "fx_leg"),  # 500,000 x 1.6005
    ]
    assert _cash(account, "GBP") == D(-500_000)


def test_a_forward_booked_after_its_value_date_is_refused_and_nothing_moves(ops, book):
    cable = fx_forward(ops, FORWARD)
    account = book["accounts"][0]
    usd = _cash(account, "USD")
    with pytest.raises(ValueError, match="cannot be traded on 2023-09-21"):
        holdings_book_fill(
            portfolio=account,
            security=cable,
            buying=True,
            quantity=D(1000),
            price=D("1.6"),
            on_date=FORWARD + timedelta(days=1),
        )
    assert _cash(account, "USD") == usd and not CashMovement.objects.exists()


# --- 2. Settled and unsettled ---------------------------------------------------------------


def test_cash_is_unsettled_until_the_value_date_and_settled_on_it(ops, book):
    eurusd = fx_spot(ops)
    account = book["accounts"][0]
    usd = _cash(account, "USD")
    holdings_book_fill(
        portfolio=account,
        security=eurusd,
        buying=True,
        quantity=D(1_000_000),
        price=D("1.0925"),
        on_date=DEALT,
    )
    before = _lines(account, on=date(2023, 6, 19))
    assert (before["EUR"].amount, before["EUR"].settled, before["EUR"].unsettled) == (
        D(1_000_000),
        D(0),
        D(1_000_000),
    )
    assert before["USD"].settled == usd  # the dollars have not left yet
    assert before["USD"].unsettled == D(-1_092_500)
    assert before["USD"].next_value_date == SPOT
    on = _lines(account, on=SPOT)
    assert on["EUR"].settled == D(1_000_000) and on["EUR"].unsettled == 0
    assert on["USD"].settled == usd - D(1_092_500) and on["USD"].next_value_date is None


def test_an_equity_buy_is_unsettled_until_t_plus_one(book):
    account, aaa = book["accounts"][0], book["securities"]["AAA"]
    usd = _cash(account, "USD")
    holdings_book_fill(
        portfolio=account,
        security=aaa,
        buying=True,
        quantity=D(100),
        price=D(100),
        on_date=date(2024, 6, 3),
        commission=D(5),
    )
    [movement] = CashMovement.objects.all()
    assert (movement.amount, movement.value_date) == (D(-10_005), date(2024, 6, 4))
    dealt = _lines(account, on=date(2024, 6, 3))["USD"]
    assert (dealt.amount, dealt.settled, dealt.unsettled) == (usd - 10_005, usd, D(-10_005))
    assert _lines(account, on=date(2024, 6, 4))["USD"].settled == usd - 10_005


# --- 3. A bust reverses the movements --------------------------------------------------------


def test_a_bust_offsets_each_leg_with_a_reversing_row_and_puts_the_cash_back(ops, book):
    eurusd = fx_spot(ops)
    account = book["accounts"][0]
    usd = _cash(account, "USD")
    kwargs = {
        "portfolio": account,
        "security": eurusd,
        "buying": True,
        "quantity": D(250_000),
        "price": D("1.0925"),
        "allocation_id": 9003,
    }
    holdings_book_fill(**kwargs, on_date=DEALT)
    reversed_ = holdings_reverse_fill(**kwargs, on_date=DEALT)
    assert reversed_["after"]["cash"] == {"EUR": D(0), "USD": usd}
    rows = list(CashMovement.objects.filter(allocation_id=9003).order_by("pk"))
    assert len(rows) == 4
    originals, reversing = rows[:2], rows[2:]
    assert {r.reverses_id for r in reversing} == {r.pk for r in originals}
    assert sorted(r.amount for r in reversing) == sorted(-r.amount for r in originals)
    assert all(r.value_date == SPOT for r in rows)
    assert _lines(account, on=date(2023, 6, 19))["USD"].unsettled == 0
    # a second bust finds nothing left to offset
    holdings_reverse_fill(**kwargs, on_date=DEALT)
    assert CashMovement.objects.filter(allocation_id=9003).count() == 4


def test_a_bust_of_a_share_sale_offsets_its_movement_too(book):
    account, aaa = book["accounts"][0], book["securities"]["AAA"]
    kwargs = {
        "portfolio": account,
        "security": aaa,
        "buying": False,
        "quantity": D(10),
        "price": D(100),
        "allocation_id": 9004,
        "on_date": date(2024, 6, 3),
    }
    holdings_book_fill(**kwargs)
    holdings_reverse_fill(**kwargs)
    amounts = list(
        CashMovement.objects.filter(allocation_id=9004).order_by("pk").values_list("amount")
    )
    assert amounts == [(D(1000),), (D(-1000),)]


# --- 4. The order path, filled by the simulated broker, allocated ---------------------------


def _order(pm, account, security, **terms_):
    order = order_services.order_create(actor=pm, portfolio=account, security=security, **terms_)
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    return order


def test_an_fx_spot_order_is_blocked_routed_filled_and_allocated_in_two_currencies(
    ops, pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    eurusd = fx_spot(ops)
    account = book["accounts"][0]
    usd = _cash(account, "USD")
    order = _order(pm, account, eurusd, side="buy", quantity=D("10000.50"))
    assert order.block.security == eurusd
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_create(actor=trader, block_id=order.block_id, broker=book["broker"])
    order.refresh_from_db()
    assert order.status == Order.Status.ALLOCATED
    assert Block.objects.get(pk=order.block_id).status == Block.Status.ALLOCATED
    allocation = Allocation.objects.get(order=order)
    assert allocation.price == D("1.0925")
    assert allocation.gross_amount == D("10925.55")  # the dollar leg
    today = timezone.localdate()
    value_date = terms.settlement_date(eurusd, today)
    assert value_date > today  # spot: two days, weekends and holidays skipped
    legs = {
        (m.currency, m.amount, m.value_date)
        for m in CashMovement.objects.filter(allocation_id=allocation.pk)
    }
    # 10,000.50 x 1.0925 = 10,925.54625 dollars, paid to the cent
    assert legs == {("EUR", D("10000.50"), value_date), ("USD", D("-10925.55"), value_date)}
    assert _cash(account, "EUR") == D("10000.50")
    assert _cash(account, "USD") == usd - D("10925.55")
    assert not Position.objects.filter(security=eurusd).exists()
    cash = _lines(account, on=today)
    assert cash["EUR"].settled == 0 and cash["EUR"].unsettled == D("10000.50")


def test_the_account_page_and_the_api_show_settled_and_unsettled_cash(ops, pm, book):
    eurusd = fx_spot(ops)
    account = book["accounts"][0]
    usd = _cash(account, "USD")
    holdings_book_fill(
        portfolio=account,
        security=eurusd,
        buying=True,
        quantity=D(1000),
        price=D("1.0925"),
        on_date=timezone.localdate(),
    )
    page = page_client(pm).get(reverse("portfolios:portfolio-detail", args=[account.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-col="settled"' in html and 'data-col="unsettled"' in html
    assert "-1,092.50" in html  # the dollars still to pay
    client = api_client(pm)
    body = client.get(f"/api/v1/portfolios/{account.pk}/").json()
    cash = {line["currency"]: line for line in body["cash"]}
    assert cash["EUR"]["amount"] == "1000.0000" and cash["EUR"]["settled"] == "0.0000"
    assert cash["EUR"]["unsettled"] == "1000.0000"
    assert cash["USD"]["settled"] == f"{usd:.4f}"
    assert cash["USD"]["next_value_date"] == str(
        terms.settlement_date(eurusd, timezone.localdate())
    )
    listed = client.get("/api/v1/portfolios/").json()["results"]
    [row] = [r for r in listed if r["id"] == account.pk]
    assert {line["currency"]: line["unsettled"] for line in row["cash"]}["USD"] == "-1092.5000"


# --- 5. Bad input ----------------------------------------------------------------------------


def test_an_fx_order_with_a_non_positive_rate_is_refused_in_the_pairs_words(ops, pm, book):
    eurusd = fx_spot(ops)
    for rate in (D(0), D("-1.0925")):
        with pytest.raises(ValidationError) as refused:
            order_services.order_create(
                actor=pm,
                portfolio=book["accounts"][0],
                security=eurusd,
                side="buy",
                quantity=D(1000),
                order_type="limit",
                limit_price=rate,
            )
        assert refused.value.message_dict["limit_price"] == [
            "The rate is USD per EUR: it must be positive."
        ]
    assert not Order.objects.exists()


def test_the_api_refuses_a_non_positive_rate_and_a_forward_past_its_value_date(ops, pm, book):
    fx_spot(ops)
    fx_forward(ops, timezone.localdate() - timedelta(days=1))
    client = api_client(pm)
    order = {"portfolio": "ACC1", "side": "buy", "quantity": "1000"}
    response = client.post(
        "/api/v1/orders/",
        order | {"security": "EURUSD", "order_type": "limit", "limit_price": "-1.09"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["limit_price"] == ["The rate is USD per EUR: it must be positive."]
    response = client.post("/api/v1/orders/", order | {"security": "GBPUSD-FWD"}, format="json")
    assert response.status_code == 400, response.content
    [message] = response.json()["security"]
    assert "is for value" in message and "cannot be traded on" in message
    assert not Order.objects.exists()


def test_an_fx_amount_finer_than_the_base_currencys_cent_or_a_short_sale_is_refused(ops, pm, book):
    eurusd = fx_spot(ops)
    with pytest.raises(ValidationError) as refused:
        order_services.order_create(
            actor=pm,
            portfolio=book["accounts"][0],
            security=eurusd,
            side="sell_short",
            quantity=D("1000.005"),
        )
    errors = refused.value.message_dict
    assert errors["side"] == ["EURUSD is bought or sold: a currency is not shorted."]
    assert "1000.005" in errors["quantity"][0] or "EUR" in errors["quantity"][0]


def test_an_fx_sell_needs_no_position_in_the_pair(ops, pm, book):
    eurusd = fx_spot(ops)
    order = order_services.order_create(
        actor=pm, portfolio=book["accounts"][0], security=eurusd, side="sell", quantity=D(5000)
    )
    assert order.status == Order.Status.DRAFT


# --- 6. A forward's value until its value date ------------------------------------------------


def _eurusd_three_months(ops, today) -> Security:
    """A EUR/USD outright for three months on (a day both settle), priced 1.1045 today."""
    from portfolios.instruments import joint_calendar

    both = joint_calendar(terms.currency_calendar("EUR"), terms.currency_calendar("USD"))
    forward = reference.security_create(
        actor=ops,
        ticker="EURUSD-3M",
        name="EUR/USD outright",
        asset_class="fx_forward",
        currency="USD",
        base_currency="EUR",
        value_date=both.roll(today + timedelta(days=91)),
        tick_size=D("0.0001"),
        min_quantity=D("0.01"),
        fractional=True,
    )
    Price.objects.create(security=forward, as_of=today, price=D("1.1045"))
    return forward


def test_an_open_forward_is_worth_its_legs_at_spot_plus_its_forward_points(ops, pm, book):
    """Bought 100,000 EUR forward at 1.1000; the outright for its date is now 1.1045 and
    spot 1.1000 (the book's EUR/USD rate): the engine values it at 100,000 x (1.1045 -
    1.1000) = 450 dollars. The legs (+100,000 EUR, -110,000 USD) are cash worth 0 at spot;
    the forward adds its points, 450, so the firm's figures match the engine's."""
    from portfolios.valuation import book_valuation

    today = timezone.localdate()
    forward = _eurusd_three_months(ops, today)
    account = book["accounts"][0]
    before = book_valuation([account.pk]).totals("account")[0]
    holdings_book_fill(
        portfolio=account,
        security=forward,
        buying=True,
        quantity=D(100_000),
        price=D("1.1000"),
        on_date=today,
    )
    engine = terms.instrument_of(forward).value(D(100_000), D("1.1045"), cost=D(110_000))
    assert engine.market_value == D(450)
    after = book_valuation([account.pk]).totals("account")[0]
    assert after["nav"] - before["nav"] == D(450)
    assert after["cash"] == before["cash"]  # the legs at spot: +110,000 - 110,000
    assert after["unrealised_pnl"] - before["unrealised_pnl"] == D(450)
    exposure = {
        r["key"]: r["market_value"] for r in book_valuation([account.pk]).exposure("currency")
    }
    assert exposure["EUR"] == D(110_000)  # the euros bought, at spot
    # the account page lists it with the engine's value
    page = page_client(pm).get(reverse("portfolios:portfolio-detail", args=[account.pk]))
    [shown] = page.context["open_forwards"]
    assert (shown.quantity, shown.contract_rate, shown.value) == (D(100_000), D("1.1"), D(450))
    assert 'id="fx-forwards"' in page.content.decode()
    # and its value card counts the points beside the legs, as the firm's figures do
    assert shown.points_base == D(450)
    assert page.context["forward_points"] == D(450)
    legs_at_spot = D(str(page.context["account"]["value"]))
    assert page.context["account_value"] == legs_at_spot + D(450)
    assert "incl. FX forward points 450.00" in page.content.decode()


def test_the_value_card_adds_the_points_at_the_rates_its_stored_value_was_converted_at(
    ops, pm, book
):
    """The card is the stored drift's value (converted at the daily FX table when the
    drift was refreshed) plus the open forwards' points: both at those rates, even when
    the live spot has moved since. A GBP account holding 100,000 EUR bought forward at
    1.1000 against 110,000 USD: with the table's EUR/USD at 1.1000 and GBP/USD at 1.25,
    the legs are worth 0 and the points 100,000 x (1.1045 - 1.1000) = 450 USD, 360 GBP;
    a live EUR/USD of 1.1030 (which would give 150 USD of points, 120 GBP) changes
    neither."""
    from portfolios.models import FxRate, Portfolio, PriceBar
    from portfolios.services.drift import drift_refresh

    today = timezone.localdate()
    now = timezone.now()
    forward = _eurusd_three_months(ops, today)
    FxRate.objects.update_or_create(
        currency="EUR", quote="USD", as_of=today, defaults={"rate": D("1.1000")}
    )
    FxRate.objects.update_or_create(
        currency="GBP", quote="USD", as_of=today, defaults={"rate": D("1.25")}
    )
    account = book["accounts"][0]
    Portfolio.objects.filter(pk=account.pk).update(base_currency="GBP")
    account.refresh_from_db()
    holdings_book_fill(
        portfolio=account,
        security=forward,
        buying=True,
        quantity=D(100_000),
        price=D("1.1000"),
        on_date=today,
    )
    drift_refresh(portfolio_ids=[account.pk])
    PriceBar.objects.create(
        symbol="EUR/USD", start=now - timedelta(seconds=30), seconds=60, open=D("1.1030"),
        high=D("1.1030"), low=D("1.1030"), close=D("1.1030"), first_at=now - timedelta(seconds=5),
        last_at=now - timedelta(seconds=5),
    )  # fmt: skip
    page = page_client(pm).get(reverse("portfolios:portfolio-detail", args=[account.pk]))
    stored = D(str(page.context["account"]["value"]))
    assert page.context["forward_points"] == D(360)
    assert page.context["account_value"] == stored + D(360)
    [shown] = page.context["open_forwards"]
    assert shown.value == D(450)  # the engine's value, in dollars, as before


def test_the_order_ticket_shows_a_bad_rate_and_a_past_forward_on_their_fields(ops, pm, book):
    eurusd = fx_spot(ops)
    past = fx_forward(ops, timezone.localdate() - timedelta(days=1))
    client = page_client(pm)
    ticket = {"portfolio": book["accounts"][0].pk, "side": "buy", "quantity": "1000"}
    response = client.post(
        reverse("trading:order-create"),
        ticket
        | {
            "security": eurusd.pk,
            "order_type": "limit",
            "limit_price": "0",
            "time_in_force": "day",
        },
    )
    assert response.status_code == 422
    form = response.context["form"]
    assert form.errors["limit_price"] == ["The rate is USD per EUR: it must be positive."]
    response = client.post(
        reverse("trading:order-create"),
        ticket | {"security": past.pk, "order_type": "market", "time_in_force": "day"},
    )
    assert response.status_code == 422
    assert "cannot be traded on" in response.context["form"].errors["security"][0]
    assert not Order.objects.exists()


def test_a_broker_bust_of_an_fx_fill_offsets_its_legs_and_rebooks_the_rest(
    ops, pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    """Bought 20,000 EUR over FIX in two fills of 10,000 (F1 at 1.0900, F2 at 1.0950),
    allocated at 1.0925; the broker busts F2: the legs at 1.0925 are offset and 10,000
    EUR are booked again at 1.0900 (10,900 dollars), on the same value date."""
    from tests.trading.test_breaks import _kept
    from trading.models import Broker, FixSession
    from trading.services import breaks as break_services
    from trading.services import executions as execution_services

    eurusd = fx_spot(ops)
    account = book["accounts"][0]
    usd = _cash(account, "USD")
    broker = Broker.objects.create(code="FIXB", name="FIX broker", adapter=Broker.Adapter.FIX)
    session = FixSession.objects.create(
        broker=broker, sender_comp_id="OMS", target_comp_id="BROKER", port=1
    )
    order = _order(pm, account, eurusd, side="buy", quantity=D(20_000))
    with django_capture_on_commit_callbacks(execute=True):
        route = route_services.route_create(actor=trader, block_id=order.block_id, broker=broker)
    with django_capture_on_commit_callbacks(execute=True):
        for exec_id, rate, status in (
            ("F1", "1.09", "partially_filled"),
            ("F2", "1.095", "filled"),
        ):
            execution_services.execution_apply(
                broker_report(route, exec_id, "trade", status, last=10_000, price=rate)
            )
    assert _cash(account, "USD") == usd - D(21_850)  # 20,000 x 1.0925
    inbox = _kept(
        {"route": route, "session": session}, {150: "H", 19: "F2", 32: "10000", 31: "1.095"}
    )
    break_services.correction_apply(actor=ops, inbox_id=inbox.pk)
    assert _cash(account, "EUR") == D(10_000)
    assert _cash(account, "USD") == usd - D(10_900)
    rows = CashMovement.objects.filter(security=eurusd).order_by("pk")
    assert [(r.currency, r.amount, r.reverses_id is not None) for r in rows] == [
        ("EUR", D(20_000), False),
        ("USD", D(-21_850), False),
        ("EUR", D(-20_000), True),
        ("USD", D(21_850), True),
        ("EUR", D(10_000), False),
        ("USD", D(-10_900), False),
    ]
    assert len({r.value_date for r in rows}) == 1
    assert not Position.objects.filter(security=eurusd).exists()


def test_a_forward_past_its_value_date_is_not_routed_and_its_working_route_still_has_a_ticket(
    ops, pm, trader, book
):
    """A forward ordered before its value date, whose date has passed by the time it is
    routed, is refused in words; a route already with the broker keeps its SettlDate (the
    contract's value date) so that it can still be cancelled or looked up."""
    from portfolios.instruments import joint_calendar

    today = timezone.localdate()
    both = joint_calendar(terms.currency_calendar("GBP"), terms.currency_calendar("USD"))
    cable = fx_forward(ops, both.roll(today + timedelta(days=30)))
    order = _order(pm, book["accounts"][0], cable, side="buy", quantity=D(1000))
    route = route_services.route_create(
        actor=trader, block_id=order.block_id, broker=book["broker"], quantity=D(400)
    )
    past = today - timedelta(days=1)
    Security.objects.filter(pk=cable.pk).update(value_date=past)  # the days go by
    route.block.security.refresh_from_db()
    fields = dict(route_services.route_ticket(route).instrument_fields)
    assert fields[64] == past.strftime("%Y%m%d")
    with pytest.raises(ValidationError) as refused:
        route_services.route_create(actor=trader, block_id=order.block_id, broker=book["broker"])
    assert "cannot be traded" in str(refused.value.message_dict)
