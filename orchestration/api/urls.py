"""The orchestration app's API resources (included by config.urls under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("portfolios", views.PortfolioRebalanceViewSet, basename="portfolio")
router.register("rebalance-runs", views.RebalanceRunViewSet, basename="rebalance-run")

urlpatterns = router.urls
