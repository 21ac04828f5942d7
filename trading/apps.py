from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from oms import push
        from oms.roles import Action

        from . import selectors, tasks  # noqa: F401 (registers the app's tasks in every process)

        # The blotter's push topic: {"block": id} whenever a block, its routes or
        # its fills change (published by trading.services.blocks.block_changed).
        push.register("blotter", action=Action.BLOCK_VIEW, replay=selectors.blotter_changes)
