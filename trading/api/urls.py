"""The trading app's API resources (included by config.urls under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("orders", views.OrderViewSet, basename="order")
router.register("blocks", views.BlockViewSet, basename="block")
router.register("routes", views.RouteViewSet, basename="route")
router.register("executions", views.ExecutionViewSet, basename="execution")
router.register("allocations", views.AllocationViewSet, basename="allocation")
router.register("brokers", views.BrokerViewSet, basename="broker")

urlpatterns = router.urls
