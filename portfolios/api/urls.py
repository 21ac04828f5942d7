"""The portfolios app's API resources (included by config.urls under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from . import exposure, model_portfolios, quotes, views

router = SimpleRouter()
router.register("securities", views.SecurityViewSet, basename="security")
router.register("prices", views.PriceViewSet, basename="price")
router.register("quotes", quotes.QuoteViewSet, basename="quote")
router.register("portfolios", views.PortfolioViewSet, basename="portfolio")
router.register("models", model_portfolios.ModelPortfolioViewSet, basename="model")
router.register("drift", views.DriftViewSet, basename="drift")
router.register("exposure", exposure.ExposureViewSet, basename="exposure")
router.register("lifecycle-events", views.LifecycleEventViewSet, basename="lifecycle-event")

urlpatterns = router.urls
