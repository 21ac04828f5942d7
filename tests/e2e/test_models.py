"""The model editor in a real browser: the total (cash included) follows what the PM
types, rows come and go, a wrong total is refused with the reason, a right one saves."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portfolios.models import ModelTarget

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("OMS_SCREENSHOTS", ROOT / "var" / "screenshots"))


def test_a_pm_edits_a_model_and_sees_the_live_sum(pm, book, log_in, live_server):
    model = book["model"]
    page = log_in(pm)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.goto(f"{live_server.url}/portfolios/models/{model.pk}/edit/")
    total = page.locator("[data-total]")
    expect(total).to_have_text("100%")  # 40 + 30 + 15 + 10 + 5 cash

    weights = page.locator('input[name="target_pct"]')
    weights.nth(0).fill("35")
    expect(total).to_have_text("95%")
    expect(page.locator("[data-total-note]")).to_have_text("5% left to allocate")

    # Saving a model that is 5% short is refused, with the reason, and nothing changes.
    page.click("text=Save model")
    expect(page.locator(".form-errors")).to_contain_text(
        "Target weights and cash add up to 95% of the model, not 100%."
    )
    assert ModelTarget.objects.get(model=model, security__ticker="AAA").weight == Decimal("0.4")

    # Remove DDD (10%), add EEE at 15%: back to 100%.
    page.locator("[data-row]", has=page.locator('input[value="DDD"]')).locator(
        "[data-remove-row]"
    ).click()
    expect(total).to_have_text("85%")
    page.click("text=Add security")
    page.locator('input[name="target_security"]').last.fill("EEE")
    page.locator('input[name="target_pct"]').last.fill("15")
    expect(total).to_have_text("100%")
    page.fill("#id_cash_pct", "6")
    expect(total).to_have_text("101%")
    expect(page.locator("[data-total-note]")).to_have_text("1% over 100%")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "model-editor.png"), full_page=True)
    page.fill("#id_cash_pct", "5")
    expect(total).to_have_text("100%")

    page.click("text=Save model")
    expect(page.locator(".message-success")).to_contain_text(f"Model {model.name} saved.")
    weights_now = dict(model.targets.values_list("security__ticker", "weight"))
    assert weights_now == {
        "AAA": Decimal("0.35"),
        "BBB": Decimal("0.3"),
        "CCC": Decimal("0.15"),
        "EEE": Decimal("0.15"),
    }
    page.screenshot(path=str(SHOTS / "model-detail.png"), full_page=True)
    assert problems == []
