"""Remind members who said they are coming that a live session starts soon
(forum.notify.send_session_reminders).

The ASGI workers do this by themselves with their periodic chores; run this from cron
where pages are served without them (docs/operations.md). Each member is reminded once.
"""

from django.core.management.base import BaseCommand

from forum import notify


class Command(BaseCommand):
    help = "Send the reminders for live sessions that start soon."

    def handle(self, *args, **options) -> None:
        reminded = notify.send_session_reminders()
        self.stdout.write(f"{reminded} member(s) reminded.")
