"""The portfolio manager's pages: accounts with drift, an account, rebalance runs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from portfolios.models import Portfolio, Position, RebalanceRun
from trading.models import Block, Order

pytestmark = pytest.mark.django_db


def test_accounts_list_shows_drift_and_the_out_of_band_flag(pm, book, client_for):
    response = client_for(pm).get(reverse("portfolios:portfolio-list"))
    assert response.status_code == 200
    rows = {row["portfolio"].code: row for row in response.context["page"].object_list}
    assert set(rows) == {"ACC1", "ACC2"}
    for row in rows.values():
        assert row["drift"]["drift"] > 0
        assert row["drift"]["out_of_band"] is True
    assert b"Out of band" in response.content
    assert b"Rebalance selected" in response.content


def test_accounts_list_sorts_by_drift_both_ways(pm, book, client_for):
    client = client_for(pm)
    down = client.get(reverse("portfolios:portfolio-list"), {"sort": "-drift"})
    up = client.get(reverse("portfolios:portfolio-list"), {"sort": "drift"})
    drift_down = [row["drift"]["drift"] for row in down.context["page"].object_list]
    drift_up = [row["drift"]["drift"] for row in up.context["page"].object_list]
    assert drift_down == sorted(drift_down, reverse=True)
    assert drift_up == sorted(drift_up)
    assert drift_down != drift_up


def test_accounts_list_uses_the_shared_filter(pm, book, client_for):
    response = client_for(pm).get(reverse("portfolios:portfolio-list"), {"q": "ACC2"})
    assert [row["portfolio"].code for row in response.context["page"].object_list] == ["ACC2"]


def test_accounts_list_out_of_band_only(pm, book, client_for):
    in_band = Portfolio.objects.create(code="CASH", name="All cash", manager=pm)
    response = client_for(pm).get(reverse("portfolios:portfolio-list"), {"out_of_band": "1"})
    codes = {row["portfolio"].code for row in response.context["page"].object_list}
    assert codes == {"ACC1", "ACC2"}
    assert in_band.code not in codes


def test_accounts_list_answers_htmx_with_the_table_only(pm, book, client_for):
    response = client_for(pm).get(
        reverse("portfolios:portfolio-list"),
        {"q": "ACC1"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"ACC1" in response.content
    assert b"ACC2" not in response.content


def test_a_pm_sees_only_the_accounts_they_manage(other_pm, book, client_for):
    response = client_for(other_pm).get(reverse("portfolios:portfolio-list"))
    assert list(response.context["page"].object_list) == []


def test_accounts_list_query_count_does_not_grow_with_accounts(
    pm, book, client_for, django_assert_max_num_queries
):
    for n in range(12):
        account = Portfolio.objects.create(
            code=f"X{n:02}", name=f"Extra {n}", manager=pm, model=book["model"]
        )
        Position.objects.create(
            portfolio=account, security=book["securities"]["AAA"], quantity=10 + n
        )
    client = client_for(pm)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("portfolios:portfolio-list"))
    assert len(response.context["page"].object_list) == 14


def test_account_detail_shows_weights_against_the_model_and_cash(pm, book, client_for):
    account = book["accounts"][0]
    response = client_for(pm).get(account.get_absolute_url())
    assert response.status_code == 200
    positions = {row["security"].ticker: row for row in response.context["positions"]}
    # Held (EEE, not in the model) and in the model (CCC, DDD, not held) both show.
    assert {"AAA", "BBB", "CCC", "DDD", "EEE"} <= set(positions)
    assert positions["EEE"]["target"] == 0
    assert positions["EEE"]["drift"] > 0
    assert positions["CCC"]["quantity"] == 0
    assert positions["CCC"]["drift"] < 0
    assert b"20,000.00" in response.content  # USD cash
    assert b"Rebalance" in response.content


def test_account_detail_shows_realised_pnl_today_and_in_total(pm, book, client_for):
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from portfolios.services.holdings import Fill, holdings_book_fills

    account, aaa = book["accounts"][0], book["securities"]["AAA"]
    today = timezone.now().date()
    # the lot at 30 bought 400 days ago: 100 sold at 100 a week ago (7,000 long term)
    # and 50 today at 20 (a loss of 500)
    for quantity, price, day in ((100, 100, today - timedelta(days=7)), (50, 20, today)):
        holdings_book_fills(
            security=aaa,
            fills=[
                Fill(
                    portfolio_id=account.pk,
                    buying=False,
                    quantity=Decimal(quantity),
                    price=Decimal(price),
                )
            ],
            on_date=day,
        )
    response = client_for(pm).get(account.get_absolute_url())
    realised = response.context["realised"]
    assert (realised["today"].long_term, realised["today"].total) == (-500, -500)
    assert (realised["total"].short_term, realised["total"].total) == (0, 6500)
    html = response.content.decode()
    assert 'id="realised-pnl"' in html and "6,500.00" in html and "-500.00" in html


def test_compliance_sees_the_account_without_the_rebalance_button(
    compliance_officer, book, client_for
):
    response = client_for(compliance_officer).get(book["accounts"][0].get_absolute_url())
    assert response.status_code == 200
    assert response.context["can_rebalance"] is False
    assert reverse("runs:create").encode() not in response.content


def test_rebalance_form_preselects_the_accounts_from_the_list(pm, book, client_for):
    account = book["accounts"][1]
    response = client_for(pm).get(reverse("runs:create"), {"portfolios": account.pk})
    assert response.status_code == 200
    assert response.context["form"].initial["portfolios"] == [str(account.pk)]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"trade_to": "target", "min_trade_value": "0", "lot_selection": "fifo"}, "portfolios"),
        ({"trade_to": "moon", "min_trade_value": "0", "lot_selection": "fifo"}, "trade_to"),
        (
            {"trade_to": "target", "min_trade_value": "-5", "lot_selection": "fifo"},
            "min_trade_value",
        ),
    ],
)
def test_rebalance_form_shows_errors_and_writes_nothing(pm, book, client_for, data, field):
    if field != "portfolios":
        data = data | {"portfolios": [book["accounts"][0].pk]}
    events = AuditEvent.objects.count()
    response = client_for(pm).post(reverse("runs:create"), data)
    assert response.status_code == 422
    assert field in response.context["form"].errors
    assert b"nothing was saved" in response.content
    assert not RebalanceRun.objects.exists()
    assert AuditEvent.objects.count() == events


def test_another_managers_account_cannot_be_rebalanced(other_pm, book, client_for):
    response = client_for(other_pm).post(
        reverse("runs:create"),
        {
            "portfolios": [book["accounts"][0].pk],
            "trade_to": "target",
            "min_trade_value": "0",
            "lot_selection": "fifo",
        },
    )
    assert response.status_code == 422
    assert "portfolios" in response.context["form"].errors
    assert not RebalanceRun.objects.exists()


def test_rebalance_proposes_then_approve_then_release(pm, book, client_for):
    client = client_for(pm)
    account = book["accounts"][0]
    response = client.post(
        reverse("runs:create"),
        {
            "portfolios": [account.pk],
            "trade_to": "target",
            "min_trade_value": "0",
            "lot_selection": "fifo",
        },
    )
    run = RebalanceRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == run.get_absolute_url()
    assert run.status == RebalanceRun.Status.PROPOSED

    page = client.get(run.get_absolute_url())
    assert page.context["can_approve"]
    orders = list(page.context["orders"])
    assert orders and all(o.status == Order.Status.DRAFT for o in orders)
    [(code, what_if)] = page.context["summary"]
    assert code == "ACC1"
    assert what_if["drift_after"] < what_if["drift_before"]
    assert b"What-if per account" in page.content

    client.post(reverse("runs:approve", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.APPROVED
    assert set(run.orders.values_list("status", flat=True)) == {Order.Status.APPROVED}

    response = client.post(reverse("runs:release", args=[run.pk]), follow=True)
    run.refresh_from_db()
    assert run.status == RebalanceRun.Status.RELEASED
    assert set(run.orders.values_list("status", flat=True)) == {Order.Status.RELEASED}
    assert Block.objects.filter(orders__rebalance_run=run).exists()
    assert b"released" in response.content

    listing = client.get(reverse("runs:list"))
    assert [r.pk for r in listing.context["page"].object_list] == [run.pk]


def test_approving_twice_says_why_and_changes_nothing(pm, proposed_run, client_for):
    client = client_for(pm)
    client.post(reverse("runs:approve", args=[proposed_run.pk]))
    events = AuditEvent.objects.count()
    response = client.post(reverse("runs:approve", args=[proposed_run.pk]), follow=True)
    assert response.status_code == 200
    assert b"is approved: it cannot become approved." in response.content
    assert AuditEvent.objects.count() == events


def test_run_steps_are_post_only(pm, proposed_run, client_for):
    response = client_for(pm).get(reverse("runs:approve", args=[proposed_run.pk]))
    assert response.status_code == 405
    proposed_run.refresh_from_db()
    assert proposed_run.status == RebalanceRun.Status.PROPOSED


def test_another_pm_cannot_approve_a_run(other_pm, proposed_run, client_for):
    response = client_for(other_pm).post(reverse("runs:approve", args=[proposed_run.pk]))
    assert response.status_code == 404
    proposed_run.refresh_from_db()
    assert proposed_run.status == RebalanceRun.Status.PROPOSED


def test_a_running_run_polls_and_refreshes_when_done(pm, book, client_for):
    run = RebalanceRun.objects.create(created_by=pm, status=RebalanceRun.Status.RUNNING)
    run.portfolios.set([book["accounts"][0]])
    client = client_for(pm)
    page = client.get(run.get_absolute_url())
    assert b'hx-trigger="every 1s"' in page.content
    poll = client.get(run.get_absolute_url(), {"progress": "1"}, headers={"HX-Request": "true"})
    assert b"hx-trigger" in poll.content and b"<html" not in poll.content
    RebalanceRun.objects.filter(pk=run.pk).update(status=RebalanceRun.Status.PROPOSED)
    done = client.get(run.get_absolute_url(), {"progress": "1"}, headers={"HX-Request": "true"})
    assert done["HX-Refresh"] == "true"


def test_model_page_lists_targets(pm, book, client_for):
    response = client_for(pm).get(book["model"].get_absolute_url())
    assert response.status_code == 200
    assert [t.security.ticker for t in response.context["targets"]] == ["AAA", "BBB", "CCC", "DDD"]


def test_released_run_follows_its_orders_until_allocated(
    pm, trader, book, proposed_run, client_for, eager_celery, django_capture_on_commit_callbacks
):
    from orchestration import services as run_services
    from trading.services import routes as route_services

    client = client_for(pm)
    before = client.get(proposed_run.get_absolute_url())
    assert before.context["orders_live"] is False  # drafts wait for the PM, not the desk
    run_services.rebalance_run_approve(actor=pm, run_id=proposed_run.pk)
    run_services.rebalance_run_release(actor=pm, run_id=proposed_run.pk)
    url = proposed_run.get_absolute_url()
    page = client.get(url)
    assert page.context["orders_live"] is True
    assert f"{url}?orders=1".encode() in page.content
    partial = client.get(url, {"orders": "1"}, headers={"HX-Request": "true"})
    assert b"<html" not in partial.content and b"every 2s" in partial.content

    for block_id in set(proposed_run.orders.values_list("block_id", flat=True)):
        with django_capture_on_commit_callbacks(execute=True):
            route_services.route_create(actor=trader, block_id=block_id, broker=book["broker"])
    done = client.get(url, {"orders": "1"}, headers={"HX-Request": "true"})
    assert b"every 2s" not in done.content
    assert {o.status for o in done.context["orders"]} == {Order.Status.ALLOCATED}


def test_an_account_without_model_shows_why_it_cannot_be_rebalanced(pm, book, client_for):
    bare = Portfolio.objects.create(code="BARE", name="No model", manager=pm)
    Position.objects.create(portfolio=bare, security=book["securities"]["AAA"], quantity=5)
    client = client_for(pm)
    detail = client.get(bare.get_absolute_url())
    assert detail.status_code == 200
    assert detail.context["account"]["reason"]
    assert b"Cannot rebalance" in detail.content
    for sort in ("drift", "-drift"):
        listing = client.get(reverse("portfolios:portfolio-list"), {"sort": sort})
        codes = [row["portfolio"].code for row in listing.context["page"].object_list]
        assert codes[-1] == "BARE"  # no drift figure: last either way
