"""`oms.bulk`'s plain SQL: id lists bound as one array on PostgreSQL, and independent
statements read together (one round trip on PostgreSQL)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oms.bulk import read_together, sql_in, sql_not_in
from portfolios.models import Portfolio

pytestmark = pytest.mark.django_db


def _codes(where: str, params: list) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT code FROM {Portfolio._meta.db_table} WHERE {where} ORDER BY code", params
        )
        return [row[0] for row in cursor.fetchall()]


def _accounts(manager, n: int) -> list[int]:
    return [
        Portfolio.objects.create(code=f"P{i}", name=f"P{i}", manager=manager).pk for i in range(n)
    ]


def test_in_and_not_in_select_what_an_in_list_selects(pm):
    ids = _accounts(pm, 4)
    assert _codes(*sql_in("id", ids[1:3])) == ["P1", "P2"]
    assert _codes(*sql_in("id", [])) == []
    assert _codes(*sql_not_in("id", ids[1:3])) == ["P0", "P3"]
    assert _codes(*sql_not_in("id", [])) == ["P0", "P1", "P2", "P3"]
    assert _codes(*sql_in("code", ["P3", "P0"], type="text")) == ["P0", "P3"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the array is PostgreSQL's")
def test_on_postgresql_a_list_is_one_parameter_whatever_its_length():
    few, many = sql_in("id", [1, 2]), sql_in("id", range(10_000))
    assert few[0] == many[0] == "id = ANY(%s::bigint[])"
    assert len(few[1]) == len(many[1]) == 1
    assert sql_not_in("id", range(10_000))[0] == "id <> ALL(%s::bigint[])"


def test_statements_read_together_give_each_its_rows_in_order(pm):
    ids = _accounts(pm, 3)
    table = Portfolio._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        rows = read_together(
            [
                (f"SELECT code FROM {table} WHERE id = %s", [ids[2]]),
                (f"UPDATE {table} SET name = %s WHERE id = %s", ["renamed", ids[0]]),
                (
                    f"SELECT code FROM {table} WHERE {sql_in('id', ids)[0]} ORDER BY id",
                    sql_in("id", ids)[1],
                ),
                (f"SELECT code FROM {table} WHERE id = %s", [-1]),
            ]
        )
    assert rows == [[("P2",)], [], [("P0",), ("P1",), ("P2",)], []]
    assert Portfolio.objects.get(pk=ids[0]).name == "renamed"
    # one round trip on PostgreSQL (client-side binding, Django's default)
    assert len(queries) == (1 if connection.vendor == "postgresql" else 4)
