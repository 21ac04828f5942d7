"""Issue (or rotate) the API token of a user, for integrators."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from audit.services import audit_record, audited_transaction
from oms.context import origin


class Command(BaseCommand):
    help = (
        "Print the API token of USERNAME, creating it if needed. With --rotate, the old "
        "token stops working and a new one is printed. Use it as `Authorization: Token <key>`."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--rotate", action="store_true", help="Replace the user's token with a new one"
        )

    def handle(self, *args, username: str, rotate: bool, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is not active.")
        with origin("command", "issue_token"), audited_transaction():
            existing = Token.objects.select_for_update().filter(user=user).first()
            if existing is not None and not rotate:
                token = existing
            else:
                if existing is not None:
                    existing.delete()
                token = Token.objects.create(user=user)
                # The key itself never goes into the trail: only that one was issued.
                audit_record(
                    actor=None,
                    actor_name="command:issue_token",
                    kind="token.rotated" if existing else "token.issued",
                    obj=user,
                    after={"user": user.get_username()},
                )
        self.stdout.write(token.key)
