"""The audit explorer takes the names a person uses: an object as the pages name it,
an object kind as the navigation names it, an actor by name."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.services import audit_record, audited_transaction
from portfolios.models import Portfolio

pytestmark = pytest.mark.django_db


def _about(actor, *objects):
    with audited_transaction():
        for obj in objects:
            audit_record(actor=actor, kind="test.about", obj=obj)


def _shown(client, **query) -> list[tuple[str, str]]:
    response = client.get(reverse("compliance:audit-list"), query)
    assert response.status_code == 200
    return sorted((e.object_type, e.object_repr) for e in response.context["page"].object_list)


@pytest.fixture
def proposed_run(pm, book):
    from orchestration.services import rebalance_run_create

    return rebalance_run_create(actor=pm, portfolios=[book["accounts"][0]], parameters={})


@pytest.fixture
def explorer(client, compliance_officer):
    client.force_login(compliance_officer)
    return client


def test_an_account_by_its_code_is_not_every_code_that_starts_so(explorer, pm, book):
    acc1 = book["accounts"][0]
    acc10 = Portfolio.objects.create(code="ACC10", name="Account ACC10", manager=pm)
    _about(pm, acc1, acc10)
    assert _shown(explorer, object="Account ACC1") == [("portfolios.portfolio", "ACC1")]
    assert _shown(explorer, object="account acc10") == [("portfolios.portfolio", "ACC10")]
    assert len(_shown(explorer, object="Account")) == 2


def test_object_kinds_as_the_navigation_names_them(explorer, pm, proposed_run, book):
    _about(pm, book["accounts"][0])
    assert {t for t, _ in _shown(explorer, object_type="Rebalances")} == {"portfolios.rebalancerun"}
    assert {t for t, _ in _shown(explorer, object_type="Accounts")} == {"portfolios.portfolio"}
    assert {t for t, _ in _shown(explorer, object=f"Rebalance #{proposed_run.pk}")} == {
        "portfolios.rebalancerun"
    }


def test_an_actor_by_name_as_a_person_writes_it(explorer, pm, book):
    pm.first_name, pm.last_name = "Pat", "Morgan"
    pm.save(update_fields=["first_name", "last_name"])
    _about(pm, book["accounts"][0])
    for typed in ("Pat Morgan", "Morgan, Pat", "pat  morgan", "MORGAN"):
        assert _shown(explorer, actor=typed) == [("portfolios.portfolio", "ACC1")], typed
    page = explorer.get(reverse("compliance:audit-list")).content.decode()
    rows = page[page.index("<tbody>") :]
    assert "Pat Morgan" in rows  # the actor as people know them, beside the username


def test_an_export_with_a_filter_it_cannot_read_is_refused_not_the_whole_trail(explorer, pm, book):
    _about(pm, book["accounts"][0])
    answer = explorer.get(reverse("compliance:audit-export"), {"occurred_from": "2026-13-01"})
    assert answer.status_code == 400
    assert not answer.streaming
    assert "From" in answer.content.decode()
