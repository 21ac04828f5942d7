"""The REST API, version 1: one router over every app's viewsets."""

from rest_framework.routers import DefaultRouter

from compliance.api.views import AuditEventViewSet
from portfolios.api.views import (
    ModelPortfolioViewSet,
    PortfolioViewSet,
    PriceViewSet,
    RebalanceRunViewSet,
    SecurityViewSet,
)
from trading.api.views import (
    AllocationViewSet,
    BlockViewSet,
    BrokerViewSet,
    ExecutionViewSet,
    OrderViewSet,
    RouteViewSet,
)

router = DefaultRouter()
router.register("securities", SecurityViewSet, basename="security")
router.register("prices", PriceViewSet, basename="price")
router.register("portfolios", PortfolioViewSet, basename="portfolio")
router.register("models", ModelPortfolioViewSet, basename="model")
router.register("rebalance-runs", RebalanceRunViewSet, basename="rebalance-run")
router.register("orders", OrderViewSet, basename="order")
router.register("blocks", BlockViewSet, basename="block")
router.register("routes", RouteViewSet, basename="route")
router.register("executions", ExecutionViewSet, basename="execution")
router.register("allocations", AllocationViewSet, basename="allocation")
router.register("brokers", BrokerViewSet, basename="broker")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

app_name = "api"
urlpatterns = router.urls
