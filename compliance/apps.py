from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        # Trading sits below compliance: it asks the pre-trade check through its seam,
        # and tells the post-trade seam which accounts an allocation booked.
        from trading import posttrade, pretrade

        from . import tasks  # noqa: F401 (registers the app's tasks in every process)
        from .services.pretrade import checker

        pretrade.register(checker)
        posttrade.register(check_after_allocation)


def check_after_allocation(portfolio_ids: list[int]) -> None:
    """The post-trade check of the accounts an allocation booked, after its commit."""
    from oms.tasking import enqueue_on_commit

    enqueue_on_commit("compliance.tasks.posttrade_check", portfolio_ids)
