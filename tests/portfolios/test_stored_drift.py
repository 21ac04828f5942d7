"""Stored drift: the refresh service stores the engine's figures in bulk, the services
that change their inputs mark them stale, the periodic task refreshes what is stale,
and the dashboard (page and API) reads them in a fixed number of queries."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from portfolios.models import AccountDrift, CashBalance, Portfolio, Position, Price
from portfolios.selectors import drift_by_account
from portfolios.services.drift import drift_mark_stale, drift_refresh
from tests.clients import api_client, page_client
from tests.conftest import service_missing

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    """The dashboard keeps its rendered results by user, query and figures: no test
    sees another's."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def client_for():
    return page_client


@pytest.fixture
def api_client_for():
    return api_client


def _more_accounts(book, pm, count: int, start: int = 10) -> list[Portfolio]:
    """Copies of ACC1, in bulk (the page's query count must not follow the count)."""
    template = book["accounts"][0]
    made = Portfolio.objects.bulk_create(
        Portfolio(code=f"X{start + n:04d}", name=f"Copy {n}", manager=pm, model=book["model"])
        for n in range(count)
    )
    Position.objects.bulk_create(
        Position(portfolio=p, security_id=pos.security_id, quantity=pos.quantity * (1 + n % 3))
        for n, p in enumerate(made)
        for pos in template.positions.all()
    )
    CashBalance.objects.bulk_create(
        CashBalance(portfolio=p, currency="USD", amount=Decimal(1000 * (n % 7)))
        for n, p in enumerate(made)
    )
    return made


def test_the_refresh_stores_the_engine_s_figures(book):
    result = drift_refresh()
    assert result.accounts == 2 and result.not_valued == 0
    engine = drift_by_account([p.pk for p in book["accounts"]])
    for account in book["accounts"]:
        stored = AccountDrift.objects.get(portfolio=account)
        live = engine[account.pk]
        assert float(stored.value) == pytest.approx(live["value"], abs=1e-3)
        assert float(stored.drift) == pytest.approx(live["drift"], abs=1e-7)
        assert float(stored.max_abs_drift) == pytest.approx(live["max_abs_drift"], abs=1e-7)
        assert float(stored.cash_weight) == pytest.approx(live["cash_weight"], abs=1e-7)
        assert float(stored.cash_target) == pytest.approx(live["cash_target"], abs=1e-7)
        assert stored.out_of_band == live["out_of_band"]
        assert abs(float(stored.largest_drift)) == pytest.approx(live["max_abs_drift"], abs=1e-7)
        assert stored.model_id == book["model"].pk
        assert stored.prices_as_of == timezone.now().date()
        assert not stored.stale and stored.reason == ""


def test_the_largest_single_drift_names_its_security(book):
    """ACC1 holds 600 AAA at 100 of about 102,000: 59% against a 40% target."""
    drift_refresh()
    stored = AccountDrift.objects.get(portfolio=book["accounts"][0])
    assert stored.largest_drift_security.ticker == "AAA"
    assert stored.largest_drift > 0


def test_an_account_that_cannot_be_valued_is_stored_with_its_reason(book, pm):
    odd = Portfolio.objects.create(code="JPY1", name="Yen", manager=pm, model=book["model"])
    CashBalance.objects.create(portfolio=odd, currency="JPY", amount=Decimal(1000))
    assert drift_refresh().not_valued == 1
    stored = AccountDrift.objects.get(portfolio=odd)
    assert "no FX rate from JPY" in stored.reason
    assert stored.drift is None and stored.out_of_band is False


def test_an_account_without_a_model_leaves_the_others_valued(book, pm):
    """One account with no model among them (the demo's multi-asset account) and every
    account was stored "not valued" with the reason "nan": the engine's reasons, None
    and a text, became a text column whose missing values are NaN."""
    loose = Portfolio.objects.create(code="LOOSE", name="No model", manager=pm)
    CashBalance.objects.create(portfolio=loose, currency="USD", amount=Decimal(1000))
    assert drift_refresh().not_valued == 1
    stored = {d.portfolio.code: d for d in AccountDrift.objects.select_related("portfolio")}
    assert stored["LOOSE"].drift is None and stored["LOOSE"].reason
    for code in ("ACC1", "ACC2"):
        assert stored[code].reason == "" and stored[code].drift is not None


def test_the_refresh_is_set_based_and_records_no_business_event(book, pm):
    """Derived figures: the refresh writes only the drift table, with a number of
    statements that does not grow with the accounts, and appends no audit event."""
    _more_accounts(book, pm, 3)
    drift_refresh()

    def statements(count_accounts):
        seen: list[str] = []

        def watch(execute, sql, params, many, context):
            seen.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(watch):
            drift_refresh()
        return seen

    few = statements(5)
    _more_accounts(book, pm, 40, start=100)
    many = statements(45)
    assert len(few) == len(many)
    writes = [sql for sql in many if sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert writes and all("portfolios_accountdrift" in sql for sql in writes)
    before = AuditEvent.objects.count()
    drift_refresh()
    assert AuditEvent.objects.count() == before


def test_chunks_give_the_same_figures(book, pm):
    _more_accounts(book, pm, 7)
    drift_refresh()
    whole = {d.pk: (d.drift, d.value) for d in AccountDrift.objects.all()}
    assert drift_refresh(chunk=2).chunks == 5
    assert {d.pk: (d.drift, d.value) for d in AccountDrift.objects.all()} == whole


def test_a_booked_fill_marks_the_account_stale_and_refreshes_it_on_commit(
    book, eager_celery, django_capture_on_commit_callbacks
):
    from portfolios.services.holdings import holdings_book_fill

    drift_refresh()
    acc1, acc2 = book["accounts"]
    before = AccountDrift.objects.get(portfolio=acc1).drift
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        holdings_book_fill(
            portfolio=acc1,
            security=book["securities"]["BBB"],
            buying=True,
            quantity=Decimal(100),
            price=Decimal(50),
            on_date=timezone.now().date(),
        )
    assert AccountDrift.objects.get(portfolio=acc1).stale
    assert not AccountDrift.objects.get(portfolio=acc2).stale
    for callback in callbacks:
        callback()
    after = AccountDrift.objects.get(portfolio=acc1)
    assert not after.stale
    assert after.drift < before  # buying the underweight BBB with spare cash
    assert float(after.drift) == pytest.approx(drift_by_account([acc1.pk])[acc1.pk]["drift"])


def test_a_new_price_marks_the_accounts_holding_it(book, ops):
    from portfolios.services.reference import prices_create

    drift_refresh()
    acc1, acc2 = book["accounts"]
    eee = book["securities"]["EEE"]  # held by ACC1 only, in no model
    Price.objects.filter(security=eee, as_of=timezone.now().date()).delete()
    prices_create(
        actor=ops, prices=[{"security": eee, "as_of": timezone.now().date(), "price": 12}]
    )
    assert AccountDrift.objects.get(portfolio=acc1).stale
    assert not AccountDrift.objects.get(portfolio=acc2).stale


def test_a_mark_does_not_rewrite_rows_already_stale(book):
    drift_refresh()
    ids = [p.pk for p in book["accounts"]]
    with transaction.atomic():
        assert drift_mark_stale(portfolio_ids=ids, refresh=False) == 2
        assert drift_mark_stale(portfolio_ids=ids, refresh=False) == 0
        assert drift_mark_stale(model_ids=[book["model"].pk], refresh=False) == 0


def test_a_change_of_model_is_stale_without_a_mark(book, client_for, pm):
    from portfolios.models import ModelPortfolio

    drift_refresh()
    other = ModelPortfolio.objects.create(name="Other", cash_weight=Decimal(1))
    Portfolio.objects.filter(pk=book["accounts"][0].pk).update(model=other)
    response = client_for(pm).get(reverse("portfolios:drift-dashboard"))
    stale = {p.code: p.drift_stale for p in response.context["page"].object_list}
    assert stale == {"ACC1": True, "ACC2": False}


def test_the_periodic_task_refreshes_what_is_stale_only(book, pm):
    from portfolios.tasks import drift_refresh_stale

    assert drift_refresh_stale() == 2  # never computed
    assert drift_refresh_stale() == 0
    with transaction.atomic():
        drift_mark_stale(security_ids=[book["securities"]["EEE"].pk], refresh=False)
    assert drift_refresh_stale() == 1
    assert not AccountDrift.objects.filter(inputs_changed_at__gt=timezone.now()).exists()
    assert drift_refresh_stale() == 0


# --- The dashboard -------------------------------------------------------------------


def _codes(response) -> list[str]:
    """The accounts a dashboard answer lists, in order (read from the HTML: a cached
    answer has no template context)."""
    import re

    return re.findall(r'data-account="([^"]+)"', response.content.decode())


def test_the_dashboard_sorts_by_drift_and_by_largest_drift(book, pm, client_for):
    _more_accounts(book, pm, 6)
    drift_refresh()
    client = client_for(pm)
    url = reverse("portfolios:drift-dashboard")
    for key, field in (("drift", "drift"), ("largest", "max_abs_drift")):
        down = client.get(url, {"sort": f"-{key}"})
        up = client.get(url, {"sort": key})
        values = [getattr(p.drift_figures, field) for p in down.context["page"].object_list]
        assert values == sorted(values, reverse=True)
        values = [getattr(p.drift_figures, field) for p in up.context["page"].object_list]
        assert values == sorted(values)
    default = client.get(url)
    assert _codes(default) == _codes(client.get(url, {"sort": "-drift"}))


def test_the_dashboard_filters(book, pm, other_pm, client_for):
    from portfolios.models import ModelPortfolio

    acc1, acc2 = book["accounts"]
    other_model = ModelPortfolio.objects.create(name="All cash", cash_weight=Decimal(1))
    cash_only = Portfolio.objects.create(code="CASH", name="Cash", manager=pm, model=other_model)
    CashBalance.objects.create(portfolio=cash_only, currency="USD", amount=Decimal(1000))
    eur = Portfolio.objects.create(
        code="EUR1", name="Euro", manager=other_pm, model=book["model"], base_currency="EUR"
    )
    CashBalance.objects.create(portfolio=eur, currency="EUR", amount=Decimal(1000))
    drift_refresh()
    url = reverse("portfolios:drift-dashboard")
    ops = client_for(pm)
    assert set(_codes(ops.get(url))) == {"ACC1", "ACC2", "CASH"}  # a PM sees their own
    assert set(_codes(ops.get(url, {"model": other_model.pk}))) == {"CASH"}
    assert set(_codes(ops.get(url, {"out_of_band": "yes"}))) == {"ACC1", "ACC2"}
    assert set(_codes(ops.get(url, {"out_of_band": "no"}))) == {"CASH"}
    figures = {d.portfolio.code: d for d in AccountDrift.objects.select_related("portfolio")}
    above = {c for c in ("ACC1", "ACC2", "CASH") if figures[c].cash_weight > figures[c].cash_target}
    below = {c for c in ("ACC1", "ACC2", "CASH") if figures[c].cash_weight < figures[c].cash_target}
    assert above and below == set()  # both accounts hold more cash than 5%; CASH is at 100%
    assert set(_codes(ops.get(url, {"cash": "above"}))) == above
    assert set(_codes(ops.get(url, {"cash": "below"}))) == below
    assert set(_codes(ops.get(url, {"q": "ACC2"}))) == {"ACC2"}


def test_the_dashboard_filters_by_manager_and_currency_for_who_sees_all(
    book, pm, other_pm, ops, client_for
):
    eur = Portfolio.objects.create(
        code="EUR1", name="Euro", manager=other_pm, model=book["model"], base_currency="EUR"
    )
    CashBalance.objects.create(portfolio=eur, currency="EUR", amount=Decimal(1000))
    drift_refresh()
    url = reverse("portfolios:drift-dashboard")
    client = client_for(ops)
    assert set(_codes(client.get(url))) == {"ACC1", "ACC2", "EUR1"}
    assert set(_codes(client.get(url, {"manager": other_pm.pk}))) == {"EUR1"}
    assert set(_codes(client.get(url, {"currency": "EUR"}))) == {"EUR1"}
    response = client.get(url, {"sort": "code"})
    summary = response.context["summary"]
    assert summary["accounts"] == 3
    assert summary["out_of_band"] == 3  # the euro account is all cash against the model
    assert {row["base_currency"] for row in summary["aum"]} == {"EUR", "USD"}
    assert sum(b["accounts"] for b in summary["histogram"]) == 3
    bad = client.get(url, {"currency": "XXX"})
    assert bad.status_code == 200 and _codes(bad) == []
    assert b"Select a valid choice" in bad.content


def test_the_dashboard_shows_stale_figures_and_never_computed_ones(book, pm, client_for):
    drift_refresh(portfolio_ids=[book["accounts"][0].pk])
    with transaction.atomic():
        drift_mark_stale(portfolio_ids=[book["accounts"][0].pk], refresh=False)
    response = client_for(pm).get(reverse("portfolios:drift-dashboard"), {"sort": "code"})
    rows = {p.code: p for p in response.context["page"].object_list}
    assert rows["ACC1"].drift_stale and rows["ACC2"].drift_stale
    assert response.content.count(b"data-stale") == 2
    assert b"not computed yet" in response.content
    assert response.context["summary"]["stale"] == 2
    only = client_for(pm).get(reverse("portfolios:drift-dashboard"), {"stale": "on"})
    assert len(_codes(only)) == 2


@pytest.mark.parametrize("count", [3, 60])
def test_the_dashboard_s_queries_do_not_follow_the_accounts(
    count, book, pm, client_for, django_assert_max_num_queries
):
    _more_accounts(book, pm, count)
    drift_refresh()
    client = client_for(pm)
    client.get(reverse("portfolios:drift-dashboard"))  # the session, once
    with django_assert_max_num_queries(13):
        response = client.get(
            reverse("portfolios:drift-dashboard"),
            {"sort": "-largest", "out_of_band": "yes", "model": book["model"].pk},
        )
    assert response.status_code == 200
    assert len(response.context["page"].object_list) == min(count + 2, 50)


def test_the_same_query_again_is_served_from_the_cache_until_the_figures_change(
    book, pm, client_for, django_assert_num_queries
):
    from portfolios.services.holdings import holdings_book_fill

    drift_refresh()
    client = client_for(pm)
    url = reverse("portfolios:drift-dashboard")
    first = client.get(url)
    # the session, the user, their roles and the figures' version: the answer is kept
    # whole (no rendering, no filter form and its three choice lists)
    with django_assert_num_queries(4):
        again = client.get(url)
    assert again.content == first.content
    assert _codes(again) == _codes(first) and len(_codes(first)) == 2
    with transaction.atomic():
        holdings_book_fill(
            portfolio=book["accounts"][0],
            security=book["securities"]["BBB"],
            buying=True,
            quantity=Decimal(100),
            price=Decimal(50),
            on_date=timezone.now().date(),
        )
    marked = client.get(url)
    assert marked.content.count(b"data-stale") == 1  # the mark changed the version
    drift_refresh()
    assert client.get(url).content.count(b"data-stale") == 0


def test_an_account_gone_is_gone_from_the_kept_answer(book, pm, client_for):
    """Deleting an account writes no figure (its row goes with it): the version counts
    the stored rows, so the kept answer is not served with the account still on it."""
    drift_refresh()
    client = client_for(pm)
    url = reverse("portfolios:drift-dashboard")
    assert len(_codes(client.get(url))) == 2
    gone = book["accounts"][0]
    Portfolio.objects.filter(pk=gone.pk).delete()
    assert gone.code not in _codes(client.get(url))


def test_the_poll_is_answered_from_the_cache_too(book, pm, client_for, django_assert_num_queries):
    drift_refresh()
    client = client_for(pm)
    url = reverse("portfolios:drift-dashboard")
    poll = {"HX-Request": "true", "HX-Target": "results"}
    client.get(url)  # the page: the results alone are kept too
    with django_assert_num_queries(4):  # the session, the user, their roles, the version
        first = client.get(url, headers=poll)
    assert b"<html" not in first.content and len(_codes(first)) == 2
    with django_assert_num_queries(4):
        assert client.get(url, headers=poll).content == first.content


def _page_token(response) -> str:
    import re

    return re.search(rb'"X-CSRFToken": "([^"]+)"', response.content).group(1).decode()


def test_a_kept_page_is_served_only_to_the_browser_whose_csrf_token_it_carries(
    book, pm, client_for
):
    from django.middleware.csrf import _does_token_match

    drift_refresh()
    url = reverse("portfolios:drift-dashboard")
    here, there = client_for(pm), client_for(pm)  # one manager, two browsers
    for client in (here, there, here, there):
        response = client.get(url)
        secret = client.cookies["csrftoken"].value
        assert _does_token_match(_page_token(response), secret)
    assert len(_codes(response)) == 2


def test_a_kept_page_is_never_another_user_s(book, pm, other_pm, client_for):
    eur = Portfolio.objects.create(
        code="EUR1", name="Euro", manager=other_pm, model=book["model"], base_currency="EUR"
    )
    CashBalance.objects.create(portfolio=eur, currency="EUR", amount=Decimal(1000))
    drift_refresh()
    url = reverse("portfolios:drift-dashboard")
    mine, theirs = client_for(pm), client_for(other_pm)
    for _ in range(2):  # the second time from the cache
        assert set(_codes(mine.get(url))) == {"ACC1", "ACC2"}
        assert set(_codes(theirs.get(url))) == {"EUR1"}
        assert set(
            _codes(mine.get(url, headers={"HX-Request": "true", "HX-Target": "results"}))
        ) == {"ACC1", "ACC2"}


def test_a_message_waiting_is_shown_not_lost_behind_a_kept_page(book, pm, client_for):
    from django.contrib.messages import constants
    from django.contrib.messages.storage.base import Message
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.http import HttpRequest

    drift_refresh()
    url = reverse("portfolios:drift-dashboard")
    client = client_for(pm)
    client.get(url)
    assert b"A message for you" not in client.get(url).content  # kept
    storage = CookieStorage(HttpRequest())
    client.cookies[storage.cookie_name] = storage._encode(
        [Message(constants.SUCCESS, "A message for you")]
    )
    assert b"A message for you" in client.get(url).content
    assert b"A message for you" not in client.get(url).content  # shown once


def test_the_dashboard_answers_htmx_with_its_results_only(book, pm, client_for):
    drift_refresh()
    response = client_for(pm).get(
        reverse("portfolios:drift-dashboard"),
        {"q": "ACC1"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert b"<html" not in response.content
    assert b'data-chart="histogram"' in response.content
    assert b"ACC2" not in response.content


def test_the_dashboard_is_refused_without_the_role(book, outsider, client_for):
    response = client_for(outsider).get(reverse("portfolios:drift-dashboard"))
    assert response.status_code in (302, 403)


def test_an_account_s_weights_by_security_and_by_asset_class(book, pm, other_pm, client_for):
    drift_refresh()
    acc1 = book["accounts"][0]
    response = client_for(pm).get(reverse("portfolios:drift-account", args=[acc1.pk]))
    assert response.status_code == 200
    chart = response.context["chart"]
    assert "AAA" in chart["securities"]["labels"] and chart["securities"]["labels"][-1] == "Cash"
    classes = {row["label"]: row for row in response.context["by_class"]}
    assert set(classes) == {"Equity", "Fixed income", "Cash"}
    assert classes["Equity"]["target"] == pytest.approx(0.80)
    total = sum(row["weight"] for row in response.context["by_class"])
    assert math.isclose(total, 1.0, abs_tol=1e-9)
    assert (
        client_for(other_pm).get(reverse("portfolios:drift-account", args=[acc1.pk])).status_code
        == 404
    )


# --- The API -------------------------------------------------------------------------


def test_the_api_lists_the_dashboard_rows_with_the_same_filters(
    book, pm, api_client_for, django_assert_max_num_queries
):
    drift_refresh()
    client = api_client_for(pm)
    client.get("/api/v1/drift/")
    with django_assert_max_num_queries(5):
        response = client.get("/api/v1/drift/", {"sort": "-largest"})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["code"] for r in rows] == ["ACC1", "ACC2"] or len(rows) == 2
    assert rows[0]["figures"]["largest_drift_security"] in {"AAA", "BBB", "CCC", "DDD", "EEE", None}
    assert rows[0]["stale"] is False
    assert Decimal(rows[0]["figures"]["max_abs_drift"]) >= Decimal(
        rows[1]["figures"]["max_abs_drift"]
    )
    only = client.get("/api/v1/drift/", {"q": "ACC2", "out_of_band": "yes"}).json()["results"]
    assert [r["code"] for r in only] == ["ACC2"]
    bad = client.get("/api/v1/drift/", {"cash": "sideways"})
    assert bad.status_code == 400
    assert "cash" in str(bad.json())


def test_a_new_price_marks_the_accounts_of_models_holding_it_through_a_sleeve(book, ops, pm):
    """DDD is a target of Core, held by no account. ACC2 is on Outer, a model of models
    whose one sleeve is Core: DDD's price is one of its inputs as much as ACC1's (on
    Core itself). Without a price for DDD neither can be valued; when the price comes,
    both must be marked, or ACC2 stays 'not valued' until someone edits its model."""
    from portfolios.services.models import model_assign, model_create
    from portfolios.services.reference import prices_create

    acc1, acc2 = book["accounts"]
    outer = model_create(
        actor=pm, name="Outer", targets=[], sleeves=[{"model": book["model"], "weight": Decimal(1)}]
    )
    model_assign(actor=pm, model_id=outer.pk, portfolio_ids=[acc2.pk])
    ddd = book["securities"]["DDD"]
    Price.objects.filter(security=ddd).delete()
    drift_refresh()
    assert AccountDrift.objects.get(portfolio=acc2).drift is None  # not valued
    prices_create(
        actor=ops, prices=[{"security": ddd, "as_of": timezone.now().date(), "price": 40}]
    )
    assert AccountDrift.objects.get(portfolio=acc1).stale
    assert AccountDrift.objects.get(portfolio=acc2).stale


def _lock_order(book_it) -> list[str]:
    """The order in which ``book_it`` takes its row locks on positions, cash and stored
    drift (a SELECT ... FOR UPDATE, or the UPDATE that marks drift stale)."""
    from django.test.utils import CaptureQueriesContext

    tables = {
        Position._meta.db_table: "positions",
        CashBalance._meta.db_table: "cash",
        AccountDrift._meta.db_table: "drift",
    }
    taken: list[str] = []
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        book_it()
    for query in queries.captured_queries:
        sql = query["sql"]
        for table, name in tables.items():
            head = sql.split(" WHERE ")[0]
            locks = sql.startswith("SELECT") and "FOR UPDATE" in sql
            marks = sql.startswith("UPDATE") and name == "drift"
            if f'"{table}"' in head and (locks or marks) and name not in taken:
                taken.append(name)
    return taken


@pytest.mark.parametrize("many", [False, True], ids=["one fill", "many fills"])
def test_booking_fills_locks_holdings_before_marking_drift(book, many):
    """Every writer of holdings takes an account's position, then its cash, then its
    stored drift row (the UPDATE that marks it stale locks it): a writer that marked the
    drift first would deadlock with one that holds the position and marks it next."""
    from portfolios.services.holdings import Fill, holdings_book_fill, holdings_book_fills

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL): row locks")
    drift_refresh()
    acc1 = book["accounts"][0]
    security, today = book["securities"]["BBB"], timezone.now().date()

    def book_it():
        if many:
            holdings_book_fills(
                security=security,
                fills=[Fill(acc1.pk, True, Decimal(100), Decimal(50), Decimal(0))],
                on_date=today,
            )
        else:
            holdings_book_fill(
                portfolio=acc1,
                security=security,
                buying=True,
                quantity=Decimal(100),
                price=Decimal(50),
                on_date=today,
            )

    assert _lock_order(book_it) == ["positions", "cash", "drift"]
