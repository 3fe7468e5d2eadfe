"""A member's own data: export, account erasure and retention (forum.privacy)."""

import json
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, models, transaction
from django.utils import timezone

from forum import privacy, publishing, realtime
from forum.models import (
    ChatMessage,
    ChatRoom,
    Conversation,
    Notification,
    Post,
    PostRevision,
    Reaction,
    SupportGroup,
    Thread,
    User,
)
from forum.models.accounts import validate_handle
from moderation import ratelimit
from moderation.models import Appeal, Flag, ModerationLogEntry, QueueItem
from tests.chat_helpers import db, login_session, open_socket, run_async, session_store
from tests.conftest import PASSWORD, join, make_group, make_user
from tests.privacy_world import OWN, SANCTION_REASON, THEIRS, build

# --- export ----------------------------------------------------------------------------------


def exported(user: User) -> tuple[dict, str]:
    data = privacy.export_member_data(user=user)
    return data, json.dumps(data, cls=DjangoJSONEncoder)


@pytest.mark.django_db
def test_export_holds_every_kind_of_the_members_own_data():
    world = build()
    data, text = exported(world.member)

    # Every section has something in it: nothing the member left a trace in is missed.
    empty = [key for key, value in data.items() if value in (None, [], {})]
    assert empty == []
    assert data["profile"]["handle"] == world.member.handle
    assert data["profile"]["email"] == world.member.email
    assert data["settings"]["notifications"]["replies_in_digest"] is False
    assert data["settings"]["recovery"]["mentor_sees_check_ins"] is True
    assert [m["group"] for m in data["memberships"]] == [world.group.name]
    sources = {post["source"] for post in data["posts"]}
    assert sources == {f"{OWN} opening", f"{OWN} reply, edited"}
    versions = [v["source"] for post in data["posts"] for v in post["earlier_versions"]]
    assert versions == [f"{OWN} reply"]
    assert [t["title"] for t in data["threads"]] == [f"{OWN} title"]
    assert [h["body"] for h in data["held_posts"]] == [f"{OWN} held back"]
    assert [m["source"] for m in data["chat_messages"]] == [f"{OWN} chat"]
    (conversation,) = data["conversations"]
    assert conversation["your_request_note"] == f"{OWN} may we talk"
    assert [m["source"] for m in conversation["your_messages"]] == [f"{OWN} direct"]
    assert [f["details"] for f in data["flags_filed"]] == [f"{OWN} flag details"]
    assert [a["text"] for a in data["appeals"]] == [f"{OWN} appeal"]
    assert [s["reason"] for s in data["sanctions"]] == [SANCTION_REASON]
    assert [a["minutes"] for a in data["attendance"]] == [30]
    assert [r["session_id"] for r in data["session_rsvps"]] == [world.session.pk]
    assert len(data["attendance_proofs"]) == 1
    assert [g["title"] for g in data["goals"]] == [f"{OWN} goal"]
    assert [c["note"] for c in data["check_ins"]] == [f"{OWN} ok"]
    assert data["mentor_profile"]["experience"] == f"{OWN} experience"
    roles = sorted(m["your_role"] for m in data["mentorships"])
    assert roles == ["mentee", "mentor"]
    assert f"{OWN} note" in text
    assert "A moderator warned you." in [n["text"] for n in data["notifications"]]
    reaction = Reaction.objects.get(user=world.member)
    assert data["reactions"] == [
        {"post_id": world.other_reply.pk, "created_at": reaction.created_at.isoformat()}
    ]


@pytest.mark.django_db
def test_export_holds_nothing_of_anyone_else():
    world = build()
    _, text = exported(world.member)

    assert THEIRS not in text
    for person in (world.other, world.moderator):
        assert person.handle not in text
        assert person.email not in text
    # The other member's notices about the member arrive, but say only "another member".
    assert "another member" in text


# --- erasure ---------------------------------------------------------------------------------


TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def every_text_value():
    """(model, pk, field, text) for every text or JSON column of every table."""
    for model in apps.get_models(include_auto_created=True):
        fields = [f for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]
        if not fields:
            continue
        for row in model._base_manager.values_list("pk", *[f.attname for f in fields]):
            for field, value in zip(fields, row[1:], strict=True):
                if value not in (None, "", [], {}):
                    text = value if isinstance(value, str) else json.dumps(value)
                    yield model._meta.label, row[0], field.name, text


def traces(*needles: str) -> list[tuple]:
    pattern = re.compile(
        "|".join(rf"(?<![A-Za-z0-9_-]){re.escape(n)}(?![A-Za-z0-9_-])" for n in needles),
        re.IGNORECASE,
    )
    return [found for found in every_text_value() if pattern.search(found[3])]


def delete(world, *, keep_posts: bool) -> User:
    return privacy.delete_account(user=world.member, password=PASSWORD, keep_posts=keep_posts)


@pytest.mark.django_db
def test_every_relation_to_a_member_has_an_erasure_rule():
    assert set(privacy.user_relations()) == set(privacy.ERASURE)


@pytest.mark.parametrize("keep_posts", [False, True], ids=["remove", "keep"])
@pytest.mark.django_db
def test_erasure_leaves_the_handle_and_email_in_no_table_and_no_session(keep_posts):
    world = build()
    handle, email, pk = world.member.handle, world.member.email, world.member.pk
    assert traces(handle, email), "the world should name the member before erasure"
    sessions_before = Session.objects.count()

    tombstone = delete(world, keep_posts=keep_posts)

    assert traces(handle, email) == []
    assert tombstone.pk == pk
    assert tombstone.handle.startswith(privacy.TOMBSTONE_PREFIX)
    assert not tombstone.is_active
    assert not tombstone.has_usable_password()
    assert privacy.sessions_of(tombstone) == []
    assert Session.objects.count() == sessions_before - 2  # the other member's stays
    # The log keeps every action, now naming the tombstone.
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.WARNING)
    assert entry.member_id == pk
    assert entry.member_handle == tombstone.handle
    assert entry.target_label == f"@{tombstone.handle}"
    assert entry.reason == f"{tombstone.handle} was rude to @{world.other.handle}"
    assert ModerationLogEntry.objects.count() == 2


def test_nobody_can_take_a_tombstones_kind_of_handle():
    with pytest.raises(ValidationError):
        validate_handle("Former-Member-2b1f")
    validate_handle("former-members-circle")  # only the exact prefix is reserved


@pytest.mark.django_db
def test_removing_posts_leaves_placeholders_so_the_threads_keep_their_shape():
    world = build()
    world.group.refresh_from_db()
    members_before = world.group.member_count
    delete(world, keep_posts=False)

    opening = Post.objects.get(pk=world.own_opening.pk)
    assert opening.is_removed_by_author
    assert (opening.source, opening.html, opening.author) == ("", "", None)
    assert opening.thread.title == publishing.REMOVED_TITLE
    # The other member's reply is still there, still under the removed opening post.
    other_reply = Post.objects.get(pk=world.other_reply.pk)
    assert other_reply.source.startswith(THEIRS)
    assert other_reply.parent_id == opening.pk
    assert not PostRevision.objects.filter(post=world.own_reply.pk).exists()
    assert Post.objects.get(pk=world.own_reply.pk).is_removed_by_author
    # Chat and direct messages: theirs removed, the other member's untouched.
    own = ChatMessage.objects.filter(author__isnull=True)
    assert own.count() == 2
    assert all(m.is_removed and m.source == "" for m in own)
    assert ChatMessage.objects.filter(author=world.other, source__startswith=THEIRS).count() == 2
    conversation = Conversation.objects.get(room=world.conversation_room)
    assert conversation.state == Conversation.State.CLOSED
    assert conversation.note_source == ""
    assert Flag.objects.filter(details_source__contains=OWN).count() == 0
    assert Appeal.objects.get().source == ""
    world.group.refresh_from_db()
    assert world.group.member_count == members_before - 1


@pytest.mark.django_db
def test_keeping_posts_keeps_the_words_under_a_former_member():
    world = build()
    seq_before = ChatRoom.objects.get(pk=world.room.pk).last_seq
    delete(world, keep_posts=True)

    opening = Post.objects.get(pk=world.own_opening.pk)
    assert (opening.source, opening.author) == (f"{OWN} opening", None)
    assert not opening.is_removed_by_author
    assert Thread.objects.get(pk=opening.thread_id).title == f"{OWN} title"
    assert PostRevision.objects.filter(post=world.own_reply.pk).exists()
    kept = ChatMessage.objects.get(room=world.room, author__isnull=True)
    assert kept.source == f"{OWN} chat"
    assert not kept.is_removed
    # A new version, so open chat screens refill it without the old name.
    assert kept.version > seq_before > 0


@pytest.mark.django_db
def test_a_wrong_password_erases_nothing():
    world = build()
    with pytest.raises(ValidationError) as error:
        privacy.delete_account(user=world.member, password="not-it", keep_posts=False)
    assert "password" in error.value.message_dict
    world.member.refresh_from_db()
    assert world.member.is_active
    assert world.member.handle == "willow-leaving"
    assert len(privacy.sessions_of(world.member)) == 2


def rate_counters(user: User) -> list[str]:
    """The member's live rate-limit counters for two actions (this window and the last)."""
    keys = []
    for action, key in (("chat", str(user.pk)), ("edit", f"check-in:{user.pk}")):
        window = ratelimit.limit_for(action)[1]
        now = int(time.time() // window)
        keys += [f"rl:{action}:{key}:{start * window}" for start in (now, now - 1)]
    return list(cache.get_many(keys))


@pytest.mark.django_db
def test_erasure_forgets_the_members_cache_entries_and_wakes_their_sockets(
    django_capture_on_commit_callbacks,
):
    member = make_user("brief-visitor")
    other = make_user("long-stayer")
    for user in (member, other):
        ratelimit.hit("chat", key=str(user.pk))
        ratelimit.hit("edit", key=f"check-in:{user.pk}")
    epoch = realtime.authority_epochs([member.pk])[member.pk]
    assert len(rate_counters(member)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        privacy.delete_account(user=member, password=PASSWORD, keep_posts=True)

    assert rate_counters(member) == []
    assert len(rate_counters(other)) == 2
    assert realtime.authority_epochs([member.pk])[member.pk] > epoch


@pytest.mark.django_db(transaction=True)
def test_erasure_closes_the_members_open_chat_socket(settings):
    settings.KINSHIP_CHAT_RECHECK_SECONDS = 0.2
    group = make_group("night-harbour")
    member = make_user("short-stay")
    join(member, group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")

    async def scenario():
        socket = await open_socket(room, member)
        await socket.expect("history", skip=())
        await db(privacy.delete_account, user=member, password=PASSWORD, keep_posts=True)
        # Refused for the account (4403) or the session (4401): either way, within seconds.
        assert await socket.closed(timeout=5) in (4401, 4403)
        await socket.disconnect()

    run_async(scenario)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the log's trigger is PostgreSQL's")
@pytest.mark.django_db
def test_postgresql_lets_only_names_change_and_only_while_erasing():
    entry = ModerationLogEntry.objects.create(
        action=ModerationLogEntry.Action.WARNING, member_id=4242, member_handle="someone"
    )
    table = ModerationLogEntry._meta.db_table

    def attempt(sql: str, *, erasing: bool) -> bool:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                if erasing:
                    cursor.execute("SELECT set_config('kinship.erasing_identity', 'on', true)")
                cursor.execute(sql, [entry.pk])
                cursor.execute("SELECT set_config('kinship.erasing_identity', 'off', true)")
        except DatabaseError:
            return False
        return True

    rename = f"UPDATE {table} SET member_handle = 'former-member-1' WHERE id = %s"  # noqa: S608
    assert not attempt(rename, erasing=False)
    assert not attempt(f"UPDATE {table} SET action = 'ban' WHERE id = %s", erasing=True)  # noqa: S608
    assert not attempt(f"DELETE FROM {table} WHERE id = %s", erasing=True)  # noqa: S608
    assert attempt(rename, erasing=True)
    assert ModerationLogEntry.objects.get(pk=entry.pk).member_handle == "former-member-1"

    privacy._redact_moderation_log(4242, old_handle="someone", new_handle="former-member-2")
    assert ModerationLogEntry.objects.get(pk=entry.pk).member_handle == "former-member-2"
    # Erasing switches the exception off again behind it.
    assert not attempt(rename, erasing=False)


# --- retention -------------------------------------------------------------------------------


def stored_session(user: User, *, last_used_days_ago: float) -> str:
    key = login_session(user)
    age = timedelta(seconds=Session.get_session_store_class()().get_expiry_age())
    expires = timezone.now() - timedelta(days=last_used_days_ago) + age
    Session.objects.filter(session_key=key).update(expire_date=expires)
    return key


@pytest.mark.django_db
def test_purge_removes_sessions_and_notifications_past_retention(settings):
    settings.KINSHIP_RETENTION_DAYS = 3
    member = make_user("night-owl")
    fresh = stored_session(member, last_used_days_ago=1)
    unused = stored_session(member, last_used_days_ago=5)
    expired = stored_session(member, last_used_days_ago=20)
    old = Notification.objects.create(recipient=member, kind="moderation", text="then")
    Notification.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=4))
    recent = Notification.objects.create(recipient=member, kind="moderation", text="now")

    assert privacy.purge_expired_data() == {"sessions": 2, "notifications": 1}

    assert set(Session.objects.values_list("session_key", flat=True)) == {fresh}
    # Gone from the cache in front of the table too: neither signs anyone in any more.
    for key in (unused, expired):
        assert session_store(key).load() == {}
    assert session_store(fresh).load() != {}
    assert list(Notification.objects.all()) == [recent]


@pytest.mark.django_db
def test_purge_command_reports_what_it_removed(settings, capsys):
    settings.KINSHIP_RETENTION_DAYS = 3
    stored_session(make_user("early-bird"), last_used_days_ago=30)
    call_command("purge_expired_data")
    out = capsys.readouterr().out
    assert "Purged 1 expired or unused session(s) and 0 notification(s)" in out
    assert "older than 3 days" in out
    assert Session.objects.count() == 0


@pytest.mark.parametrize("days", ["0", "ninety"])
def test_a_bad_retention_setting_fails_at_start_with_a_clear_message(days):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env={**env, "DJANGO_DEBUG": "true", "KINSHIP_RETENTION_DAYS": days},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "KINSHIP_RETENTION_DAYS must be a whole number of days" in result.stderr


@pytest.mark.django_db
def test_the_chores_loop_purges_at_most_hourly(monkeypatch):
    calls = []
    monkeypatch.setattr(privacy, "purge_expired_data", lambda: calls.append(1))
    monkeypatch.setattr(privacy, "_next_purge", 0.0)
    privacy.purge_expired_data_when_due()
    privacy.purge_expired_data_when_due()
    assert calls == [1]
    monkeypatch.setattr(privacy, "_next_purge", 0.0)
    privacy.purge_expired_data_when_due()
    assert calls == [1, 1]


@pytest.mark.django_db
def test_queue_items_and_groups_survive_erasure():
    world = build()
    items = QueueItem.objects.count()
    delete(world, keep_posts=False)
    assert QueueItem.objects.count() == items
    assert SupportGroup.objects.filter(pk=world.group.pk).exists()
