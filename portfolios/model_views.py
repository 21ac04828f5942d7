"""Model portfolio pages: the list, a model, its editor (live sum as the PM types),
copy, CSV import and export, and assigning accounts in bulk.

Thin views: a form parses the input, one service of portfolios.services.models
checks and writes it (its refusal shown as a form error, nothing saved), render.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from oms.roles import Action, can, may_change_model, require_model_change
from oms.views import action_required, refusal_messages

from . import selectors
from .model_forms import ModelCopyForm, ModelImportForm, ModelSettingsForm, Rows
from .models import ModelPortfolio, Security
from .services import models as model_services


@action_required(Action.PORTFOLIO_VIEW)
def model_list(request: HttpRequest) -> HttpResponse:
    """Every model with its number of targets, sleeves and accounts."""
    models = ModelPortfolio.objects.annotate(
        target_count=Count("targets", distinct=True),
        sleeve_count=Count("sleeves", distinct=True),
        account_count=Count("portfolios", distinct=True),
    ).order_by("name")
    context = {"models": models, "can_manage": can(request.user, Action.MODEL_MANAGE)}
    return render(request, "portfolios/model_list.html", context)


@action_required(Action.PORTFOLIO_VIEW)
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A model's targets and sleeves, what they flatten to, and its accounts."""
    model = get_object_or_404(ModelPortfolio, pk=pk)
    sleeves = list(model.sleeves.select_related("sleeve"))
    flattened = selectors.model_flattened(model.pk) if sleeves else None
    context = {
        "model": model,
        "targets": model.targets.select_related("security"),
        "sleeves": sleeves,
        "flattened": flattened,
        "held_by": model.held_by.select_related("model"),
        "portfolios": selectors.portfolios_visible_to(request.user).filter(model=model),
        "can_manage": can(request.user, Action.MODEL_MANAGE),
        "can_change": may_change_model(request.user, model),
        "copy_form": ModelCopyForm(initial={"name": f"{model.name} (copy)"}),
    }
    return render(request, "portfolios/model_detail.html", context)


def _editor(request, model, form, rows, import_form=None, status=200) -> HttpResponse:
    context = {
        "model": model,
        "form": form,
        "rows": rows,
        "import_form": import_form or ModelImportForm(),
        "tickers": Security.objects.filter(is_active=True).values_list("ticker", "name"),
        "sleeve_choices": ModelPortfolio.objects.exclude(pk=getattr(model, "pk", None))
        .order_by("name")
        .values_list("name", flat=True),
    }
    return render(request, "portfolios/model_form.html", context, status=status)


@action_required(Action.MODEL_MANAGE)
def model_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """Create a model or edit one: settings, and rows of securities and sleeves with
    their weights in percent; the total (cash included) must be exactly 100%."""
    model = get_object_or_404(ModelPortfolio, pk=pk) if pk else None
    if model is not None:
        require_model_change(request.user, model)
    if request.method != "POST":
        initial = (
            ModelSettingsForm.initial_of(model)
            if model
            else {
                "cash_pct": "0",
                "band_absolute_pct": "2",
                "band_relative_pct": "0",
            }
        )
        rows = Rows.of_model(model) if model else Rows(targets=[{"security": "", "pct": ""}])
        return _editor(request, model, ModelSettingsForm(initial=initial), rows)
    form = ModelSettingsForm(request.POST)
    rows = Rows.posted(request.POST)
    targets, sleeves = rows.for_service()
    if not form.is_valid() or rows.errors:
        for error in rows.errors:
            form.add_error(None, error)
        return _editor(request, model, form, rows)
    try:
        if model is None:
            fields = form.service_fields()
            model = model_services.model_create(
                actor=request.user, targets=targets, sleeves=sleeves, **fields
            )
            messages.success(request, f"Model {model.name} created.")
        else:
            model = model_services.model_update(
                actor=request.user,
                model_id=model.pk,
                targets=targets,
                sleeves=sleeves,
                **form.service_fields(),
            )
            messages.success(request, f"Model {model.name} saved.")
    except ValidationError as error:
        for message in refusal_messages(error):
            form.add_error(None, message)
        return _editor(request, model, form, rows)
    return redirect(model.get_absolute_url())


@action_required(Action.MODEL_MANAGE)
def model_import(request: HttpRequest, pk: int) -> HttpResponse:
    """Replace the targets with a CSV file; each bad line named, nothing applied."""
    model = get_object_or_404(ModelPortfolio, pk=pk)
    if request.method != "POST":
        return redirect("portfolios:model-edit", pk=model.pk)
    import_form = ModelImportForm(request.POST, request.FILES)
    if import_form.is_valid():
        try:
            model_services.model_targets_import(
                actor=request.user, model_id=model.pk, text=import_form.cleaned_data["file"]
            )
        except ValidationError as error:
            for message in refusal_messages(error):
                import_form.add_error(None, message)
        else:
            messages.success(request, f"Targets of {model.name} imported.")
            return redirect(model.get_absolute_url())
    form = ModelSettingsForm(initial=ModelSettingsForm.initial_of(model))
    return _editor(request, model, form, Rows.of_model(model), import_form)


@action_required(Action.PORTFOLIO_VIEW)
def model_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The targets as the CSV file the import reads."""
    model = get_object_or_404(ModelPortfolio, pk=pk)
    response = HttpResponse(
        model_services.model_targets_export(model=model), content_type="text/csv; charset=utf-8"
    )
    filename = "".join(c if c.isalnum() else "-" for c in model.name)
    response["Content-Disposition"] = f'attachment; filename="{filename}-targets.csv"'
    return response


@action_required(Action.MODEL_MANAGE)
def model_copy(request: HttpRequest, pk: int) -> HttpResponse:
    model = get_object_or_404(ModelPortfolio, pk=pk)
    if request.method != "POST":
        return redirect(model.get_absolute_url())
    form = ModelCopyForm(request.POST)
    problems: list[str] = []
    if form.is_valid():
        try:
            copy = model_services.model_copy(
                actor=request.user, model_id=model.pk, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            problems = refusal_messages(error)
        else:
            messages.success(request, f"{model.name} copied to {copy.name}.")
            return redirect(copy.get_absolute_url())
    else:
        problems = [m for errors in form.errors.values() for m in errors]
    messages.error(request, "Not copied: " + " ".join(problems))
    return redirect(model.get_absolute_url())


@action_required(Action.MODEL_MANAGE)
def model_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Choose accounts (those the user may manage models for) and put them on the model."""
    model = get_object_or_404(ModelPortfolio, pk=pk)
    accounts = selectors.portfolios_for_action(request.user, Action.MODEL_MANAGE).order_by("code")
    error = ""
    chosen: set[int] = set()
    if request.method == "POST":
        try:
            chosen = {int(v) for v in request.POST.getlist("portfolios")}
        except ValueError:
            chosen, error = set(), "Choose accounts from the list."
        if not error:
            try:
                assigned = model_services.model_assign(
                    actor=request.user, model_id=model.pk, portfolio_ids=chosen
                )
            except ValidationError as refused:
                error = " ".join(refusal_messages(refused))
            else:
                codes = ", ".join(p.code for p in assigned)
                messages.success(request, f"On {model.name}: {codes}.")
                return redirect(model.get_absolute_url())
    context = {
        "model": model,
        "accounts": accounts,
        "chosen": chosen,
        "error": error,
        "back": reverse("portfolios:model-detail", args=[model.pk]),
    }
    return render(request, "portfolios/model_assign.html", context)
