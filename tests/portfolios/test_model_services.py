"""Model portfolio services: the sum rule, duplicates, unknown securities, sleeves and
their cycles, CSV import, copy, bulk assignment; audited before and after, and
nothing half-applied when refused."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F

from audit.models import AuditEvent
from portfolios.models import ModelPortfolio, ModelSleeve, ModelTarget, Portfolio
from portfolios.selectors import load_book
from portfolios.services.models import (
    model_assign,
    model_copy,
    model_create,
    model_targets_export,
    model_targets_import,
    model_update,
)

pytestmark = pytest.mark.django_db
D = Decimal


def composition(model) -> tuple:
    model.refresh_from_db()
    return (
        model.cash_weight,
        sorted(model.targets.values_list("security__ticker", "weight")),
        sorted(model.sleeves.values_list("sleeve__name", "weight")),
    )


def messages(error: ValidationError) -> list[str]:
    return [m for field in error.message_dict.values() for m in field]


def refused(call, **kwargs) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        call(**kwargs)
    return messages(caught.value)


@pytest.fixture
def core(book):
    return book["model"]


def update(pm, model, targets, cash="0.05", **extra):
    return model_update(
        actor=pm,
        model_id=model.pk,
        targets=[{"security": t, "weight": D(w)} for t, w in targets],
        cash_weight=D(cash),
        **extra,
    )


def test_an_edit_replaces_the_targets_and_is_audited_with_before_and_after(pm, core):
    update(pm, core, [("AAA", "0.50"), ("EEE", "0.45")], band_absolute=D("0.03"))
    assert composition(core) == (D("0.05"), [("AAA", D("0.5")), ("EEE", D("0.45"))], [])
    assert core.band_absolute == D("0.03")
    event = AuditEvent.objects.get(kind="model.changed", object_id=str(core.pk))
    assert event.actor == pm
    assert event.before["targets"] == [
        {"security": "AAA", "weight": "0.40000000"},
        {"security": "BBB", "weight": "0.30000000"},
        {"security": "CCC", "weight": "0.15000000"},
        {"security": "DDD", "weight": "0.10000000"},
    ]
    assert event.after["targets"] == [
        {"security": "AAA", "weight": "0.50000000"},
        {"security": "EEE", "weight": "0.45000000"},
    ]
    assert (event.before["band_absolute"], event.after["band_absolute"]) == (
        "0.01000000",
        "0.03000000",
    )


@pytest.mark.parametrize(
    ("targets", "cash", "expected"),
    [
        (
            [("AAA", "0.50"), ("BBB", "0.40")],
            "0.05",
            "Target weights and cash add up to 95% of the model, not 100%.",
        ),
        (
            [("AAA", "0.50"), ("AAA", "0.45")],
            "0.05",
            "Row 2: AAA is already a target (on row 1).",
        ),
        ([("AAA", "0.50"), ("ZZZ", "0.45")], "0.05", "Row 2: no security has the ticker ZZZ."),
        (
            [("AAA", "1.05"), ("BBB", "-0.10")],
            "0.05",
            "Row 2: the weight of BBB (-10%) must be positive.",
        ),
        ([("AAA", "1.05")], "-0.05", "The cash weight (-5%) must be zero or more."),
        ([], "1", "A model needs at least one target."),
    ],
)
def test_a_bad_edit_is_refused_with_its_reason_and_changes_nothing(
    pm, core, targets, cash, expected
):
    before, events = composition(core), AuditEvent.objects.count()
    assert expected in refused(update, pm=pm, model=core, targets=targets, cash=cash)
    assert composition(core) == before
    assert AuditEvent.objects.count() == events


def test_negative_bands_are_refused(pm, core):
    errors = refused(update, pm=pm, model=core, targets=[("AAA", "0.95")], band_relative=D("-0.1"))
    assert errors == ["The relative band must be zero or more."]


def test_only_roles_that_manage_models_may_edit_them(trader, compliance_officer, core):
    for user in (trader, compliance_officer):
        with pytest.raises(PermissionDenied, match="change model portfolios"):
            update(user, core, [("AAA", "0.95")])


def test_the_csv_import_replaces_targets_sleeves_and_cash(pm, core, book):
    sleeve = model_create(actor=pm, name="Bonds", targets=[{"security": "CCC", "weight": D(1)}])
    text = "ticker,weight\nAAA,50%\nmodel:Bonds,0.3\nbbb,0.15\nCASH,5%\n"
    model_targets_import(actor=pm, model_id=core.pk, text=text)
    assert composition(core) == (
        D("0.05"),
        [("AAA", D("0.5")), ("BBB", D("0.15"))],
        [("Bonds", D("0.3"))],
    )
    assert model_targets_export(model=core) == (
        "ticker,weight\nAAA,0.5\nBBB,0.15\nmodel:Bonds,0.3\nCASH,0.05\n"
    )
    event = AuditEvent.objects.get(kind="model.changed", object_id=str(core.pk))
    assert event.reason == "imported from CSV"
    assert event.after["sleeves"] == [{"model": "Bonds", "weight": "0.30000000"}]
    assert sleeve.pk


def test_the_export_imports_back_unchanged(pm, core):
    before = composition(core)
    model_targets_import(actor=pm, model_id=core.pk, text=model_targets_export(model=core))
    assert composition(core) == before


def test_a_csv_with_bad_rows_names_each_line_and_applies_nothing(pm, core):
    before, events = composition(core), AuditEvent.objects.count()
    text = "\n".join(
        [
            "ticker,weight",
            "AAA,0.40",
            "ZZZ,0.10",  # line 3: unknown
            "BBB,abc",  # line 4: not a number
            "AAA,0.10",  # line 5: twice
            "CCC,-0.05",  # line 6: negative
            "model:Nowhere,0.1",  # line 7: no such model
            "DDD,0.1,extra",  # line 8: three columns
        ]
    )
    errors = refused(model_targets_import, actor=pm, model_id=core.pk, text=text)
    assert errors == [
        "Line 4: the weight 'abc' is not a number.",
        "Line 8: expected 2 columns (ticker,weight), found 3.",
    ]
    fixed = text.replace("BBB,abc", "BBB,0.2").replace("DDD,0.1,extra", "DDD,0.1")
    errors = refused(model_targets_import, actor=pm, model_id=core.pk, text=fixed)
    assert errors == [
        "Line 3: no security has the ticker ZZZ.",
        "Line 7: no model is named 'Nowhere'.",
        "Line 5: AAA is already a target (on line 2).",
        "Line 6: the weight of CCC (-5%) must be positive.",
        "Target weights and cash add up to 95% of the model, not 100%.",
    ]
    assert composition(core) == before
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "The file is empty: it needs the header ticker,weight and a row per target."),
        ("security,pct\nAAA,1", "Line 1: the header must be ticker,weight (not security,pct)."),
        ("ticker,weight\nCASH,0.5\nCASH,0.5", "Line 3: CASH is already given on line 2."),
    ],
)
def test_a_csv_of_the_wrong_shape_is_refused(pm, core, text, expected):
    assert refused(model_targets_import, actor=pm, model_id=core.pk, text=text) == [expected]


def test_a_model_cannot_hold_itself_directly_or_through_its_sleeves(pm, core):
    outer = model_create(
        actor=pm, name="Outer", targets=[], sleeves=[{"model": core, "weight": D(1)}]
    )
    before, events = composition(core), AuditEvent.objects.count()
    direct = refused(
        model_update,
        actor=pm,
        model_id=core.pk,
        targets=[{"security": "AAA", "weight": D("0.5")}],
        sleeves=[{"model": "Core", "weight": D("0.5")}],
        cash_weight=D(0),
    )
    assert direct == ["Core cannot hold itself as a sleeve."]
    through = refused(
        model_update,
        actor=pm,
        model_id=core.pk,
        targets=[{"security": "AAA", "weight": D("0.5")}],
        sleeves=[{"model": outer, "weight": D("0.5")}],
        cash_weight=D(0),
    )
    assert through == ["Core cannot hold itself through its sleeves: Core → Outer → Core."]
    assert composition(core) == before
    assert AuditEvent.objects.count() == events


def test_a_copy_has_the_same_composition_under_a_new_name(pm, other_pm, core):
    copy = model_copy(actor=other_pm, model_id=core.pk, name="Core II")
    assert composition(copy) == composition(core)
    assert (copy.band_absolute, copy.owner) == (core.band_absolute, other_pm)
    event = AuditEvent.objects.get(kind="model.copied", object_id=str(copy.pk))
    assert event.after["copied_from"] == "Core"
    assert len(event.after["targets"]) == 4
    assert refused(model_copy, actor=pm, model_id=core.pk, name="Core II") == [
        "Model portfolio with this Name already exists."
    ]


def test_accounts_are_assigned_in_bulk_each_audited(pm, core, book):
    other = model_create(actor=pm, name="All AAA", targets=[{"security": "AAA", "weight": D(1)}])
    accounts = book["accounts"]
    assigned = model_assign(actor=pm, model_id=other.pk, portfolio_ids=[a.pk for a in accounts])
    assert [p.code for p in assigned] == ["ACC1", "ACC2"]
    assert set(Portfolio.objects.values_list("model__name", flat=True)) == {"All AAA"}
    events = AuditEvent.objects.filter(kind="portfolio.model_assigned").order_by("pk")
    assert [(e.object_id, e.before, e.after) for e in events] == [
        (str(a.pk), {"model": "Core"}, {"model": "All AAA"}) for a in accounts
    ]


def test_a_pm_assigns_only_the_accounts_they_manage(pm, other_pm, core, book):
    theirs = Portfolio.objects.create(code="THEIRS", name="Not pm's", manager=other_pm)
    other = model_create(actor=pm, name="All AAA", targets=[{"security": "AAA", "weight": D(1)}])
    ids = [book["accounts"][0].pk, theirs.pk]
    assert refused(model_assign, actor=pm, model_id=other.pk, portfolio_ids=ids) == [
        "No active account you manage: THEIRS."
    ]
    assert set(Portfolio.objects.values_list("model", flat=True)) == {core.pk, None}
    assert not AuditEvent.objects.filter(kind="portfolio.model_assigned").exists()


def test_operations_assign_any_account(ops, other_pm, core):
    theirs = Portfolio.objects.create(code="THEIRS", name="Not pm's", manager=other_pm)
    model_assign(actor=ops, model_id=core.pk, portfolio_ids=[theirs.pk])
    theirs.refresh_from_db()
    assert theirs.model == core


# --- The book loader flattens sleeves ------------------------------------------------------


def _nested(pm, book, depth: int):
    """Core held through `depth` models, each holding the next at 90% with 10% EEE."""
    inner = book["model"]
    for n in range(depth):
        inner = model_create(
            actor=pm,
            name=f"Level {n}",
            targets=[{"security": "EEE", "weight": D("0.1")}],
            sleeves=[{"model": inner, "weight": D("0.9")}],
        )
    return inner


@pytest.mark.parametrize("depth", [1, 6])
def test_load_book_flattens_sleeves_in_a_fixed_number_of_queries(
    pm, book, depth, django_assert_max_num_queries
):
    top = _nested(pm, book, depth)
    account = book["accounts"][0]
    Portfolio.objects.filter(pk=account.pk).update(model=top)
    # Eight without sleeves; with them the sleeve graph and the models it reaches.
    with django_assert_max_num_queries(10):
        frames = load_book([account.pk, book["accounts"][1].pk]).book
    s = book["securities"]
    share = D("0.9") ** depth
    weights = {(m, sec): w for m, sec, w in frames.models.itertuples(index=False)}
    eee = float(1 - share)  # 10% at each level, then 90% of what is below
    assert weights[(top.pk, s["EEE"].pk)] == pytest.approx(eee)
    assert weights[(top.pk, s["AAA"].pk)] == pytest.approx(float(share * D("0.40")))
    assert weights[(book["model"].pk, s["AAA"].pk)] == pytest.approx(0.40)
    cash = dict(zip(frames.model_cash["model"], frames.model_cash["cash"], strict=True))
    assert cash[top.pk] == pytest.approx(float(share * D("0.05")))
    total = sum(w for (m, _), w in weights.items() if m == top.pk) + cash[top.pk]
    assert total == pytest.approx(1.0)
    assert set(frames.model_cash["model"]) == {top.pk, book["model"].pk}


def test_load_book_without_sleeves_reads_no_sleeve_graph(book, django_assert_num_queries):
    assert not ModelSleeve.objects.exists()
    with django_assert_num_queries(8):
        load_book([a.pk for a in book["accounts"]])
    assert ModelTarget.objects.filter(model=book["model"]).count() == 4
    assert ModelPortfolio.objects.count() == 1


def test_a_weight_finer_than_the_column_is_refused(pm, core):
    text = "ticker,weight\nAAA,0.999999999\nBBB,0.000000001\n"
    assert refused(model_targets_import, actor=pm, model_id=core.pk, text=text) == [
        "Line 2: the weight of AAA has more than 8 decimal places (6 in percent).",
        "Line 3: the weight of BBB has more than 8 decimal places (6 in percent).",
    ]
    # Trailing zeros are no extra precision.
    model_targets_import(actor=pm, model_id=core.pk, text="ticker,weight\nAAA,1.0000000000\n")


@pytest.mark.parametrize(
    "text",
    ["ticker,weight\r\nAAA,0.95\r\nCASH,0.05\r\n", "ticker,weight\rAAA,0.95\rCASH,0.05"],
)
def test_windows_and_old_mac_line_ends_are_read(pm, core, text):
    model_targets_import(actor=pm, model_id=core.pk, text=text)
    assert composition(core)[0] == D("0.05")


def test_editing_a_model_marks_the_drift_of_its_accounts_and_its_holders_stale(pm, core, book):
    from portfolios.models import AccountDrift
    from portfolios.services.drift import drift_refresh

    holder = model_create(
        actor=pm,
        name="Holder",
        targets=[],
        sleeves=[{"model": core.name, "weight": D("0.90")}],
        cash_weight=D("0.10"),
    )
    acc1, acc2 = book["accounts"]
    model_assign(actor=pm, model_id=holder.pk, portfolio_ids=[acc2.pk])
    drift_refresh()
    assert not AccountDrift.objects.filter(
        portfolio__in=[acc1, acc2], inputs_changed_at__gt=F("computed_at")
    ).exists()
    update(pm, core, [("AAA", "0.45"), ("BBB", "0.50")])
    stale = set(
        AccountDrift.objects.filter(inputs_changed_at__gt=F("computed_at")).values_list(
            "portfolio_id", flat=True
        )
    )
    assert stale == {acc1.pk, acc2.pk}  # acc1 on the model, acc2 on the model holding it


def test_drift_of_an_account_on_a_model_of_models_is_against_the_flattened_weights(pm, book):
    from portfolios.selectors import drift_of_positions

    top = _nested(pm, book, 1)  # 10% EEE, 90% Core
    account = book["accounts"][0]
    Portfolio.objects.filter(pk=account.pk).update(model=top)
    targets = {row["security"]: row["target"] for row in drift_of_positions(account.pk)}
    s = book["securities"]
    assert targets[s["EEE"].pk] == pytest.approx(0.10)
    assert targets[s["AAA"].pk] == pytest.approx(0.36)
    assert targets[s["DDD"].pk] == pytest.approx(0.09)


@pytest.mark.django_db(transaction=True)
def test_two_edits_at_once_cannot_close_a_cycle_together(pm, book, monkeypatch):
    """A holds B and C holds D. At once, B is given C and D is given A: each edit alone
    sees no cycle, together they make A → B → C → D → A. One waits for the other and
    is refused."""
    import threading

    from django.db import connection

    from portfolios.services import models as services
    from tests.conftest import service_missing

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL: writers at once (SQLite serialises them)")
    made = {}
    for name in "DCBA":
        sleeves = []
        if name in "AC":
            sleeves = [{"model": made[chr(ord(name) + 1)], "weight": D("0.5")}]
        made[name] = model_create(
            actor=pm,
            name=name,
            targets=[{"security": "AAA", "weight": D(1) - sum(s["weight"] for s in sleeves)}],
            sleeves=sleeves,
        )
    real = services._cycle_error
    both_checked = threading.Barrier(2, timeout=1.5)

    def check_then_wait(model, sleeves):
        found = real(model, sleeves)
        # Without a lock, both get here before either writes.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait()
        return found

    monkeypatch.setattr(services, "_cycle_error", check_then_wait)
    outcomes: list[str] = []

    def give(holder, sleeve):
        try:
            model_update(
                actor=pm,
                model_id=made[holder].pk,
                targets=[{"security": "AAA", "weight": D("0.5")}],
                sleeves=[{"model": made[sleeve], "weight": D("0.5")}],
                cash_weight=D(0),
            )
            outcomes.append("saved")
        except ValidationError as error:
            outcomes.append(messages(error)[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=give, args=pair) for pair in (("B", "C"), ("D", "A"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes)[-1] == "saved"
    assert "cannot hold itself through its sleeves" in sorted(outcomes)[0], outcomes
    assert ModelSleeve.objects.count() == 3


def test_rows_keep_their_numbers_when_an_unknown_one_is_left_out(pm, core):
    errors = refused(
        update, pm=pm, model=core, targets=[("ZZZ", "0.5"), ("AAA", "0.4"), ("AAA", "0.05")]
    )
    assert errors[:2] == [
        "Row 1: no security has the ticker ZZZ.",
        "Row 3: AAA is already a target (on row 2).",
    ]


def test_saving_a_model_unchanged_writes_and_records_nothing(
    pm, core, django_assert_max_num_queries
):
    update(pm, core, [("BBB", "0.30"), ("AAA", "0.4"), ("CCC", "0.15"), ("DDD", "0.10")])
    assert not AuditEvent.objects.filter(kind="model.changed").exists()
    update(pm, core, [("BBB", "0.35"), ("AAA", "0.35"), ("CCC", "0.15"), ("DDD", "0.10")])
    assert AuditEvent.objects.filter(kind="model.changed").count() == 1
