"""E-mail the notification digests that are due (forum.notify.send_digests).

Run from cron, e.g. hourly: each member's daily or weekly digest goes out on the first run
once its period has passed (docs/operations.md). Digests carry counts and links only.
"""

from django.core.management.base import BaseCommand

from forum import notify


class Command(BaseCommand):
    help = "Send the daily and weekly notification digests that are due."

    def handle(self, *args, **options) -> None:
        sent = notify.send_digests()
        self.stdout.write(f"{sent} digest(s) sent.")
