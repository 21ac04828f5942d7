from django.apps import AppConfig


class OmsConfig(AppConfig):
    name = "oms"
    verbose_name = "OMS kernel"

    def ready(self) -> None:
        from . import tasks  # noqa: F401 (registers the kernel's tasks in every process)
