"""The shared kernel: what every app may use, importing no app of ours.

Roles and the one permission predicate, state maps, where a change came from,
numbers, API base classes, idempotency, and the helper through which services
enqueue tasks after commit. Its app label is ``oms`` (its tables and migrations
predate the split from the project package, ``config``).
"""
