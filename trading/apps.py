from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from . import tasks  # noqa: F401 (registers the app's tasks in every process)
