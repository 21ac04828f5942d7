"""The compliance app's API resources (included by config.urls under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("audit-events", views.AuditEventViewSet, basename="audit-event")
router.register("rules", views.RuleViewSet, basename="rule")
router.register("restricted-lists", views.RestrictedListViewSet, basename="restricted-list")
router.register("pretrade-results", views.PretradeResultViewSet, basename="pretrade-result")
router.register("overrides", views.OverrideViewSet, basename="override")
router.register("alerts", views.AlertViewSet, basename="alert")

urlpatterns = router.urls
