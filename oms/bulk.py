"""Set-based reads and writes the ORM makes slow: many ids, many rows each with values
of its own.

``collector_paused`` holds Python's cyclic garbage collector off while a step builds
tens of thousands of objects none of which is in a cycle: each few hundred new
containers start a collection, and the collections of the older generations walk
every object alive (a run's profile: a third of its CPU).

``ids_in`` filters on many ids with ONE array parameter on PostgreSQL (the ORM's
``__in`` sends one parameter per id, which the driver and the server parse each time);
``sql_in`` and ``sql_not_in`` are the same for plain SQL. ``read_together`` sends a few
independent SELECTs in one round trip on PostgreSQL.

Django's ``bulk_update`` builds one ``CASE WHEN pk = ... THEN ...`` per field and row,
and resolving those expressions costs more than the statement itself (about 8 ms of
Python per hundred rows). On PostgreSQL ``update_rows`` sends one ``UPDATE ... FROM
(VALUES ...)`` instead; elsewhere (the embedded SQLite) it is ``bulk_update``.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator, Sequence

from django.db import connection
from django.db.models import F, Q
from django.db.models.lookups import Lookup

#: Rows per statement (PostgreSQL takes at most 65,535 parameters in one).
_ROWS_PER_UPDATE = 1000


def update_rows(model, objs: Sequence, fields: Sequence[str]) -> None:
    """Write ``fields`` of each of ``objs`` (saved instances of ``model``), one
    statement per thousand rows. ``auto_now`` fields are written as they are on the
    objects: set them first."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields, batch_size=_ROWS_PER_UPDATE)
        return
    meta = model._meta
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    casts = [f"%s::{pk.db_type(connection)}"] + [
        f"%s::{field.db_type(connection)}" for field in columns
    ]
    row_sql = "(" + ", ".join(casts) + ")"
    names = ", ".join(["pk", *(f"v{n}" for n in range(len(columns)))])
    assignments = ", ".join(
        f"{connection.ops.quote_name(field.column)} = v.v{n}" for n, field in enumerate(columns)
    )
    table = connection.ops.quote_name(meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(objs), _ROWS_PER_UPDATE):
            chunk = objs[start : start + _ROWS_PER_UPDATE]
            params = []
            for obj in chunk:
                params.append(pk.get_db_prep_value(obj.pk, connection))
                params.extend(
                    field.get_db_prep_save(getattr(obj, field.attname), connection)
                    for field in columns
                )
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (VALUES "
                + ", ".join([row_sql] * len(chunk))
                + f") AS v({names}) WHERE {table}.{connection.ops.quote_name(pk.column)} = v.pk",
                params,
            )


class _AnyOf(Lookup):
    """``column = ANY(%s::bigint[])``: the ids as one array parameter. A lookup, so that
    its column is named through the query's aliases (U0, ... in a subquery)."""

    lookup_name = "any_of"
    prepare_rhs = False  # the list is the parameter, not a value of the column

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", (*params, list(self.rhs))


def ids_in(model, field: str, ids: Iterable[int]):
    """A filter: `field` of `model` is one of `ids`. On PostgreSQL the ids are one array
    parameter (``= ANY(%s)``): an ``IN`` list of the ten thousand accounts of a run is
    ten thousand parameters for the ORM to compile and the driver to bind, at every
    query that names them."""
    ids = list(ids)
    if connection.vendor != "postgresql":
        return Q(**{f"{field}__in": ids})
    model._meta.get_field(field)  # a field of the model, named as a filter names it
    return _AnyOf(F(field), ids)


def sql_in(column: str, values: Iterable, *, type: str = "bigint") -> tuple[str, list]:
    """Plain SQL: ``column`` is one of ``values``, and its parameters. On PostgreSQL one
    array parameter (``= ANY(%s::bigint[])``): the statement's text is the same whatever
    the number of values, so the driver parses it once per process, not once per call
    (a text of thousands of placeholders is never cached). Elsewhere an ``IN`` list."""
    values = list(values)
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::{type}[])", [values]
    return f"{column} IN ({', '.join(['%s'] * len(values)) or 'NULL'})", values


def sql_not_in(column: str, values: Iterable, *, type: str = "bigint") -> tuple[str, list]:
    """Plain SQL: ``column`` is none of ``values`` (true of every row when there are
    none), and its parameters; `sql_in`'s array on PostgreSQL (``<> ALL(%s)``)."""
    values = list(values)
    if connection.vendor == "postgresql":
        return f"{column} <> ALL(%s::{type}[])", [values]
    if not values:
        return "1 = 1", []
    return f"{column} NOT IN ({', '.join(['%s'] * len(values))})", values


def one_round_trip() -> bool:
    """Whether `read_together` sends its statements in one round trip here."""
    # psycopg sends several statements in one execute with client-side binding only
    # (Django's default); with server-side binding each is a statement of its own.
    options = connection.settings_dict.get("OPTIONS") or {}
    return connection.vendor == "postgresql" and not options.get("server_side_binding")


def read_together(statements: Sequence[tuple[str, Sequence]]) -> list[list[tuple]]:
    """The rows of each of ``statements`` (``(sql, params)``, independent of one another;
    a statement without rows, such as an INSERT, gives ``[]``), in their order. On
    PostgreSQL with client-side binding they go to the server as one text in ONE round
    trip (psycopg reads each one's rows with ``nextset``): a single order's check sends
    five small reads, and each round trip costs more than the server's work on it."""
    out: list[list[tuple]] = []
    with connection.cursor() as cursor:
        if one_round_trip() and len(statements) > 1:
            # each statement bound on its own (the driver keeps the parse of each text,
            # not of a long joined one), then sent as one text without parameters
            cursor.execute(
                "; ".join(cursor.mogrify(sql, list(params)) for sql, params in statements)
            )
            while True:
                out.append(cursor.fetchall() if cursor.description is not None else [])
                if not cursor.nextset():
                    break
        else:
            for sql, params in statements:
                cursor.execute(sql, list(params))
                out.append(cursor.fetchall() if cursor.description is not None else [])
    if len(out) != len(statements):
        raise RuntimeError(f"{len(statements)} statements gave {len(out)} results")
    return out


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off inside, as it was after (reference counting
    still frees what is no longer used; only cycles wait for the next collection). For
    a step that builds many objects with no cycles among them, such as a run's chunk
    (frames, its orders, their values): the collector would walk every object alive
    again and again while they are made."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
