import os

from django.core.management.base import BaseCommand

from config.demo import DEMO_PASSWORD, DEMO_USERS


class Command(BaseCommand):
    help = "Print the demo's URL and logins."

    def handle(self, *args, **options):
        port = os.environ.get("PORT", "8000")
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"  OMS demo: http://127.0.0.1:{port}/"))
        self.stdout.write(f"  API docs: http://127.0.0.1:{port}/api/docs/")
        fix_port = os.environ.get("OMS_FIX_SIMULATOR_PORT", "9878")
        self.stdout.write(
            f"  FIX simulated broker: 127.0.0.1:{fix_port} (FIX.4.4 OMS->BROKER, FIX.4.2 OMS42->BROKER)"
        )
        self.stdout.write(f"  Logins (password for all: {DEMO_PASSWORD}):")
        for username, role, _name in DEMO_USERS:
            self.stdout.write(f"    {username:<12} {role.value}")
        self.stdout.write("  Stop with Ctrl-C.")
        self.stdout.write("")
