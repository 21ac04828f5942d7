from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    name = "portfolios"
    verbose_name = "Portfolios"

    def ready(self) -> None:
        from oms import push
        from oms.roles import Action

        from . import quotes, tasks  # noqa: F401 (tasks: registered in every process)

        # The quotes topic: {"q": {symbol: [price, bid, ask, epoch seconds]}} as the
        # consolidated prices move (portfolios.services.quotes.publish_quotes).
        push.register("quotes", action=Action.REFERENCE_VIEW, replay=quotes.quote_changes)
