"""How a service asks for work in the background without importing a task.

Services name the task (``"trading.tasks.route_send"``) and the ids it takes; the
task is sent only once the transaction that made the work commits, so that a
worker never looks for a row that is not there yet (or was rolled back). Each
app's ``AppConfig.ready`` imports its ``tasks`` module, so that every task is
registered in every process that can send it.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction


def enqueue_on_commit(task_name: str, *args: object) -> None:
    """Send ``task_name(*args)`` after the current transaction commits (at once
    outside a transaction). Arguments are ids and plain values, never objects."""

    transaction.on_commit(lambda: enqueue(task_name, *args))


def enqueue(task_name: str, *args: object) -> None:
    """Send ``task_name(*args)`` now: for work that no transaction of the caller's
    creates (a periodic sweep re-sending what was lost)."""
    current_app.tasks[task_name].delay(*args)
