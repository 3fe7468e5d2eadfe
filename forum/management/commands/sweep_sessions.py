"""Finish live sessions nobody ended and erase transcripts whose time has come.

The ASGI workers do this by themselves every minute; run this from cron where pages are
served without them (docs/operations.md).
"""

from django.core.management.base import BaseCommand

from forum import live


class Command(BaseCommand):
    help = "Finish overdue live sessions and erase transcripts past their keeping time."

    def handle(self, *args, **options) -> None:
        changed = live.sweep_sessions()
        self.stdout.write(f"{changed} session(s) finished or purged.")
