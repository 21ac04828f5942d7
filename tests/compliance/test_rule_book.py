"""The rule book's services: validated by the engine's own rule (the error names the
field), nothing saved on bad input, every change versioned and audited."""

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from compliance.models import RestrictedList, Rule
from compliance.selectors import rebalance_restrictions_for
from compliance.services import rules as rule_services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("kind", "params", "field", "words"),
    [
        ("max_weight", {"group_by": "issuer", "limit": -0.1}, "limit", "must not be negative"),
        ("max_weight", {"group_by": "issuer", "limit": 1.5}, "limit", "at most 1 (100%)"),
        ("max_weight", {"group_by": "sectors", "limit": 0.2}, "group_by", "group_by must be"),
        ("max_weight", {"limit": 0.2}, "group_by", "needs 'group_by'"),
        ("min_cash", {"limit": "lots"}, "limit", "must be a number"),
        ("max_order_notional", {"limit": 1, "cap": 2}, "cap", "has no parameter 'cap'"),
        ("no_such_kind", {}, "kind", "unknown kind"),
        ("restricted", {"list": ["Nowhere"]}, "list", "No active restricted list named Nowhere"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(compliance_officer, kind, params, field, words):
    with pytest.raises(ValidationError) as err:
        rule_services.rule_create(actor=compliance_officer, name="Bad", kind=kind, params=params)
    assert field in err.value.message_dict
    assert words in " ".join(err.value.message_dict[field])
    assert not Rule.objects.exists()
    assert not AuditEvent.objects.filter(kind__startswith="rule.").exists()


def test_scope_needs_its_accounts_or_model(compliance_officer):
    with pytest.raises(ValidationError) as err:
        rule_services.rule_create(
            actor=compliance_officer, name="R", kind="no_short", scope="accounts"
        )
    assert "accounts" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        rule_services.rule_create(
            actor=compliance_officer, name="R", kind="no_short", scope="model"
        )
    assert "model" in err.value.message_dict


def test_create_edit_deactivate_are_versioned_and_audited(compliance_officer, book):
    rule = rule_services.rule_create(
        actor=compliance_officer,
        name="Issuer",
        kind="max_weight",
        params={"group_by": "issuer", "limit": 0.1},
        severity="soft",
        scope="accounts",
        accounts=[book["accounts"][0]],
    )
    assert rule.version == 1
    assert rule.params == {"group_by": "issuer", "limit": 0.1}
    rule = rule_services.rule_update(
        actor=compliance_officer,
        rule_id=rule.pk,
        params={"group_by": "issuer", "limit": 0.12},
        reason="Board decision",
    )
    assert rule.version == 2
    with pytest.raises(ValidationError):
        rule_services.rule_update(
            actor=compliance_officer, rule_id=rule.pk, params={"group_by": "issuer", "limit": 2}
        )
    rule.refresh_from_db()
    assert (rule.version, rule.params["limit"]) == (2, 0.12)
    rule_services.rule_set_active(actor=compliance_officer, rule_id=rule.pk, active=False)
    events = list(AuditEvent.objects.filter(object_id=str(rule.pk)).order_by("pk"))
    assert [e.kind for e in events] == ["rule.created", "rule.changed", "rule.deactivated"]
    assert events[1].before["params"]["limit"] == 0.1
    assert events[1].after["params"]["limit"] == 0.12
    assert events[1].reason == "Board decision"
    assert events[0].after["accounts"] == ["ACC1"]


def test_only_compliance_edits_the_rule_book(personas):
    for name in ("pm", "trader", "ops", "outsider"):
        with pytest.raises(PermissionDenied):
            rule_services.rule_create(actor=personas[name], name="R", kind="no_short")
        with pytest.raises(PermissionDenied):
            rule_services.restricted_list_create(actor=personas[name], name="L")
    rule_services.rule_create(actor=personas["compliance"], name="R", kind="no_short")


def test_restricted_lists_refuse_unknown_tickers_and_issuers(compliance_officer, book):
    with pytest.raises(ValidationError) as err:
        rule_services.restricted_list_create(
            actor=compliance_officer, name="L", tickers=["AAA", "ZZZZ"], issuers=["Nobody Inc"]
        )
    assert err.value.message_dict["tickers"] == ["Unknown ticker: ZZZZ."]
    assert "Nobody Inc" in err.value.message_dict["issuers"][0]
    assert not RestrictedList.objects.exists()


def test_an_edited_list_is_what_the_rebalancer_avoids(compliance_officer, book):
    acc1, acc2 = book["accounts"]
    rlist = rule_services.restricted_list_create(
        actor=compliance_officer, name="Firm", tickers=["BBB"]
    )
    rule_services.rule_create(
        actor=compliance_officer,
        name="Firm list",
        kind="restricted",
        params={"list": ["Firm"], "sides": ["buy", "sell"]},
    )
    frame = rebalance_restrictions_for([acc1.pk, acc2.pk], day=date.today())
    assert frame.to_dict("records") == [
        {"account": None, "security": book["securities"]["BBB"].pk, "restriction": "do_not_trade"}
    ]
    rule_services.restricted_list_update(
        actor=compliance_officer, list_id=rlist.pk, tickers=["CCC"]
    )
    frame = rebalance_restrictions_for([acc1.pk], day=date.today())
    assert list(frame["security"]) == [book["securities"]["CCC"].pk]
    with pytest.raises(ValidationError, match="Active rules use this list"):
        rule_services.restricted_list_update(
            actor=compliance_officer, list_id=rlist.pk, is_active=False
        )


def _labels_in_order(page, labels: list[str]) -> None:
    assert page.status_code == 200
    text = page.content.decode()
    where = [text.index(f">{label}:<") for label in labels]
    assert where == sorted(where), dict(zip(labels, where, strict=True))


def test_a_rule_reads_in_the_admin_from_what_it_measures_to_who_wrote_it(
    superuser_client, soft_issuer_limit
):
    """The rule book's shared fields (name, switch, version, author) come from an abstract
    parent, which Django would list first: the admin's page reads as a rule, what it
    measures and how hard, whom and when it binds, then the record of who wrote it."""
    page = superuser_client.get(f"/admin/compliance/rule/{soft_issuer_limit.pk}/change/")
    _labels_in_order(
        page, ["Name", "Kind", "Params", "Severity", "Scope", "Is active", "Version", "Created by"]
    )


def test_a_restricted_list_reads_in_the_admin_from_its_reach_to_who_wrote_it(
    superuser_client, compliance_officer
):
    listed = rule_services.restricted_list_create(actor=compliance_officer, name="Watch list")
    page = superuser_client.get(f"/admin/compliance/restrictedlist/{listed.pk}/change/")
    _labels_in_order(page, ["Name", "Level", "Portfolio", "Is active", "Version", "Created by"])
