from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project itself: settings, URLs, the Celery app and the demo. It sits on
    top of every app and nothing imports it."""

    name = "config"
    verbose_name = "OMS project"
