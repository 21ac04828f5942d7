"""Pages: cash flows (account page, list, CSV upload), raise cash, edit a proposed
quantity, totals per security and gains on the run page; form errors in words."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from orchestration import services
from orchestration.models import CashFlow
from portfolios.models import RebalanceRun

pytestmark = pytest.mark.django_db


def test_the_account_page_loads_its_cash_flows_and_enters_one(pm, book, client_for):
    account = book["accounts"][0]
    client = client_for(pm)
    page = client.get(account.get_absolute_url()).content.decode()
    partial_url = reverse("runs:account-cash-flows", args=[account.pk])
    assert partial_url in page
    response = client.post(
        reverse("runs:cash-flow-create"),
        {
            "portfolio": account.pk,
            "kind": "withdrawal",
            "currency": "USD",
            "amount": "2500",
            "next": account.get_absolute_url(),
        },
    )
    assert response.status_code == 302 and response["Location"] == account.get_absolute_url()
    flow = CashFlow.objects.get()
    assert (flow.kind, flow.amount, flow.status) == ("withdrawal", Decimal("2500"), "pending")
    partial = client.get(partial_url).content.decode()
    assert "Withdrawal" in partial and "2,500.00" in partial and "Raise cash" in partial


@pytest.mark.parametrize(
    ("amount", "currency", "words"),
    [
        ("-2500", "USD", "Must be positive"),
        ("12", "XYZ", "No FX rate from XYZ"),
    ],
)
def test_a_bad_cash_flow_is_a_form_error(pm, book, client_for, amount, currency, words):
    response = client_for(pm).post(
        reverse("runs:cash-flow-create"),
        {
            "portfolio": book["accounts"][0].pk,
            "kind": "withdrawal",
            "currency": currency,
            "amount": amount,
        },
    )
    assert response.status_code == 422
    assert words in response.content.decode()
    assert not CashFlow.objects.exists()


def test_csv_upload_names_the_bad_lines_and_saves_nothing(pm, book, client_for):
    client = client_for(pm)
    bad = SimpleUploadedFile(
        "f.csv", b"account,currency,amount,kind\nACC1,USD,5,deposit\nACC7,USD,5,deposit\n"
    )
    response = client.post(reverse("runs:cash-flow-import"), {"file": bad})
    assert response.status_code == 422
    assert "Line 3: no account &#x27;ACC7&#x27; among yours." in response.content.decode()
    assert not CashFlow.objects.exists()
    good = SimpleUploadedFile("f.csv", b"account,currency,amount,kind\nACC1,USD,5,deposit\n")
    response = client.post(reverse("runs:cash-flow-import"), {"file": good})
    assert response.status_code == 302
    assert CashFlow.objects.count() == 1
    listing = client.get(reverse("runs:cash-flows") + "?portfolio=ACC1").content.decode()
    assert "Deposit" in listing and "5.00" in listing


def test_raise_cash_page(pm, book, client_for):
    account = book["accounts"][0]
    client = client_for(pm)
    url = reverse("runs:raise-cash", args=[account.pk])
    assert client.get(url).status_code == 200
    refused = client.post(url, {"amount": "", "currency": ""})
    assert refused.status_code == 422
    assert "has no pending withdrawal" in refused.content.decode()
    response = client.post(url, {"amount": "25000", "currency": "USD"})
    run = RebalanceRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.parameters["objective"] == "raise_cash"
    page = client.get(run.get_absolute_url()).content.decode()
    assert "raise cash only" in page


def test_raise_cash_page_says_when_the_cash_cannot_be_raised(pm, book, client_for):
    account = book["accounts"][0]
    client = client_for(pm)
    url = reverse("runs:raise-cash", args=[account.pk])
    response = client.post(url, {"amount": "10000000", "currency": "USD"}, follow=True)
    page = response.content.decode()
    assert "cannot raise the cash in ACC1" in page
    assert "withdrawal entered here is cancelled" in page


def test_raise_cash_page_takes_the_tax_options_and_keeps_the_gains_cap(pm, book, client_for):
    """The page had no tax options and the raise ignored the gains cap (it sold 55 AAA,
    bought at 30, for a gain of 3,850). With a cap of 0 it sells what realises no net
    gain: losses (EEE at 10 and CCC at 20, bought at 30) offset any gain it takes."""
    account = book["accounts"][0]
    client = client_for(pm)
    url = reverse("runs:raise-cash", args=[account.pk])
    form = client.get(url).content.decode()
    assert 'name="gains_cap"' in form and 'name="lot_selection"' in form
    bad = client.post(url, {"amount": "25000", "gains_cap": "-5"})
    assert bad.status_code == 422 and not RebalanceRun.objects.exists()
    response = client.post(
        url,
        {"amount": "25000", "currency": "USD", "gains_cap": "0", "lot_selection": "hifo"},
        follow=True,
    )
    assert "proposes the sells that raise the cash" in response.content.decode()
    run = RebalanceRun.objects.get()
    assert run.parameters["gains_cap"] == 0 and run.parameters["lot_selection"] == "hifo"
    figures = run.summary["ACC1"]
    assert figures["realised_gain"] <= 1e-6 and figures["cash_after"] >= 500 - 1e-6
    sold = set(run.orders.values_list("security__ticker", flat=True))
    assert sold and "AAA" not in sold  # the losses offset what gains (net within the cap)


def test_edit_a_quantity_on_the_run_page(pm, proposed_run, client_for):
    client = client_for(pm)
    sell = proposed_run.orders.get(security__ticker="AAA", side="sell")
    url = reverse("runs:order-edit", args=[proposed_run.pk, sell.pk])
    page = client.get(proposed_run.get_absolute_url()).content.decode()
    assert url in page  # each draft order has its quantity form
    edit_page = client.get(url)
    weights = {w["order"].pk: w for w in edit_page.context["weights"]}
    assert weights[sell.pk]["weight_after"] < weights[sell.pk]["weight_before"]
    assert 'id="account-weights"' in edit_page.content.decode()
    broken = client.post(url, {"quantity": "601"})
    assert broken.status_code == 422
    assert "short sale" in broken.content.decode()
    sell.refresh_from_db()
    response = client.post(url, {"quantity": str(sell.quantity - 10)})
    assert response.status_code == 302
    edited = sell.quantity - 10
    sell.refresh_from_db()
    assert sell.quantity == edited
    not_a_number = client.post(url, {"quantity": "ten"})
    assert not_a_number.status_code == 422 and "Enter a number." in not_a_number.content.decode()


def test_run_page_totals_gains_and_currencies(pm, book, client_for):
    run = services.rebalance_run_create(actor=pm, portfolios=book["accounts"])
    response = client_for(pm).get(run.get_absolute_url())
    totals = {(t["security"], t["side"]): t for t in response.context["totals"]}
    ddd = next(t for key, t in totals.items() if key[0] == "DDD")
    assert ddd["currency"] == "EUR"
    page = response.content.decode()
    assert 'id="totals"' in page and 'id="gains-total"' in page
    assert "Total in USD" in page
    # the EUR security's estimated price and value are shown in EUR, labelled
    order = run.orders.filter(security__ticker="DDD").first()
    assert f"{order.estimated_price.normalize():f}" in page.replace(",", "")
    assert '<span class="ccy">EUR</span>' in page


def test_run_page_queries_do_not_grow_with_orders(
    pm, book, client_for, django_assert_max_num_queries
):
    from tests.orchestration.test_run_at_scale import clone_accounts

    run = services.rebalance_run_create(
        actor=pm, portfolios=clone_accounts(book, pm, 8, prefix="Q")
    )
    assert run.orders.count() > 20
    client = client_for(pm)
    # session, user, roles, the run, its counts and checks, the totals per security (one
    # grouped query and the FX rates), the page of orders, the chunks the recovery sent
    # again: the same for 1 or 40 orders
    with django_assert_max_num_queries(11):
        response = client.get(run.get_absolute_url())
    assert response.status_code == 200
    assert len(response.context["totals"]) >= 3


def test_the_run_form_offers_the_tax_options(pm, book, client_for):
    client = client_for(pm)
    page = client.get(reverse("runs:create")).content.decode()
    for name in ("gains_cap", "wash_sale_days", "lot_selection", "objective"):
        assert f'name="{name}"' in page
    response = client.post(
        reverse("runs:create"),
        {"portfolios": [book["accounts"][0].pk], "wash_sale_days": "400", "gains_cap": "-1"},
    )
    assert response.status_code == 422
    text = response.content.decode()
    assert "less than or equal to 365" in text and "greater than or equal to 0" in text
    response = client.post(
        reverse("runs:create"),
        {"portfolios": [book["accounts"][0].pk], "gains_cap": "0", "lot_selection": "hifo"},
    )
    run = RebalanceRun.objects.get()
    assert response.status_code == 302
    assert run.parameters["gains_cap"] == 0.0 and run.parameters["lot_selection"] == "hifo"


@pytest.mark.parametrize(
    ("value", "unit_price", "shown"),
    [
        ("304.515", "101.505", "304.515"),  # 3 × 101.505: the price's three decimals
        ("1234.5", "123.45", "1,234.50"),
        ("0.123456", "0.123456", "0.123456"),
        (None, "1", "—"),
    ],
)
def test_an_estimated_value_keeps_its_prices_decimals(value, unit_price, shown):
    from orchestration.templatetags.proposal_format import value_at

    assert value_at(value, unit_price) == shown


def test_eur_prices_show_in_eur_on_the_account_and_the_order(pm, proposed_run, book, client_for):
    """DDD trades in EUR at 40 (1.1 USD): the account's holdings table and the order's
    page both show 40.00 EUR, as the run page does, not 44.00 converted."""
    client = client_for(pm)
    account = book["accounts"][0]
    page = client.get(account.get_absolute_url()).content.decode()
    holdings = page[page.index('id="holdings"') :]
    row = holdings[holdings.index('data-ticker="DDD"') :]
    row = row[: row.index("</tr>")]
    assert '40.00 <span class="ccy">EUR</span>' in row and "44.00" not in row
    order = proposed_run.orders.get(security__ticker="DDD")
    detail = client.get(order.get_absolute_url()).content.decode()
    assert '40.00 <span class="ccy">EUR</span>' in detail
