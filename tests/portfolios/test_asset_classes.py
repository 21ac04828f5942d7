"""Asset classes on the order path (issue 12, item 7): a security's instrument terms in
the database, the one definition of a unit's value (portfolios.terms.unit_value) on every
site that values a position or an order, and bond, future and option fills booked and
allocated by their own rules.

The figures are from published references, named where they are used:

- Hull, *Options, Futures, and Other Derivatives* (ch. 6, "Day count conventions"): a
  bond paying 8% a year semi-annually on 1 March and 1 September earns, from 1 March to
  3 July, 124/184 x 4 = 2.6957 per 100 under actual/actual and 122/180 x 4 = 2.7111
  under 30/360.
- ISDA 2006 Definitions, Section 4.16(e), Actual/360: the actual days over 360. The bond
  of the site tests pays 6% ACT/360 and was issued 60 days before today, so 100,000 face
  has accrued 100,000 x 0.06 x 60 / 360 = 1,000.00; at 99.5 it is worth 99,500 + 1,000.
- CME Group, NYMEX Light Sweet Crude Oil (CL) contract specifications: 1,000 barrels a
  contract, a price in US dollars per barrel: one contract at 75.00 is 75,000 dollars.
- Options Industry Council / OCC: a US equity option covers 100 shares; a premium quoted
  at 4.00 costs 400 dollars a contract.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pandas as pd
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from compliance.services import rules as rule_services
from portfolios import terms
from portfolios.models import CashBalance, ModelTarget, Position, Price, Security, TaxLot
from portfolios.quotes import positions_valued
from portfolios.rebalance import compute_drift
from portfolios.selectors import load_book
from portfolios.services import reference
from trading.brokers import fixmap
from trading.models import Allocation, Order
from trading.services import orders as order_services
from trading.services import routes as route_services
from trading.services.allocations import allocation_split

pytestmark = pytest.mark.django_db

D = Decimal
FACE = D(100_000)


def _bond_terms(**overrides) -> dict:
    today = timezone.now().date()
    issued = today - timedelta(days=60)
    return {
        "name": "Acme 6% 5-year note",
        "asset_class": "bond",
        "currency": "USD",
        "country": "US",
        "issuer": "Acme",
        "coupon_rate": D("0.06"),
        "coupon_frequency": 2,
        "day_count": "ACT/360",
        "issue_date": issued,
        "maturity": date(issued.year + 5, issued.month, min(issued.day, 28)),
        "min_quantity": D(1000),
        "round_lot": D(1000),
    } | overrides


def _bond(ops, ticker="ACME6", price="99.5", **overrides) -> Security:
    security = reference.security_create(actor=ops, ticker=ticker, **_bond_terms(**overrides))
    Price.objects.create(security=security, as_of=timezone.now().date(), price=D(price))
    return security


def _crude(ops, price="75.00") -> Security:
    security = reference.security_create(
        actor=ops,
        ticker="CLZ7",
        name="NYMEX WTI crude oil Dec 2027",
        asset_class="future",
        currency="USD",
        country="US",
        multiplier=D(1000),
        contract_unit="1,000 barrels",
        expiry=timezone.now().date() + timedelta(days=300),
    )
    Price.objects.create(security=security, as_of=timezone.now().date(), price=D(price))
    return security


def _call(ops, underlying, price="4.00") -> Security:
    security = reference.security_create(
        actor=ops,
        ticker="AAA-C100",
        name="AAA call 100",
        asset_class="option",
        currency="USD",
        country="US",
        multiplier=D(100),
        underlying=underlying,
        option_right="call",
        strike=D(100),
        expiry=timezone.now().date() + timedelta(days=90),
    )
    Price.objects.create(security=security, as_of=timezone.now().date(), price=D(price))
    return security


def _hold(account, security, quantity, unit_cost):
    Position.objects.create(portfolio=account, security=security, quantity=quantity)
    TaxLot.objects.create(
        portfolio=account,
        security=security,
        quantity=quantity,
        original_quantity=quantity,
        unit_cost=unit_cost,
        acquired_on=timezone.now().date() - timedelta(days=10),
    )


# --- 1. Terms in the database ------------------------------------------------------------


def test_a_bond_without_a_maturity_is_refused_with_the_field_named(ops):
    with pytest.raises(ValidationError) as caught:
        reference.security_create(actor=ops, ticker="NOMAT", **_bond_terms(maturity=None))
    assert caught.value.message_dict["maturity"] == ["A bond needs its maturity."]
    assert not Security.objects.filter(ticker="NOMAT").exists()


def test_an_option_without_a_strike_is_refused(ops, book):
    with pytest.raises(ValidationError) as caught:
        reference.security_create(
            actor=ops,
            ticker="AAA-C",
            name="AAA call",
            asset_class="option",
            currency="USD",
            multiplier=D(100),
            underlying=book["securities"]["AAA"],
            option_right="call",
            expiry=timezone.now().date() + timedelta(days=30),
        )
    assert caught.value.message_dict == {"strike": ["An option needs its strike."]}


def test_an_option_in_another_currency_than_its_underlying_is_refused(ops, book):
    """Its exercise books the underlying at the strike in one currency: a quanto option
    would only be refused at expiry ("book its exercise by hand"), so it is refused here."""
    with pytest.raises(ValidationError) as caught:
        reference.security_create(
            actor=ops,
            ticker="AAA-EUR-C",
            name="AAA call in euros",
            asset_class="option",
            currency="EUR",
            multiplier=D(100),
            underlying=book["securities"]["AAA"],
            option_right="call",
            strike=D(100),
            expiry=timezone.now().date() + timedelta(days=30),
        )
    assert caught.value.message_dict == {
        "currency": ["An option on AAA is in its currency, USD, not EUR."]
    }
    assert not Security.objects.filter(ticker="AAA-EUR-C").exists()


def test_terms_of_another_kind_and_a_wrong_bond_multiplier_are_refused(ops):
    with pytest.raises(ValidationError) as caught:
        reference.security_create(
            actor=ops, ticker="EQ", name="Equity", asset_class="equity", currency="USD",
            maturity=date(2030, 1, 1),
        )  # fmt: skip
    assert caught.value.message_dict["maturity"] == ["Only for bonds."]
    with pytest.raises(ValidationError) as caught:
        reference.security_create(actor=ops, ticker="B5", **_bond_terms(multiplier=D(5)))
    assert "0.01" in caught.value.message_dict["multiplier"][0]


def test_the_engine_refuses_terms_that_do_not_make_a_bond(ops):
    today = timezone.now().date()
    with pytest.raises(ValidationError) as caught:
        reference.security_create(
            actor=ops, ticker="BAD", **_bond_terms(issue_date=today, maturity=today)
        )
    assert "issue date must be before the maturity" in str(caught.value)


def test_a_bond_is_stored_at_a_multiplier_of_one_hundredth(ops):
    bond = _bond(ops)
    bond.refresh_from_db()
    assert bond.multiplier == D("0.01")
    instrument = terms.instrument_of(bond)
    assert (instrument.kind, instrument.min_piece, instrument.increment) == (
        "bond",
        D(1000),
        D(1000),
    )


def test_the_api_takes_and_refuses_instrument_terms(ops, client):
    client.force_login(ops)
    body = {
        "ticker": "API6",
        "name": "Api 6%",
        "asset_class": "bond",
        "currency": "USD",
        "coupon_rate": "0.06",
        "coupon_frequency": 2,
        "day_count": "30/360 US",
        "issue_date": "2024-01-15",
    }
    response = client.post("/api/v1/securities/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["maturity"] == ["A bond needs its maturity."]
    body["maturity"] = "2029-01-15"
    response = client.post("/api/v1/securities/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["multiplier"] == "0.010000"
    assert response.json()["day_count"] == "30/360 US"


# --- Reference figures through the adapter ---------------------------------------------


@pytest.mark.parametrize(
    ("day_count", "per_100"), [("ACT/ACT ICMA", "2.6957"), ("30/360 US", "2.7111")]
)
def test_accrued_interest_is_hulls_worked_example(day_count, per_100):
    # Hull, ch. 6: 8% a year, coupons on 1 March and 1 September, 1 March to 3 July.
    bond = Security(
        ticker="HULL8",
        asset_class="bond",
        currency="USD",
        government=day_count.startswith("ACT"),
        coupon_rate=D("0.08"),
        coupon_frequency=2,
        day_count=day_count,
        issue_date=date(2019, 3, 1),
        maturity=date(2029, 9, 1),
    )
    assert terms.terms_errors(bond) == {}
    accrued = terms.accrued_per_unit(bond, date(2020, 7, 3)) * 100
    assert accrued.quantize(D("0.0001")) == D(per_100)
    # a unit of face at 99.5 clean: 0.995 plus the accrued interest per unit
    assert terms.unit_value(bond, D("99.5"), date(2020, 7, 3)) == D("0.995") + accrued / 100


def test_a_crude_oil_contract_is_worth_a_thousand_barrels(ops):
    # CME Group, NYMEX CL: 1,000 barrels, quoted in dollars a barrel.
    crude = _crude(ops)
    assert terms.unit_value(crude, D("75.00"), timezone.now().date()) == D(75_000)


def test_an_equity_option_covers_a_hundred_shares(ops, book):
    # Options Industry Council: a 4.00 premium costs 400 dollars a contract.
    call = _call(ops, book["securities"]["AAA"])
    assert terms.unit_value(call, D("4.00"), timezone.now().date()) == D(400)
    assert terms.instrument_of(call).strike_notional(1) == D(10_000)


# --- 2. One value per unit, everywhere -----------------------------------------------------


def test_the_account_page_values_the_bond_with_its_accrued_interest(ops, book):
    account = book["accounts"][0]
    _hold(account, _bond(ops), FACE, D("99.0"))
    [row] = [r for r in positions_valued(account)["rows"] if r.security.ticker == "ACME6"]
    assert row.value == D("100500.00")  # 99,500 clean + 1,000 accrued (ACT/360, 60 days)
    assert row.cost_value == D("99000.00")
    assert row.unrealised == D("500.00")  # on the clean price: accrued is income


def test_the_firm_totals_value_the_bond_as_its_account_page_does(ops, book):
    """The exposure view's valuation counted a bond at its clean value (face x price /
    100) while the account page added the accrued interest: the firm's NAV was not the
    sum of the account pages."""
    from portfolios.valuation import book_valuation

    account = book["accounts"][0]
    _hold(account, _bond(ops), FACE, D("99.0"))
    valuation = book_valuation([account.pk])
    bond = valuation.positions[valuation.positions["ticker"] == "ACME6"].iloc[0]
    assert bond["value"] == pytest.approx(100_500.0)  # 99,500 clean + 1,000 accrued
    page = positions_valued(account)
    [row] = valuation.totals("account")
    assert row["market_value"] == sum(r.value for r in page["rows"])
    [by_class] = [r for r in valuation.exposure("asset_class") if r["label"] == "Bond"]
    assert by_class["market_value"] == D("100500.00")


def test_the_account_page_shows_a_future_and_an_option_at_their_multipliers(ops, book):
    account = book["accounts"][0]
    _hold(account, _crude(ops), D(2), D("70.00"))
    _hold(account, _call(ops, book["securities"]["AAA"]), D(3), D("3.00"))
    rows = {r.security.ticker: r for r in positions_valued(account)["rows"]}
    assert rows["CLZ7"].value == D("150000.00")
    assert rows["CLZ7"].unrealised == D("10000.00")
    assert rows["AAA-C100"].value == D("1200.00")
    assert rows["AAA-C100"].unrealised == D("300.00")


def test_drift_and_the_rebalancer_see_a_unit_of_face_at_its_dirty_value(ops, book):
    account = book["accounts"][0]
    bond = _bond(ops)
    _hold(account, bond, FACE, D("99.0"))
    frames = load_book([account.pk]).book
    row = frames.securities.set_index("security").loc[bond.pk]
    assert row["price"] == pytest.approx(1.005)
    assert row["quote"] == pytest.approx(99.5)
    positions = compute_drift(frames).positions
    value = positions.set_index("security").loc[bond.pk, "value"]
    assert value == pytest.approx(100_500)
    lots = frames.lots[frames.lots["security"] == bond.pk]
    # the lot's cost (99,000 clean) carries today's accrued interest (1,000), as the
    # unit price does: the engine's gain is then the clean gain the books realise
    assert lots["cost"].sum() == pytest.approx(99_000 + 1_000)


def test_the_rebalancer_estimates_a_bonds_gain_on_the_clean_price_as_it_is_booked(ops, book):
    """The engine priced a unit of face with its accrued interest but costed the lot
    without it, so it estimated 1,000 of gain (the accrued interest) on a bond sold at
    what it cost, where the books realise nothing; a gains cap of 0 then refused a sale
    that realises nothing."""
    from portfolios.models import LotClosing
    from portfolios.rebalance import Options, raise_cash
    from portfolios.selectors import load_book
    from portfolios.services.holdings import holdings_book_fill

    account = book["accounts"][0]
    bond = _bond(ops, price="99.5")
    _hold(account, bond, FACE, D("99.5"))  # bought at the price it is at now
    frames = load_book([account.pk]).book
    lots = frames.lots[frames.lots["security"] == bond.pk]
    unit = frames.securities.set_index("security").loc[bond.pk, "price"]
    assert float(FACE) * unit - lots["cost"].sum() == pytest.approx(0.0, abs=1e-6)
    # raising cash by selling it realises nothing, so a cap of 0 does not stop it
    frames.accounts["cash_need"] = 90_000.0
    frames.restrictions = pd.DataFrame(
        [
            {"account": account.pk, "security": s, "restriction": "do_not_sell"}
            for s in frames.securities["security"]
            if s != bond.pk
        ]
    )
    result = raise_cash(frames, Options(gains_cap=0.0))
    assert result.skipped_reasons() == {}
    assert result.accounts.set_index("account").loc[account.pk, "realised_gain"] == (
        pytest.approx(0.0, abs=1e-6)
    )
    holdings_book_fill(
        portfolio=account, security=bond, buying=False, quantity=FACE, price=D("99.5"),
        on_date=timezone.now().date(), allocation_id=None,
    )  # fmt: skip
    assert [c.realised_gain for c in LotClosing.objects.all()] == [D("0.00")]


def test_a_run_buys_the_bond_in_face_value_in_whole_increments(ops, pm, book):
    from orchestration.services import rebalance_run_create, rebalance_run_execute

    account = book["accounts"][0]
    bond = _bond(ops, min_quantity=D(5000), round_lot=D(1000))
    ModelTarget.objects.filter(model=book["model"], security__ticker="DDD").delete()
    ModelTarget.objects.create(model=book["model"], security=bond, weight=D("0.10"))
    run = rebalance_run_create(actor=pm, portfolios=[account])
    rebalance_run_execute(run_id=run.pk)
    [order] = Order.objects.filter(rebalance_run=run, security=bond)
    # ACC1 is worth 90,000: 10% is 9,000, 8,955.22 of face at 1.005 a unit of face,
    # bought in whole thousands: 8,000 (9,000 would overshoot the target weight).
    assert order.side == "buy"
    assert order.quantity % 1000 == 0 and order.quantity >= 5000
    assert order.quantity == D(8000) or order.quantity == D(9000)
    assert order.estimated_price == D("99.5")


def test_compliance_values_a_bond_order_with_its_accrued_interest(
    ops, pm, compliance_officer, book
):
    bond = _bond(ops)
    rule_services.rule_create(
        actor=compliance_officer,
        name="Order value",
        kind="max_order_notional",
        params={"limit": 100_400},
        severity="hard",
    )
    account = book["accounts"][0]
    CashBalance.objects.filter(portfolio=account).update(amount=D(500_000))
    order = order_services.order_create(
        actor=pm, portfolio=account, security=bond, side="buy", quantity=FACE
    )
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    # 100,000 face at 99.5 plus 1,000 accrued is 100,500: over 100,400 (clean: under)
    assert order.status == Order.Status.REJECTED
    assert "100,500" in order.compliance_note


# --- 3. Quantities, booking and allocation -------------------------------------------------


def test_an_order_off_the_bonds_increment_or_below_its_piece_is_refused(ops, pm, book):
    bond = _bond(ops, min_quantity=D(100_000), round_lot=D(1000))
    account = book["accounts"][0]
    for quantity, words in (("150500", "multiples of 1,000"), ("99000", "minimum")):
        with pytest.raises(ValidationError) as caught:
            order_services.order_create(
                actor=pm, portfolio=account, security=bond, side="buy", quantity=D(quantity)
            )
        assert words in caught.value.message_dict["quantity"][0]
    assert not Order.objects.filter(security=bond).exists()


def test_an_expired_future_cannot_be_ordered(ops, pm, book):
    crude = _crude(ops)
    Security.objects.filter(pk=crude.pk).update(expiry=timezone.now().date() - timedelta(days=1))
    crude.refresh_from_db()
    with pytest.raises(ValidationError) as caught:
        order_services.order_create(
            actor=pm, portfolio=book["accounts"][0], security=crude, side="buy", quantity=D(1)
        )
    assert "expired" in caught.value.message_dict["quantity"][0]


def _fill(pm, trader, book, security, quantities, django_capture_on_commit_callbacks):
    orders = [
        order_services.order_create(
            actor=pm,
            portfolio=book["accounts"][i],
            security=security,
            side="buy",
            quantity=D(q),
        )
        for i, q in enumerate(quantities)
    ]
    ids = [o.pk for o in orders]
    order_services.orders_approve(actor=pm, order_ids=ids)
    order_services.orders_release(actor=pm, order_ids=ids)
    orders[0].refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_create(
            actor=trader, block_id=orders[0].block_id, broker=book["broker"]
        )
    return orders


def test_a_bond_fill_pays_principal_and_accrued_interest_to_settlement_kept_apart(
    ops, pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    bond = _bond(ops)
    account = book["accounts"][0]
    CashBalance.objects.filter(portfolio=account).update(amount=D(500_000))
    [order] = _fill(pm, trader, book, bond, ["100000"], django_capture_on_commit_callbacks)
    today = timezone.now().date()
    settles = terms.settlement_date(bond, today)
    assert settles > today  # T+1 on the NYSE's business days
    days = (settles - bond.issue_date).days  # ACT/360 from the issue date
    accrued = (FACE * D("0.06") * days / 360).quantize(D("0.01"))
    allocation = Allocation.objects.get(order=order)
    assert allocation.gross_amount == D(99_500)
    assert allocation.accrued_interest == accrued
    assert allocation.net_amount == D(99_500) + accrued
    cash = CashBalance.objects.get(portfolio=account, currency="USD").amount
    assert cash == D(500_000) - D(99_500) - accrued
    lot = TaxLot.objects.get(portfolio=account, security=bond)
    assert (lot.quantity, lot.unit_cost) == (FACE, D("99.5"))  # cost: clean price only


def test_a_future_fill_moves_quantity_times_price_times_multiplier(
    ops, pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    crude = _crude(ops)
    account = book["accounts"][0]
    CashBalance.objects.filter(portfolio=account).update(amount=D(500_000))
    _fill(pm, trader, book, crude, ["2"], django_capture_on_commit_callbacks)
    assert CashBalance.objects.get(portfolio=account, currency="USD").amount == D(350_000)
    assert Position.objects.get(portfolio=account, security=crude).quantity == D(2)


def test_an_option_fill_pays_the_premium_times_a_hundred(
    ops, pm, trader, book, eager_celery, django_capture_on_commit_callbacks
):
    call = _call(ops, book["securities"]["AAA"])
    account = book["accounts"][0]
    before = CashBalance.objects.get(portfolio=account, currency="USD").amount
    _fill(pm, trader, book, call, ["5"], django_capture_on_commit_callbacks)
    assert CashBalance.objects.get(portfolio=account, currency="USD").amount == before - D(2000)


def test_a_bond_block_is_allocated_pro_rata_in_whole_increments_above_the_piece(ops):
    bond = _bond(ops, min_quantity=D(100_000), round_lot=D(1000))
    block = SimpleNamespace(pk=1, security=bond, filled_quantity=D(250_000))
    orders = [SimpleNamespace(pk=pk, quantity=q) for pk, q in ((1, D(300_000)), (2, D(200_000)))]
    # pro rata 150,000 / 100,000: both on the grid and above the piece
    assert allocation_split(block, orders) == {1: D(150_000), 2: D(100_000)}
    block.filled_quantity = D(170_000)
    # pro rata 102,000 / 68,000: the second is below the piece, so the first takes it all
    assert allocation_split(block, orders) == {1: D(170_000), 2: D(0)}
    block.filled_quantity = D(150_000)
    # 90,000 / 60,000 are both below the piece: the larger order takes it all
    assert allocation_split(block, orders) == {1: D(150_000), 2: D(0)}
    block.filled_quantity = D(50_000)
    with pytest.raises(ValidationError) as caught:
        allocation_split(block, orders)  # no account can take it in a piece of 100,000
    assert "100,000" in str(caught.value)


# --- 4. FIX -----------------------------------------------------------------------------


def test_a_bond_order_carries_its_security_type_and_a_price_in_percent_of_par(ops):
    fields = dict(fixmap.instrument_fields(route_services._terms(_bond(ops))))
    assert fields[167] == "CORP"
    assert fields[423] == "1"
    assert fields[223] == "0.06"
    assert len(fields[541]) == 8


def test_an_option_order_carries_its_maturity_strike_and_right(ops, book):
    fields = dict(
        fixmap.instrument_fields(route_services._terms(_call(ops, book["securities"]["AAA"])))
    )
    assert fields[167] == "OPT"
    assert (fields[201], fields[202], fields[231]) == ("1", "100", "100")
    assert fields[461] == "OCXXXX"
    assert len(fields[200]) == 8
    equity = dict(fixmap.instrument_fields(route_services._terms(book["securities"]["AAA"])))
    assert equity == {167: "CS"}


def test_the_admin_form_names_a_missing_bond_term(ops, client):
    ops.is_superuser = True  # the admin's add page is for a superuser
    ops.save(update_fields=["is_superuser"])
    client.force_login(ops)
    form = {
        "ticker": "ADM6",
        "name": "Admin 6%",
        "asset_class": "bond",
        "currency": "USD",
        "round_lot": "1000",
        "min_quantity": "1000",
        "tick_size": "0.01",
        "multiplier": "1",
        "is_active": "on",
        "coupon_rate": "0.06",
        "coupon_frequency": "2",
        "day_count": "ACT/360",
        "issue_date": "2024-01-15",
    }
    response = client.post("/admin/portfolios/security/add/", form)
    assert response.status_code == 200
    assert "A bond needs its maturity." in response.content.decode()
    assert not Security.objects.filter(ticker="ADM6").exists()
    response = client.post("/admin/portfolios/security/add/", form | {"maturity": "2029-01-15"})
    assert response.status_code == 302
    assert Security.objects.get(ticker="ADM6").multiplier == D("0.01")
