"""Purge what Kinship keeps only for a while (forum.privacy.purge_expired_data).

The ASGI workers do this by themselves; run this from cron where pages are served
without them (docs/operations.md).
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from forum import privacy


class Command(BaseCommand):
    help = "Delete expired or long-unused sessions and notifications past their retention."

    def handle(self, *args, **options) -> None:
        purged = privacy.purge_expired_data()
        self.stdout.write(
            f"Purged {purged['sessions']} expired or unused session(s) and "
            f"{purged['notifications']} "
            f"notification(s) older than {settings.KINSHIP_RETENTION_DAYS} days."
        )
