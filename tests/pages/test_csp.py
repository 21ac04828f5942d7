"""Pages send a Content-Security-Policy that their own scripts satisfy.

The policy (config/settings.py, OMS_CONTENT_SECURITY_POLICY) allows scripts and
styles from this site only: no inline <script>, no event handler attribute, no
style attribute or element, and nothing HTMX would have to eval. Every template
is read for those here; tests/e2e/test_csp.py watches a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))

SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"\sstyle\s*=", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)
# hx-on and hx-vals="js:..." are evaluated by htmx, and so is a trigger's filter: the
# [condition] right after its event ("every 1s [cond]", "keyup[key=='Enter']"), not
# the [attribute] of a CSS selector after "from:" or "target:".
HTMX_EVAL = re.compile(r"hx-on[:-]|hx-vals=['\"]\s*(js|javascript):")
TRIGGERS = re.compile(r'hx-trigger="([^"]*)"')
FILTERED_EVENT = re.compile(r"^\s*(every\s+\S+|[\w:.-]+)\s*\[")


def _trigger_filters(text: str) -> list[str]:
    return [
        spec
        for value in TRIGGERS.findall(text)
        for spec in value.split(",")
        if FILTERED_EVENT.match(spec) and not re.match(r"\s*(from|target):", spec)
    ]


def test_there_are_templates_to_read():
    assert len(TEMPLATES) > 20


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_script_handlers_or_styles(template):
    text = template.read_text()
    for attributes in SCRIPT.findall(text):
        assert "src=" in attributes, f"{template}: a <script> without src"
    assert not HANDLER.search(text), f"{template}: an inline event handler"
    assert not STYLE_ATTRIBUTE.search(text), f"{template}: a style attribute"
    assert not STYLE_ELEMENT.search(text), f"{template}: a <style> element"
    assert not HTMX_EVAL.search(text), f"{template}: an htmx attribute that needs eval"
    assert not _trigger_filters(text), f"{template}: an hx-trigger filter (needs eval)"


def test_the_trigger_filter_check_tells_filters_from_selectors():
    assert _trigger_filters('hx-trigger="every 1s [!this.querySelector(x)]"')
    assert _trigger_filters("hx-trigger=\"keyup[key=='Enter'], change\"")
    assert not _trigger_filters(
        'hx-trigger="submit, keyup changed delay:400ms from:input[type=text]"'
    )


def test_htmx_is_told_to_need_no_eval_and_inject_no_styles():
    base = (ROOT / "templates" / "base.html").read_text()
    for setting in ('"allowEval":false', '"includeIndicatorStyles":false'):
        assert setting in base


def test_the_policy_allows_nothing_inline():
    policy = dict(
        part.strip().split(" ", 1) for part in settings.OMS_CONTENT_SECURITY_POLICY.split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in settings.OMS_CONTENT_SECURITY_POLICY


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["login", "portfolios:portfolio-list", "trading:blotter", "trading:order-list", "/nowhere/"],
)
def test_pages_send_the_policy(url, ops, client_for, settings):
    client = client_for(ops if url != "login" else None)
    response = client.get(url if url.startswith("/") else reverse(url))
    assert response["Content-Security-Policy"] == settings.OMS_CONTENT_SECURITY_POLICY
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", response.content.decode())


@pytest.mark.django_db
def test_the_api_and_its_docs_send_the_policy(ops, client_for, settings):
    client = client_for(ops)
    strict = settings.OMS_CONTENT_SECURITY_POLICY
    assert client.get("/api/v1/orders/")["Content-Security-Policy"] == strict
    for docs in ("/api/docs/", "/api/redoc/"):
        response = client.get(docs)
        policy = response["Content-Security-Policy"]
        assert "style-src 'self' 'unsafe-inline'" in policy  # the viewers style elements
        assert "script-src 'self';" in policy
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", response.content.decode())
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
