"""Compliance's own models. The audit trail it reads lives in the `audit` app."""
