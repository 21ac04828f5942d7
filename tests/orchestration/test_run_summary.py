"""The what-if a run keeps per account (``RebalanceRun.summary``): built column by
column from the engine's frame, added chunk by chunk in the database, never read back
by the chunks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orchestration import services as run_services
from portfolios.models import RebalanceRun
from tests.conftest import service_missing

from .test_run_at_scale import clone_accounts


def _reference(frame: pd.DataFrame, codes: dict, keep) -> dict:
    """The summary as the run built it row by row (``to_dict`` and `_plain` per value)."""
    return {
        codes[row["account"]]: {k: run_services._plain(v) for k, v in row.items() if k != "account"}
        for row in frame.to_dict("records")
        if row["account"] in keep
    }


def test_the_summary_is_what_the_row_by_row_build_made():
    frame = pd.DataFrame(
        {
            "account": [11, 12, 13, 14],
            "base_currency": ["USD", "EUR", "USD", "GBP"],
            "model": pd.Series([np.int64(3), 4, 5, 6], dtype=object),
            "value": [1234.5678912345, math.nan, math.inf, 0.1 + 0.2],
            "trades": np.array([3, 0, 7, 1], dtype=np.int64),
            "out_of_band": np.array([True, False, True, False]),
            "flagged": pd.Series([np.True_, None, "x", 2.5], dtype=object),
            "status": pd.Categorical(["rebalanced", "in_band", "no_trade", "rebalanced"]),
            "turnover": np.array([1e-7, 5e-7, 0.12345649999, -0.0000005], dtype=float),
        }
    )
    codes = {11: "A", 12: "B", 13: "C", 14: "D"}
    expected = _reference(frame, codes, {11, 13, 14})
    got = run_services._summary_rows(frame, codes, {11, 13, 14})
    assert got == expected
    assert [type(v) for v in got["A"].values()] == [type(v) for v in expected["A"].values()]
    assert got["A"]["trades"] == 3.0 and isinstance(got["A"]["trades"], float)
    assert got["A"]["out_of_band"] is True and got["A"]["flagged"] is True
    assert run_services._summary_rows(frame.iloc[:0], codes, {11}) == {}


@pytest.mark.django_db
def test_a_chunked_run_keeps_the_summary_of_a_run_in_one_chunk(pm, book, settings):
    accounts = [*book["accounts"], *clone_accounts(book, pm, 3)]
    whole = run_services.rebalance_run_create(actor=pm, portfolios=accounts)
    assert whole.status == RebalanceRun.Status.PROPOSED and len(whole.summary) >= 4
    run_services.rebalance_run_cancel(actor=pm, run_id=whole.pk)
    settings.OMS_REBALANCE_INLINE_LIMIT = 0  # the run waits for the workers
    chunked = run_services.rebalance_run_create(actor=pm, portfolios=accounts, chunk_size=2)
    run_services.rebalance_run_start(run_id=chunked.pk)
    for chunk in range(chunked.chunks_total):
        run_services.rebalance_chunk_execute(run_id=chunked.pk, chunk=chunk)
    chunked.refresh_from_db()
    assert chunked.status == RebalanceRun.Status.PROPOSED and chunked.chunks_total == 3
    assert chunked.summary == whole.summary
    assert chunked.skipped == whole.skipped


@pytest.mark.django_db
def test_a_chunk_neither_reads_nor_sends_again_what_the_run_kept_before(pm, book, settings):
    """A chunk adds its accounts to the run's summary: the figures of the chunks before
    it are not read back nor written again (over the whole book in chunks, that would
    grow with the square of the accounts)."""
    if connection.vendor != "postgresql":  # SQLite merges in Python (no jsonb ||)
        service_missing("PostgreSQL (DATABASE_URL): the run's summary merged by jsonb ||")
    settings.OMS_REBALANCE_INLINE_LIMIT = 0
    accounts = [*book["accounts"], *clone_accounts(book, pm, 1)]
    run = run_services.rebalance_run_create(actor=pm, portfolios=accounts, chunk_size=1)
    run_services.rebalance_run_start(run_id=run.pk)
    run_services.rebalance_chunk_execute(run_id=run.pk, chunk=0)
    first = RebalanceRun.objects.get(pk=run.pk).summary
    assert len(first) == 1
    with CaptureQueriesContext(connection) as captured:
        run_services.rebalance_chunk_execute(run_id=run.pk, chunk=1)
    table = RebalanceRun._meta.db_table
    on_run = [q["sql"] for q in captured if f'"{table}"' in q["sql"]]
    assert on_run
    code = next(iter(first))
    for sql in on_run:
        head = sql.split(" FROM ")[0] if sql.startswith("SELECT") else ""
        assert f'"{table}"."summary"' not in head, sql
        assert code not in sql, sql  # the first chunk's account is not sent again
    run.refresh_from_db()
    assert len(run.summary) == 2 and run.summary[code] == first[code]


@pytest.mark.django_db
def test_ids_in_names_its_column_inside_a_subquery_too(book):
    """`ids_in` filters by the column of the query it is in, whatever alias that query
    gives its table: as a subquery (the ORM names its tables U0, U1, ...) too."""
    from orchestration.selectors import ids_in
    from portfolios.models import Portfolio, Position

    account = book["accounts"][0]
    held = Position.objects.filter(ids_in(Position, "portfolio_id", [account.pk]))
    assert set(held.values_list("portfolio_id", flat=True)) == {account.pk}
    holding = Portfolio.objects.filter(pk__in=held.values("portfolio_id"))
    assert list(holding) == [account]
    # and a table joined to itself: the outer accounts are not the inner ones
    others = Portfolio.objects.exclude(
        pk__in=Portfolio.objects.filter(ids_in(Portfolio, "id", [account.pk])).values("pk")
    )
    assert account not in others and others.exists()
