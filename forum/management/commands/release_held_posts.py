"""Publish held posts ("hold my post for an hour") whose time has come.

ASGI workers do this by themselves every KINSHIP_CHORES_SECONDS (forum/asgi.py);
run this from cron, every minute, where pages are served without them
(docs/operations.md). Safe to run alongside the workers: no post goes out twice.
"""

from django.core.management.base import BaseCommand

from forum import publishing


class Command(BaseCommand):
    help = "Publish held posts whose time has come (cron, where no ASGI worker runs)."

    def handle(self, *args, **options) -> None:
        released = publishing.release_due_posts()
        self.stdout.write(f"{released} held post(s) released.")
