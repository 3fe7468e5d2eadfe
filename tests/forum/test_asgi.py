"""The ASGI worker's periodic chores (forum/asgi.py): due held posts and overdue sessions."""

from datetime import timedelta

import pytest
from django.utils import timezone

from forum import asgi, publishing
from forum.models import ChatRoom, LiveSession
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    # A round closes its thread's connection; here that thread holds the test's transaction.
    monkeypatch.setattr(asgi.connection, "close", lambda: None)


def overdue_session(group) -> LiveSession:
    room = ChatRoom.objects.create(group=group, name="Meeting", slug="s-1", kind="session")
    leader = make_user("sage")
    start = timezone.now() - timedelta(hours=5)
    return LiveSession.objects.create(
        group=group, room=room, title="Monday share", leader=leader, facilitator=leader,
        starts_at=start, ends_at=start + timedelta(hours=1),
    )  # fmt: skip


def test_a_round_finishes_sessions_nobody_ended(public_group):
    session = overdue_session(public_group)
    asgi.run_chores()
    session.refresh_from_db()
    assert session.ended_at == session.auto_ends_at
    assert session.transcript_purged_at is not None  # the default choice: deleted at the end
    assert ChatRoom.objects.get(pk=session.room_id).state == ChatRoom.State.ARCHIVED


def test_one_failing_chore_does_not_stop_the_others(public_group, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(publishing, "release_due_posts", broken)
    session = overdue_session(public_group)
    asgi.run_chores()
    session.refresh_from_db()
    assert session.ended_at is not None
    assert "periodic chore broken failed" in caplog.text
