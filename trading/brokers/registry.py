"""Which adapter reaches which broker."""

from __future__ import annotations

from .base import BrokerAdapter, ReportSink


def adapter_for(broker, sink: ReportSink) -> BrokerAdapter:
    # Django is imported here, not at the top: this module is loaded with the
    # `trading.brokers` package, and so with its pure modules (base, fixmap,
    # simulated), which must import without Django.
    from django.conf import settings

    from trading.models import Broker
    from trading.selectors import latest_price_by_ticker, simulated_book_order

    if broker.adapter == Broker.Adapter.SIMULATED:
        from .simulated import SimulatedBroker

        return SimulatedBroker(
            sink,
            price_of=latest_price_by_ticker,
            order_state=simulated_book_order,
            default_latency=settings.OMS_SIMULATED_BROKER_LATENCY,
        )
    if broker.adapter == Broker.Adapter.FIX:
        from .fix import FixBroker

        session = getattr(broker, "fix_session", None)
        if session is None:
            raise ValueError(f"broker {broker.code} uses FIX but has no FIX session configured")
        return FixBroker(sink, session=session)
    raise ValueError(f"broker {broker.code} has no adapter for {broker.adapter!r}")
