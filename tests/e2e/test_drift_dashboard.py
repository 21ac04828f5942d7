"""The drift dashboard in a real browser, on the demo book: the histogram is drawn by
plotly.js (served from the installed package, under the Content-Security-Policy), a
filter narrows the rows and redraws it, and an account's drill-down draws its weights
against the model by security and by asset class."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from config.demo import load_demo_data

from .test_csp import assert_clean, open_as  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def demo(eager_celery):
    load_demo_data(accounts=30, days=5)


def _plotted_points(page, selector: str) -> int:
    return page.evaluate(
        f"""() => {{
          const div = document.querySelector({selector!r});
          return div && div.data ? div.data.reduce((n, t) => n + (t.y || []).length, 0) : -1;
        }}"""
    )


def test_the_pm_sees_the_drift_chart_filters_and_drills_down(demo, open_as, live_server):  # noqa: F811
    from portfolios.models import ModelPortfolio, Portfolio

    page = open_as("pm")
    response = page.goto(f"{live_server.url}/portfolios/drift/")
    assert response.status == 200
    expect(page.locator("#drift-histogram .main-svg").first).to_be_visible()
    assert _plotted_points(page, "#drift-histogram") > 0
    rows = page.locator("#drift-table tbody tr[data-account]")
    mine = Portfolio.objects.filter(manager__username="pm")
    assert rows.count() == mine.count() == 26  # four of the thirty are the other PM's
    total = page.locator('[data-total="accounts"]')
    expect(total).to_have_text("26")

    model = ModelPortfolio.objects.order_by("pk").first()
    of_model = mine.filter(model=model).count()
    page.select_option("#id_model", str(model.pk))
    expect(total).to_have_text(str(of_model))
    expect(rows).to_have_count(of_model)
    expect(page.locator("#drift-histogram .main-svg").first).to_be_visible()
    assert _plotted_points(page, "#drift-histogram") > 0
    assert f"model={model.pk}" in page.url
    assert_clean(page, "the dashboard, filtered")

    page.locator("#drift-table th a", has_text="Largest drift").click()
    expect(page.locator("#drift-table th a.sorted")).to_contain_text("Largest drift")
    largest = [
        float(t.split("%")[0].replace("+", "").replace("−", "-"))
        for t in page.locator("#drift-table [data-col=largest]").all_inner_texts()
    ]
    assert [abs(x) for x in largest] == sorted(abs(x) for x in largest)

    rows.first.locator("a.strong").click()
    expect(page.locator("h1")).to_contain_text("against")
    expect(page.locator("#drift-by-security .main-svg").first).to_be_visible()
    expect(page.locator("#drift-by-class .main-svg").first).to_be_visible()
    assert _plotted_points(page, "#drift-by-class") >= 4  # weight and target, 2+ classes
    assert_clean(page, "an account's drift")
