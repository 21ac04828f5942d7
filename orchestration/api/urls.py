"""The orchestration app's API resources (included by config.urls under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from . import cashflows, views

router = SimpleRouter()
router.register("portfolios", views.PortfolioRebalanceViewSet, basename="portfolio")
router.register("rebalance-runs", views.RebalanceRunViewSet, basename="rebalance-run")
router.register("cash-flows", cashflows.CashFlowViewSet, basename="cash-flow")

urlpatterns = router.urls
