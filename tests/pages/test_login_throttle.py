"""Logins are throttled: per username and per client address, with a message that
says when to try again; the admin's login and the API's tokens count the same way."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.OMS_LOGIN_FAILURES_PER_USERNAME = 3
    settings.OMS_LOGIN_FAILURES_PER_ADDRESS = 5
    settings.OMS_LOGIN_LOCKOUT_SECONDS = 600


def _login(username, password, address="10.0.0.1", path=None):
    client = Client(REMOTE_ADDR=address)
    return client, client.post(
        path or reverse("login"), {"username": username, "password": password}
    )


def test_a_username_with_too_many_failures_is_refused_even_with_the_right_password(pm):
    for _ in range(3):
        _, response = _login("pm", "wrong")
        assert response.status_code == 200
        assert b"Please enter a correct username and password" in response.content
    client, response = _login("pm", "pw-pm", address="10.0.0.2")  # from elsewhere too
    assert response.status_code == 429
    assert response["Retry-After"] == "600"
    assert b"Too many failed logins for pm. Try again in 10 minutes" in response.content
    assert "_auth_user_id" not in client.session


def test_the_username_counts_whatever_its_case(pm):
    for name in ("PM", "pm", "Pm"):
        _login(name, "wrong")
    _, response = _login("pm", "pw-pm")
    assert response.status_code == 429


def test_an_address_with_too_many_failures_is_refused_for_every_name(pm, trader):
    for number in range(5):
        _login(f"nobody{number}", "wrong", address="10.0.0.9")
    _, response = _login("trader", "pw-trader", address="10.0.0.9")
    assert response.status_code == 429
    assert b"Too many failed logins from your address" in response.content
    client, response = _login("trader", "pw-trader", address="10.0.0.10")
    assert response.status_code == 302, "another address logs in"


def test_a_success_clears_the_username_count(pm):
    for _ in range(2):
        _login("pm", "wrong")
    _, response = _login("pm", "pw-pm")
    assert response.status_code == 302
    for _ in range(2):
        _login("pm", "wrong")
    _, response = _login("pm", "pw-pm")
    assert response.status_code == 302, "two failures after a success are not three"


def test_the_window_ends(pm, settings):
    settings.OMS_LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(3):
        _login("pm", "wrong")
    assert _login("pm", "pw-pm")[1].status_code == 429
    import time

    time.sleep(1.2)
    assert _login("pm", "pw-pm")[1].status_code == 302


def test_the_admins_login_is_throttled_too(ops):
    for _ in range(3):
        _login("ops", "wrong", path="/admin/login/")
    client, response = _login("ops", "pw-ops", path="/admin/login/")
    assert b"Too many failed logins for ops" in response.content
    assert "_auth_user_id" not in client.session


def test_the_proxy_setting_names_the_client_behind_it(pm, settings):
    settings.OMS_NUM_PROXIES = 1
    for number in range(5):
        Client(
            REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"203.0.113.7, 198.51.100.{number}"
        ).post(reverse("login"), {"username": f"x{number}", "password": "wrong"})
    # The proxy wrote 198.51.100.N each time: five different clients, none blocked.
    _, response = _login("pm", "pw-pm", address="10.0.0.1")
    assert response.status_code == 302


def test_wrong_api_tokens_from_one_address_are_throttled(pm):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=pm).key
    api = Client(REMOTE_ADDR="10.0.0.5")
    for number in range(5):
        response = api.get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token wrong{number}")
        assert response.status_code == 401
    response = api.get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 429
    assert response["Retry-After"] == "600"
    assert "wrong token from your address" in response.json()["detail"]
    other = Client(REMOTE_ADDR="10.0.0.6")
    assert other.get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
