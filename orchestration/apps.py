from django.apps import AppConfig


class OrchestrationConfig(AppConfig):
    name = "orchestration"
    verbose_name = "Rebalance runs and the order workflow"

    def ready(self) -> None:
        from portfolios.selectors import register_cash_on_its_way
        from trading import posttrade

        from . import tasks  # noqa: F401 (registers the app's tasks in every process)
        from .selectors import cash_flows_in_runs, cash_flows_statement

        register_cash_on_its_way(cash_flows_in_runs, statement=cash_flows_statement)
        posttrade.register(settle_after_allocation)


def settle_after_allocation(portfolio_ids: list[int]) -> None:
    """The withdrawals of the accounts an allocation booked, settled after its commit."""
    from oms.tasking import enqueue_on_commit

    enqueue_on_commit("orchestration.tasks.settle_withdrawals", portfolio_ids)
