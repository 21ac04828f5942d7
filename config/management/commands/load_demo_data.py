from django.core.management.base import BaseCommand

from config.demo import DEMO_ACCOUNTS, demo_loaded, load_demo_data
from oms.context import origin


class Command(BaseCommand):
    help = "Load the demo book (securities, prices, models, drifting accounts, one user per role) once."

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=DEMO_ACCOUNTS)
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, **options):
        if demo_loaded():
            self.stdout.write("Demo data already loaded: nothing to do.")
            return
        with origin("command", "load_demo_data"):
            created = load_demo_data(seed=options["seed"], accounts=options["accounts"])
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded: {created}"))
