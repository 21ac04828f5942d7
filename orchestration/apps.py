from django.apps import AppConfig


class OrchestrationConfig(AppConfig):
    name = "orchestration"
    verbose_name = "Rebalance runs and the order workflow"

    def ready(self) -> None:
        from portfolios.selectors import register_cash_on_its_way

        from . import tasks  # noqa: F401 (registers the app's tasks in every process)
        from .selectors import cash_flows_in_runs

        register_cash_on_its_way(cash_flows_in_runs)
