"""A real browser (Playwright driving Debian's chromium) against pytest-django's live server.

The browser comes from OMS_BROWSER (default /usr/bin/chromium). Without it the
tests are skipped, except under OMS_REQUIRE_SERVICES=1 where they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import service_missing

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls
# (fixtures, checks) are synchronous and safe here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def role_groups(transactional_db):
    """The role groups, as the migration creates them.

    A transactional test's flush empties them, and serialized rollback cannot put
    them back here: Playwright's sync API runs the test in a greenlet whose context
    gets its own database connection, without the serialized copy.
    """
    from django.contrib.auth.models import Group

    from oms.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


@pytest.fixture(autouse=True)
def e2e_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def browser():
    # Module scope: playwright's sync API keeps an event loop running on this thread
    # until it stops, and later tests (the FIX engine's) run their own asyncio loops.
    path = os.environ.get("OMS_BROWSER", "/usr/bin/chromium")
    if not Path(path).exists():
        service_missing(f"no browser at {path} (set OMS_BROWSER)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev group installs it
        service_missing("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=BROWSER_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def log_in(browser, live_server):
    """A fresh browser session logged in as `user` (password pw-<username>, see make_user)."""
    contexts = []

    def open_as(user):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", f"pw-{user.username}")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return page

    yield open_as
    for context in contexts:
        context.close()
