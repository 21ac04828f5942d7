from django.apps import AppConfig


class OrchestrationConfig(AppConfig):
    name = "orchestration"
    verbose_name = "Rebalance runs and the order workflow"

    def ready(self) -> None:
        from . import tasks  # noqa: F401 (registers the app's tasks in every process)
