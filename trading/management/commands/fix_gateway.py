"""Run the FIX gateway for one broker session: `manage.py fix_gateway CODE`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from django.core.management.base import BaseCommand, CommandError

from trading.models import Broker


class Command(BaseCommand):
    help = (
        "Connect to a FIX broker and keep the session up: send what routing "
        "puts in its outbox, apply the execution reports that come back. One process "
        "per broker session; a second one for the same session refuses to start."
    )

    def add_arguments(self, parser):
        parser.add_argument("broker", help="code of a broker whose adapter is FIX")
        parser.add_argument(
            "--poll",
            type=float,
            default=0.2,
            help=(
                "seconds between outbox reads when not woken (0.2); on PostgreSQL a row "
                "committed to the outbox wakes the gateway at once"
            ),
        )

        parser.add_argument(
            "--gather",
            type=float,
            default=None,
            help=(
                "seconds a wake-up waits for the rows committed just after it, to send "
                "them in one transaction (0.002; 0 sends each wake-up's rows at once)"
            ),
        )

    def handle(self, *args, broker: str, poll: float, gather: float | None, **options):
        # The ORM is called from the gateway's event loop, its only thread.
        os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        from trading.gateway import Gateway, GatewayBusy

        logging.basicConfig(
            level=logging.INFO if options["verbosity"] > 1 else logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
        try:
            gateway = Gateway.for_broker(
                broker, poll=poll, **({} if gather is None else {"gather": gather})
            )
        except Broker.DoesNotExist:
            raise CommandError(f"no broker {broker!r}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        fs = gateway.fix_session

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            self.stdout.write(
                f"FIX gateway for {broker} ({fs}) connecting to {fs.host}:{fs.port}", ending="\n"
            )
            self.stdout.flush()
            await gateway.run(stop)

        try:
            asyncio.run(main())
        except GatewayBusy as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"FIX gateway for {broker} stopped ({gateway.sent} messages sent)")
