"""The audit trail: append-only, one row per business event, hash-chained.

It sits low in the layers (above the kernel, below every domain app) because
every app writes to it, in the transaction of the change it records.
"""
