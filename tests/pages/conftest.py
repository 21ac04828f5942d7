"""Fixtures of the page tests: a logged-in client per persona and a book with
orders in every stage (a proposed run, released orders in a block)."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture(autouse=True)
def page_settings(settings):
    # Personas are created per test: a fast hasher keeps the matrix quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def client_for(db):
    def make(user) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def released_block(pm, book):
    """Two accounts' orders for AAA, approved and released: one open block."""
    from tests.desk import released_block

    return released_block(pm, book, "100", "50")


@pytest.fixture
def proposed_run(pm, book):
    from orchestration.services import rebalance_run_create

    return rebalance_run_create(actor=pm, portfolios=[book["accounts"][0]], parameters={})
