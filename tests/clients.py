"""Test clients signed in as a user: a browser session for pages, a token for the API."""

from __future__ import annotations

from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def page_client(user) -> Client:
    """A page client logged in as ``user``."""
    client = Client()
    client.force_login(user)
    return client


def api_client(user) -> APIClient:
    """An API client that sends ``user``'s token (made when missing)."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
