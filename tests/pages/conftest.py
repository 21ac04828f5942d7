"""Fixtures of the page tests: a logged-in client per persona and a book with
orders in every stage (a proposed run, released orders in a block)."""

from __future__ import annotations

from decimal import Decimal

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
    from trading.services import orders as order_services

    orders = [
        order_services.order_create(
            actor=pm,
            portfolio=account,
            security=book["securities"]["AAA"],
            side="buy",
            quantity=Decimal(quantity),
        )
        for account, quantity in zip(book["accounts"], ("100", "50"), strict=True)
    ]
    ids = [order.pk for order in orders]
    order_services.orders_approve(actor=pm, order_ids=ids)
    order_services.orders_release(actor=pm, order_ids=ids)
    orders[0].refresh_from_db()
    return orders[0].block


@pytest.fixture
def proposed_run(pm, book):
    from orchestration.services import rebalance_run_create

    return rebalance_run_create(actor=pm, portfolios=[book["accounts"][0]], parameters={})
