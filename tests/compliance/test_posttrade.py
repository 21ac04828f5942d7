"""Post-trade: after an allocation the booked accounts are checked (a task on commit),
every night every account; a breach opens one alert per account and rule, which
compliance assigns, comments on and resolves."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from compliance.models import Alert
from compliance.services import posttrade
from compliance.services import rules as rule_services
from trading.models import Block
from trading.services import orders as order_services
from trading.services import routes as route_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def post_rule(compliance_officer):
    # post-trade only: the buy below is not stopped before it trades
    return rule_services.rule_create(
        actor=compliance_officer,
        name="Single security 70%",
        kind="max_weight",
        params={"group_by": "security", "limit": 0.70},
        severity="soft",
        when="post",
    )


def test_an_allocation_that_breaches_opens_an_alert(
    pm, trader, book, post_rule, eager_celery, django_capture_on_commit_callbacks
):
    acc1 = book["accounts"][0]
    order = order_services.order_create(
        actor=pm,
        portfolio=acc1,
        security=book["securities"]["AAA"],
        side="buy",
        quantity=Decimal(40),
    )
    order_services.orders_approve(actor=pm, order_ids=[order.pk])
    order_services.orders_release(actor=pm, order_ids=[order.pk])
    order.refresh_from_db()
    assert not Alert.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        route_services.route_create(actor=trader, block_id=order.block_id, broker=book["broker"])
    assert Block.objects.get(pk=order.block_id).status == Block.Status.ALLOCATED
    [alert] = Alert.objects.all()
    # AAA 640 x 100 of a NAV of 90,000 after the buy
    assert (alert.portfolio, alert.rule, alert.source) == (acc1, post_rule, "allocation")
    assert alert.value == pytest.approx(64000 / 90000)
    assert AuditEvent.objects.filter(kind="alert.opened", object_id=str(alert.pk)).exists()
    # the nightly check finds it again: the open alert is refreshed, not doubled
    assert posttrade.posttrade_check(source="nightly") == []
    assert Alert.objects.count() == 1
    # ... and the refresh is audited, by the system, with what it changed
    refreshed = AuditEvent.objects.get(kind="alert.refreshed", object_id=str(alert.pk))
    assert refreshed.actor_name == "system"
    assert refreshed.after["source"] == "nightly"
    assert refreshed.before["last_seen_at"] != refreshed.after["last_seen_at"]


def test_the_nightly_check_is_scheduled():
    entry = settings.CELERY_BEAT_SCHEDULE["compliance-posttrade-nightly"]
    assert entry["task"] == "compliance.tasks.posttrade_nightly"


def test_assign_comment_resolve(personas, book, post_rule):
    from portfolios.models import Position

    Position.objects.filter(portfolio=book["accounts"][0], security__ticker="AAA").update(
        quantity=800
    )
    [alert] = posttrade.posttrade_check(source="nightly")
    officer = personas["compliance"]
    for name in ("pm", "trader", "ops"):
        with pytest.raises(PermissionDenied):
            posttrade.alert_resolve(actor=personas[name], alert_id=alert.pk, resolution="x")
    # an alert goes to one who may resolve it: bad input (the assignee), not the actor's role
    with pytest.raises(ValidationError, match="pm is not a compliance officer"):
        posttrade.alert_assign(actor=officer, alert_id=alert.pk, assignee=personas["pm"])
    posttrade.alert_assign(actor=officer, alert_id=alert.pk, assignee=officer)
    posttrade.alert_comment(actor=officer, alert_id=alert.pk, text="Asked the PM to trim.")
    with pytest.raises(ValidationError):
        posttrade.alert_resolve(actor=officer, alert_id=alert.pk, resolution=" ")
    posttrade.alert_resolve(actor=officer, alert_id=alert.pk, resolution="Trimmed next day.")
    alert.refresh_from_db()
    assert (alert.status, alert.assignee, alert.resolved_by) == ("resolved", officer, officer)
    kinds = list(
        AuditEvent.objects.filter(object_id=str(alert.pk), kind__startswith="alert.")
        .order_by("pk")
        .values_list("kind", flat=True)
    )
    assert kinds == ["alert.opened", "alert.assigned", "alert.commented", "alert.resolved"]
    # still breached: the next night opens a new alert
    assert len(posttrade.posttrade_check(source="nightly")) == 1


def test_the_alert_queue_and_the_account_page(personas, book, post_rule):
    from portfolios.models import Position

    Position.objects.filter(portfolio=book["accounts"][0], security__ticker="AAA").update(
        quantity=800
    )
    [alert] = posttrade.posttrade_check(source="nightly")
    client = Client()
    client.force_login(personas["compliance"])
    queue = client.get(reverse("compliance:alert-list")).content.decode()
    assert "Single security 70%" in queue and "ACC1" in queue
    client.post(reverse("compliance:alert-act", args=[alert.pk]), {"do": "take"})
    client.post(
        reverse("compliance:alert-act", args=[alert.pk]), {"do": "comment", "text": "Looking."}
    )
    client.post(
        reverse("compliance:alert-act", args=[alert.pk]), {"do": "resolve", "text": "Trimmed."}
    )
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.comments.count() == 1
    pm = Client()
    pm.force_login(personas["pm"])
    part = pm.get(reverse("compliance:alert-list") + "?portfolio=ACC1&status=resolved")
    assert part.status_code == 200 and "Single security 70%" in part.content.decode()
    assert (
        pm.post(reverse("compliance:alert-act", args=[alert.pk]), {"do": "take"}).status_code == 403
    )


def test_the_alerts_api(personas, book, post_rule):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from portfolios.models import Position

    def api(user):
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}"
        )
        return client

    Position.objects.filter(portfolio=book["accounts"][0], security__ticker="AAA").update(
        quantity=800
    )
    [alert] = posttrade.posttrade_check(source="nightly")
    listed = api(personas["pm"]).get("/api/v1/alerts/?status=open").json()["results"]
    assert [(a["id"], a["portfolio"], a["rule"]) for a in listed] == [
        (alert.pk, "ACC1", "Single security 70%")
    ]
    assert api(personas["pm"]).post(f"/api/v1/alerts/{alert.pk}/resolve/").status_code == 403
    officer = api(personas["compliance"])
    assert officer.post(f"/api/v1/alerts/{alert.pk}/assign/").json()["assignee"] == "compliance"
    bad = officer.post(f"/api/v1/alerts/{alert.pk}/resolve/", {"text": ""}, format="json")
    assert bad.status_code == 400 and "resolution" in bad.json()
    done = officer.post(f"/api/v1/alerts/{alert.pk}/resolve/", {"text": "Trimmed."}, format="json")
    assert done.json()["status"] == "resolved"
