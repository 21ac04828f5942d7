"""Shares, funds, options, futures and FX: rules, values, notionals and fill bookings,
each pinned to a published figure or worked by hand in the comment."""

import pytest

from portfolios.instruments import (
    JAPAN_EQUITIES,
    LISTED_DERIVATIVES_US,
    MONEY_MARKET_SAME_DAY,
    US_EQUITY_TICKS,
    US_SECURITIES,
    Cash,
    Closing,
    CurrencyPair,
    Equity,
    Etf,
    Fill,
    Future,
    FxForward,
    FxSpot,
    InstrumentError,
    MoneyMarketFund,
    Option,
    TickTable,
)
from portfolios.instruments.contracts import FUTURES, OPTIONS, future_from_spec

from .helpers import CALENDARS, D, day

# --- shares and funds -----------------------------------------------------------------


def apple():
    return Equity(
        symbol="AAPL",
        currency="USD",
        settlement=US_SECURITIES,
        settlement_calendar="US",
        tick_size=US_EQUITY_TICKS,
    )


def test_share_purchase_pays_quantity_times_price_on_t_plus_1():
    # By hand: 300 x 189.87 = 56,961.00, paid Wednesday 29 May 2024 for a Tuesday trade.
    booking = apple().book_fill(
        Fill(side="buy", quantity=300, price="189.87", trade_date=day("2024-05-28")), CALENDARS
    )
    assert booking.position_change == 300
    assert booking.cost_change == D("56961.00")
    assert [(m.currency, m.amount, m.value_date) for m in booking.cash] == [
        ("USD", D("-56961.00"), day("2024-05-29"))
    ]
    assert booking.realised is None


def test_share_sale_realises_profit_against_the_closed_lots():
    # Sell 100 at 200.00 out of lots that cost 15,000.00: profit 5,000.00.
    booking = apple().book_fill(
        Fill(side="sell", quantity=100, price="200", trade_date=day("2025-03-03")),
        CALENDARS,
        closes=Closing(quantity=D(100), cost=D("15000.00")),
    )
    assert booking.cash[0].amount == D("20000.00")
    assert booking.realised == D("5000.00")
    with pytest.raises(InstrumentError, match="a sell closes long lots, whose cost is positive"):
        apple().book_fill(
            Fill(side="sell", quantity=100, price="200", trade_date=day("2025-03-03")),
            CALENDARS,
            closes=Closing(quantity=D(100), cost=D("-15000.00")),
        )
    with pytest.raises(InstrumentError, match="at most the fill's 100"):
        apple().book_fill(
            Fill(side="sell", quantity=100, price="200", trade_date=day("2025-03-03")),
            CALENDARS,
            closes=Closing(quantity=D(101), cost=D("15000.00")),
        )


def test_short_cover_realises_the_other_way():
    # Bought back 50 at 90.00 after shorting them for 5,000.00 (lot cost -5,000.00): +500.00.
    booking = apple().book_fill(
        Fill(side="buy", quantity=50, price="90", trade_date=day("2025-03-03")),
        CALENDARS,
        closes=Closing(quantity=D(50), cost=D("-5000.00")),
    )
    assert booking.realised == D("500.00")


def test_us_tick_table_and_round_lots():
    # SEC Regulation NMS Rule 612: $0.01 at $1.00 and above, $0.0001 below.
    stock = apple()
    assert stock.check_price("189.87") == D("189.87")
    assert stock.check_price("0.5123") == D("0.5123")
    with pytest.raises(InstrumentError, match="not a multiple of its tick 0.01"):
        stock.check_price("189.875")
    with pytest.raises(InstrumentError, match="cannot be negative"):
        stock.check_price("-1")
    # The Tokyo Stock Exchange trades in units of 100 shares.
    toyota = Equity(
        symbol="7203",
        currency="JPY",
        round_lot=D(100),
        settlement=JAPAN_EQUITIES,
        settlement_calendar="XTKS",
    )
    assert toyota.check_quantity(300) == 300
    with pytest.raises(InstrumentError, match="not a tradeable quantity: multiples of 100 shares"):
        toyota.check_quantity(150)
    assert toyota.round_quantity(D(-1_249)) == D(-1_200)
    assert toyota.round_quantity(D(1_250), "ROUND_HALF_EVEN") == D(1_200)
    assert toyota.round_quantity(D(49), "ROUND_HALF_EVEN") == 0
    assert toyota.round_quantity(D(51), "ROUND_HALF_EVEN") == 100
    # A yen amount has no minor unit: 300 x 2,512.5 = 753,750 (no rounding needed here).
    booking = toyota.book_fill(
        Fill(side="buy", quantity=300, price="2512.5", trade_date=day("2025-03-03")), CALENDARS
    )
    assert booking.cash[0].amount == D(-753750)
    assert booking.settlement_date == day("2025-03-05")


def test_fractional_shares_and_an_etf():
    spy = Etf(
        symbol="SPY",
        currency="USD",
        fractional=True,
        increment=D("0.0001"),
        settlement=US_SECURITIES,
        settlement_calendar="US",
    )
    assert spy.kind == "etf"
    assert spy.check_quantity("0.3333") == D("0.3333")
    with pytest.raises(InstrumentError, match="multiples of 0.0001 shares"):
        spy.check_quantity("0.33333")
    # 0.3333 x 512.34 = 170.762922 -> 170.76 paid
    booking = spy.book_fill(
        Fill(side="buy", quantity="0.3333", price="512.34", trade_date=day("2025-03-03")), CALENDARS
    )
    assert booking.cash[0].amount == D("-170.76")


def test_money_market_fund_settles_the_same_day():
    fund = MoneyMarketFund(
        symbol="GOVMMF",
        currency="USD",
        stable_nav=True,
        settlement=MONEY_MARKET_SAME_DAY,
        settlement_calendar="US",
    )
    booking = fund.book_fill(
        Fill(side="buy", quantity="1234.567", price="1.00", trade_date=day("2025-03-03")), CALENDARS
    )
    # 1,234.567 x 1.00 = 1,234.567 -> 1,234.57 (half to even rounds ...567 up)
    assert booking.cash[0].amount == D("-1234.57")
    assert booking.settlement_date == day("2025-03-03")
    with pytest.raises(InstrumentError, match="multiples of 0.001 shares"):
        fund.check_quantity("1.0001")


def test_cash_is_valued_at_one_and_not_traded():
    usd = Cash(symbol="USD", currency="USD")
    assert usd.value(D("1250.50"), 1).market_value == D("1250.50")
    with pytest.raises(InstrumentError, match="worth 1 per unit"):
        usd.value(D(10), D("1.1"))
    with pytest.raises(InstrumentError, match="not traded"):
        usd.book_fill(
            Fill(side="buy", quantity=1, price=1, trade_date=day("2025-03-03")), CALENDARS
        )
    assert Cash(symbol="JPY", currency="JPY").check_quantity(1) == 1
    with pytest.raises(InstrumentError, match="below the minimum of 1 JPY"):
        Cash(symbol="JPY", currency="JPY").check_quantity("0.5")
    with pytest.raises(InstrumentError, match="not a tradeable quantity: whole JPY"):
        Cash(symbol="JPY", currency="JPY").check_quantity("1.5")


# --- options ---------------------------------------------------------------------------


def equity_call(strike="70", symbol="KLM AUG 70 C"):
    return Option(
        symbol=symbol,
        currency="USD",
        underlying="KLM",
        underlying_kind="equity",
        right="call",
        strike=D(strike),
        expiry=day("2025-08-15"),
        multiplier=D(100),
        settlement=LISTED_DERIVATIVES_US,
        settlement_calendar="US",
    )


def test_equity_option_premium_is_paid_times_100():
    # Investopedia, Series 4 study guide ("Characteristics of All Options"): one contract
    # is 100 shares; "If an investor paid $4 for 1 KLM August 70 call, they paid $400".
    booking = equity_call().book_fill(
        Fill(side="buy", quantity=1, price="4", trade_date=day("2025-03-03")), CALENDARS
    )
    assert booking.cash[0].amount == D("-400.00")
    assert booking.cash[0].reason == "premium"
    assert booking.settlement_date == day("2025-03-04")  # OCC: premium settles T+1
    # Best Trading Guide, "Stock Option Contract Specification": 2 AAPL May 95 calls at
    # $5 cost 2 x 100 x $5 = $1,000.
    call = equity_call(strike="95", symbol="AAPL MAY 95 C")
    assert call.value(2, 5).market_value == D(1000)


def test_option_notionals():
    call = equity_call()
    value = call.value(D(10), D("4"), underlying_price=D("72.50"))
    assert value.notional == D(4000)  # 10 x 100 x 4, the premium's value
    assert value.underlying_notional == D(72500)  # 10 x 100 x 72.50, delta-unadjusted
    assert call.strike_notional(D(-10)) == D(-70000)
    # an option may be marked at zero (expiring worthless) but not ordered at zero
    assert call.value(D(10), 0).market_value == 0
    with pytest.raises(InstrumentError, match="cannot be zero"):
        call.check_price(0)
    with pytest.raises(InstrumentError, match="expired on 2025-08-15"):
        call.book_fill(
            Fill(side="buy", quantity=1, price=1, trade_date=day("2025-08-18")), CALENDARS
        )
    with pytest.raises(InstrumentError, match="not a tradeable quantity: whole contracts"):
        call.check_quantity("1.5")


def test_option_on_a_currency_future():
    # CME Euro FX options: one futures contract for 125,000 euros; minimum fluctuation
    # 0.0001 per euro = $12.50, and 0.00005 = $6.25 for premiums below 0.0005.
    option = Option(
        symbol="EUU5 C1100",
        currency="USD",
        underlying="6EU5",
        underlying_kind="future",
        right="call",
        strike=D("1.1000"),
        expiry=day("2025-09-05"),
        multiplier=D(125_000),
        tick_size=TickTable(((D("0.0004999"), D("0.00005")),), above=D("0.0001")),
        settlement=LISTED_DERIVATIVES_US,
        settlement_calendar="US",
    )
    assert D("0.0001") * option.multiplier == D("12.50")
    assert D("0.00005") * option.multiplier == D("6.25")
    assert option.check_price("0.00045") == D("0.00045")
    with pytest.raises(InstrumentError, match="tick 0.0001"):
        option.check_price("0.01505")
    # By hand: 4 contracts at 0.0150 pay 4 x 125,000 x 0.0150 = $7,500.00; the underlying
    # euros at 1.0850 are 4 x 125,000 x 1.0850 = $542,500 of notional.
    booking = option.book_fill(
        Fill(side="buy", quantity=4, price="0.0150", trade_date=day("2025-03-03")), CALENDARS
    )
    assert booking.cash[0].amount == D("-7500.00")
    assert option.value(4, "0.0150", underlying_price="1.0850").underlying_notional == D("542500")


def test_option_on_an_interest_rate_future():
    # CBOT 10-Year T-Note options: one futures contract of $100,000 face, premium in
    # points of par with a tick of 1/64 point = $15.625; a point is therefore $1,000.
    option = Option(
        symbol="OZNM5 P110",
        currency="USD",
        underlying="ZNM5",
        underlying_kind="future",
        right="put",
        strike=D(110),
        expiry=day("2025-05-23"),
        multiplier=D(1000),
        tick_size=D("0.015625"),
        settlement=LISTED_DERIVATIVES_US,
        settlement_calendar="US",
    )
    assert option.tick * option.multiplier == D("15.625")
    # By hand: 10 puts at 0-48 (48/64 = 0.75 point) cost 10 x 1,000 x 0.75 = $7,500.00.
    booking = option.book_fill(
        Fill(side="buy", quantity=10, price="0.75", trade_date=day("2025-03-03")), CALENDARS
    )
    assert booking.cash[0].amount == D("-7500.00")


# --- futures ---------------------------------------------------------------------------


def crude(symbol="CLN5", negative=False, expiry="2025-06-20"):
    # NYMEX Light Sweet Crude Oil (CL): 1,000 barrels, USD per barrel, 0.01 = $10.00.
    return Future(
        symbol=symbol,
        currency="USD",
        underlying="WTI crude oil",
        contract_unit="1,000 barrels",
        multiplier=D(1000),
        tick_size=D("0.01"),
        expiry=day(expiry),
        allows_negative_price=negative,
        settlement=LISTED_DERIVATIVES_US,
        settlement_calendar="US",
    )


@pytest.mark.parametrize(
    ("code", "multiplier"),
    [
        ("CL", "1000"),  # NYMEX crude oil: 1,000 barrels, USD per barrel
        ("HG", "25000"),  # COMEX copper: 25,000 pounds, USD per pound
        ("ES", "50"),  # CME E-mini S&P 500: $50 x index
        ("ZN", "1000"),  # CBOT 10-year T-note: $100,000 face, price in points of par
        ("SR3", "2500"),  # CME three-month SOFR: $2,500 x IMM index
        ("6E", "125000"),  # CME euro FX: 125,000 euros, USD per euro
    ],
)
def test_contract_specs_multipliers_and_tick_values(code, multiplier):
    # Each exchange's specification states the contract unit and, separately, the dollar
    # value of one tick ("0.01 per barrel = $10.00"): one contract moving one tick in the
    # engine must be worth that value.
    spec = FUTURES[code]
    assert spec.multiplier == D(multiplier)
    future = future_from_spec(spec, symbol=f"{code}Z0", expiry=day("2030-12-20"))
    one_tick = future.notional(1, D(100) + spec.tick) - future.notional(1, D(100))
    assert one_tick == spec.tick_value, spec.source


@pytest.mark.parametrize("code", ["OZN", "EUU", "ES-OPT"])
def test_option_specs_tick_values(code):
    spec = OPTIONS[code]
    tick = spec.tick.above if isinstance(spec.tick, TickTable) else spec.tick
    assert tick * spec.multiplier == spec.tick_value, spec.source
    assert OPTIONS["US-EQUITY"].multiplier == 100


def test_futures_buy_pays_nothing_and_books_the_notional():
    # By hand: 2 CL at 75.00 are 2 x 1,000 x 75.00 = $150,000 of notional, no cash.
    future = crude()
    buy = future.book_fill(
        Fill(side="buy", quantity=2, price="75.00", trade_date=day("2025-03-03")), CALENDARS
    )
    assert buy.cash == ()
    assert buy.position_change == 2
    assert buy.cost_change == D(150_000)
    # marked at 76.50 the position is worth its gain: 2 x 1,000 x 1.50 = $3,000
    value = future.value(2, "76.50", cost=buy.cost_change)
    assert value.market_value == D(3000)
    assert value.notional == D(153_000)
    # closing both at 76.50 realises $3,000, paid the next business day
    sell = future.book_fill(
        Fill(side="sell", quantity=2, price="76.50", trade_date=day("2025-03-03")),
        CALENDARS,
        closes=Closing(quantity=D(2), cost=buy.cost_change),
    )
    assert sell.realised == D(3000)
    assert [(m.amount, m.value_date, m.reason) for m in sell.cash] == [
        (D("3000.00"), day("2025-03-04"), "realised_variation")
    ]
    with pytest.raises(InstrumentError, match="needs its cost"):
        future.value(2, "76.50")


def test_partial_close_then_open_short():
    # Long 2 at 75.00 (cost 150,000); sell 3 at 74.00: 2 close (-2,000), 1 opens a short.
    sell = crude().book_fill(
        Fill(side="sell", quantity=3, price="74.00", trade_date=day("2025-03-03")),
        CALENDARS,
        closes=Closing(quantity=D(2), cost=D(150_000)),
    )
    assert sell.realised == D(-2000)
    assert sell.position_change == -3
    assert sell.cost_change == D(-222_000)
    assert sell.cash[0].amount == D("-2000.00")


def test_wti_negative_settlement_of_april_2020():
    # On 20 April 2020 the May 2020 WTI contract settled at -$37.63, down $55.90 from
    # Friday's $18.27 (EFE, DTN, 21 April 2020); CME let that contract trade below zero.
    may = crude("CLK0", negative=True, expiry="2020-04-21")
    value = may.value(1, "-37.63", cost=may.notional(1, "18.27"))
    assert value.market_value == D("-55900.00")
    assert may.check_price("-37.63") == D("-37.63")
    with pytest.raises(InstrumentError, match="cannot be negative"):
        crude().check_price("-37.63")


# --- FX --------------------------------------------------------------------------------


def test_forward_points_make_the_outright():
    # Association of Corporate Treasurers wiki, "Forward points": GBP 1 = 1.6000 - 1.6010
    # USD spot, one-month points 5 - 8: outright 1.6005 - 1.6018.
    gbp = FxForward(
        symbol="GBP/USD 1M", pair=CurrencyPair("GBP", "USD"), value_date=day("2025-07-17")
    )
    assert gbp.outright_rate("1.6000", 5) == D("1.6005")
    assert gbp.outright_rate("1.6010", 8) == D("1.6018")
    # Yen pairs count points in 0.01, not 0.0001 (wasspe glossary, "Forward points"); by
    # hand: 151.20 - 35.5 x 0.01 = 150.845.
    usd_jpy = FxForward(
        symbol="USD/JPY", pair=CurrencyPair("USD", "JPY"), value_date=day("2025-07-17")
    )
    assert usd_jpy.outright_rate("151.20", "-35.5") == D("150.845")


def test_fx_forward_moves_two_currencies_on_the_value_date():
    # wasspe glossary, "Forward points": a Canadian importer buys EUR 100,000 three months
    # forward; spot 1.4500 CAD per EUR, points +25: forward 1.4525, so it pays CAD 145,250.
    forward = FxForward(
        symbol="EUR/CAD 3M", pair=CurrencyPair("EUR", "CAD"), value_date=day("2025-06-16")
    )
    rate = forward.outright_rate("1.4500", 25)
    assert rate == D("1.4525")
    booking = forward.book_fill(
        Fill(side="buy", quantity=D(100_000), price=rate, trade_date=day("2025-03-12")), CALENDARS
    )
    assert [(m.currency, m.amount, m.value_date) for m in booking.cash] == [
        ("EUR", D(100_000), day("2025-06-16")),
        ("CAD", D("-145250.00"), day("2025-06-16")),
    ]
    assert booking.position_change == 0
    # Three months on, the forward for that date is 1.4600: the legs are worth
    # 100,000 x (1.4600 - 1.4525) = CAD 750 (undiscounted).
    value = forward.value(D(100_000), D("1.4600"), cost=D("145250.00"))
    assert value.market_value == D("750.00")
    assert value.currency == "CAD"
    with pytest.raises(InstrumentError, match="settles on its value date 2025-06-16"):
        forward.book_fill(
            Fill(
                side="buy",
                quantity=D(100_000),
                price=rate,
                trade_date=day("2025-03-12"),
                settlement_date=day("2025-06-17"),
            ),
            CALENDARS,
        )


def test_fx_spot_settles_on_the_spot_date_in_both_currencies():
    # By hand: buy EUR 1,000,000 at 1.0850 on Friday 16 June 2023: spot Tuesday 20 June
    # (Juneteenth on T+1 does not count); receive EUR 1,000,000.00, pay USD 1,085,000.00.
    spot = FxSpot(symbol="EUR/USD", pair="EUR/USD")
    booking = spot.book_fill(
        Fill(side="buy", quantity=D(1_000_000), price="1.0850", trade_date=day("2023-06-16")),
        CALENDARS,
    )
    assert booking.settlement_date == day("2023-06-20")
    assert booking.cash_by_currency() == {"EUR": D(1_000_000), "USD": D("-1085000.00")}
    # selling dollars for yen rounds to whole yen: 1,000,000 x 151.2355 = 151,235,500
    usd_jpy = FxSpot(symbol="USD/JPY", pair="USD/JPY")
    sold = usd_jpy.book_fill(
        Fill(side="sell", quantity=D(1_000_000), price="151.2355", trade_date=day("2025-03-03")),
        CALENDARS,
    )
    assert sold.cash_by_currency() == {"USD": D(-1_000_000), "JPY": D(151_235_500)}
    with pytest.raises(InstrumentError, match="multiples of 0.01 EUR"):
        spot.check_quantity("100.005")


def test_fx_errors_in_the_traders_words():
    with pytest.raises(InstrumentError, match="not a currency pair"):
        CurrencyPair("EUR", "EUR")
    with pytest.raises(InstrumentError, match="looks like EUR/USD"):
        FxSpot(symbol="X", pair="EURO/USD")
    with pytest.raises(InstrumentError, match="quote currency USD, not EUR"):
        FxSpot(symbol="X", pair="EUR/USD", currency="EUR")
    forward = FxForward(
        symbol="EUR/USD", pair=CurrencyPair("EUR", "USD"), value_date=day("2025-07-04")
    )
    with pytest.raises(InstrumentError, match="2025-07-04 is a US holiday"):
        forward.settlement_date(day("2025-06-02"), CALENDARS)
    with pytest.raises(InstrumentError, match="opens no lots"):
        FxSpot(symbol="X", pair="EUR/USD").book_fill(
            Fill(side="sell", quantity=1, price=1, trade_date=day("2025-03-03")),
            CALENDARS,
            closes=Closing(quantity=D(1), cost=D(1)),
        )
    with pytest.raises(InstrumentError, match="needs its cost"):
        forward.value(1, 1)


def test_fill_and_price_input_errors():
    with pytest.raises(InstrumentError, match="'buy' or 'sell'"):
        Fill(side="long", quantity=1, price=1, trade_date=day("2025-03-03"))
    with pytest.raises(InstrumentError, match="more than zero"):
        Fill(side="buy", quantity=0, price=1, trade_date=day("2025-03-03"))
    with pytest.raises(InstrumentError, match="must be a number"):
        Fill(side="buy", quantity="ten", price=1, trade_date=day("2025-03-03"))
    with pytest.raises(InstrumentError, match="finite"):
        Fill(side="buy", quantity="NaN", price=1, trade_date=day("2025-03-03"))
    with pytest.raises(InstrumentError, match="before the trade date"):
        apple().book_fill(
            Fill(
                side="buy",
                quantity=1,
                price=1,
                trade_date=day("2025-03-03"),
                settlement_date=day("2025-03-02"),
            ),
            CALENDARS,
        )
    # a broker's SettlDate overrides the cycle
    booking = apple().book_fill(
        Fill(
            side="buy",
            quantity=1,
            price=1,
            trade_date=day("2025-03-03"),
            settlement_date=day("2025-03-05"),
        ),
        CALENDARS,
    )
    assert booking.settlement_date == day("2025-03-05")
    with pytest.raises(InstrumentError, match="three-letter ISO code"):
        Equity(symbol="X", currency="usd", settlement=US_SECURITIES, settlement_calendar="US")
