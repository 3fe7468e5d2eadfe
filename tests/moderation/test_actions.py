"""moderation/actions.py, action by action: what changes, what is logged, who is told,
what is broadcast, and what is refused.

Who may take each action (by standing, 404 vs 403) is checked cell by cell in
tests/moderation/test_permissions.py against docs/permissions.md; here each action's
effect: the database, exactly one log entry with its before/after snapshot, the
member's notification (which never names the moderator), and the live broadcasts
(captured on commit from a recording channel layer). Flags are here too; sanctions,
appeals and the log have files of their own.
"""

from dataclasses import dataclass

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import reverse

from forum import publishing, realtime
from forum.models import (
    ChatMessage,
    ChatRoom,
    Membership,
    Notification,
    Post,
    PostRevision,
    SupportGroup,
    Thread,
    User,
)
from moderation import actions
from moderation.models import Flag, ModerationLogEntry, QueueItem, Rule
from moderation.ratelimit import RateLimited
from tests.chat_helpers import broadcast_frame, db, open_socket, run_async
from tests.conftest import join, make_group, make_user
from tests.permissions_world import lift_limits

Action = ModerationLogEntry.Action


# --- the scene ---------------------------------------------------------------------------


@dataclass
class Scene:
    group: SupportGroup
    private: SupportGroup
    river: User  # member, the author of everything below
    peers: list[User]  # members who flag
    sage: User  # leader
    heron: User  # group moderator
    kestrel: User  # moderator of another group
    warden: User  # site moderator
    keeper: User  # admin
    thread: Thread
    post: Post  # river's reply in the thread
    room: ChatRoom
    message: ChatMessage  # river's message in the room


def build_scene() -> Scene:
    group, private = make_group("open-circle"), make_group("womens-circle", private=True)
    river = make_user("river")
    peers = [make_user(handle) for handle in ("meadow", "fern", "moss", "birch")]
    sage, heron, kestrel = make_user("sage"), make_user("heron"), make_user("kestrel")
    for person in (river, *peers):
        join(person, group)
    join(river, private)
    join(sage, group, Membership.Role.LEADER)
    join(heron, group, Membership.Role.MODERATOR)
    join(heron, private, Membership.Role.MODERATOR)
    join(kestrel, make_group("elsewhere"), Membership.Role.MODERATOR)
    thread = publishing.publish_thread(
        author=river, group=group, title="Three weeks in", body="Cravings at night."
    )
    post = publishing.publish_reply(author=river, thread=thread, body="Call me at 555-0100.")
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    message, _ = publishing.publish_chat_message(
        author=river, room=room, body="Anyone around tonight?", client_id="r1"
    )
    return Scene(
        group=group,
        private=private,
        river=river,
        peers=peers,
        sage=sage,
        heron=heron,
        kestrel=kestrel,
        warden=make_user("warden", is_site_moderator=True),
        keeper=make_user("keeper", is_staff=True, is_superuser=True),
        thread=thread,
        post=post,
        room=room,
        message=message,
    )


def quiet_scene(settings) -> Scene:
    """The scene with rate limits out of the way (each test file has a ``scene`` fixture)."""
    lift_limits(settings)
    return build_scene()


@pytest.fixture
def scene(db, settings) -> Scene:
    return quiet_scene(settings)


def fresh(obj):
    """The object read anew, with what target_of needs already loaded."""
    related = {
        Post: ("thread__group", "author"),
        Thread: ("group", "author"),
        ChatMessage: ("room__group", "author"),
    }.get(type(obj), ())
    return type(obj).objects.select_related(*related).get(pk=obj.pk)


def content(scene: Scene, kind: str):
    return fresh({"post": scene.post, "thread": scene.thread, "chat message": scene.message}[kind])


def is_hidden(obj) -> bool:
    obj = fresh(obj)
    return obj.is_removed if isinstance(obj, ChatMessage) else obj.is_hidden


# --- what an action leaves behind ----------------------------------------------------------


class Recorder:
    """A channel layer that records what is sent to groups."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, event: dict) -> None:
        self.sent.append((group, event))

    def to(self, group: str) -> list[dict]:
        return [event for name, event in self.sent if name == group]

    def frames(self, room: ChatRoom) -> list[dict]:
        return [broadcast_frame(event) for event in self.to(realtime.room_group(room.pk))]


def recording_layer(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: recorder)
    return recorder


def run_committing(capture):
    """Run ``fn`` and then what it left for after the commit (the broadcasts)."""

    def run(fn, *args, **kwargs):
        with capture(execute=True):
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def layer(monkeypatch) -> Recorder:
    return recording_layer(monkeypatch)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return run_committing(django_capture_on_commit_callbacks)


def log_mark() -> int:
    return ModerationLogEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def one_entry(since: int) -> ModerationLogEntry:
    """The single log entry written after ``since``: every action writes exactly one."""
    entries = list(ModerationLogEntry.objects.filter(pk__gt=since))
    assert len(entries) == 1, [(e.action, e.target_label) for e in entries]
    return entries[0]


def assert_entry(entry, *, actor: User | None, action: str, target, member: User, **fields):
    assert entry.action == action
    assert (entry.actor_id, entry.actor_handle) == (
        (actor.pk, actor.handle) if actor else (None, "")
    )
    assert (entry.target_type, entry.target_id) == target
    assert (entry.member_id, entry.member_handle) == (member.pk, member.handle)
    for name, value in fields.items():
        assert getattr(entry, name) == value, (name, getattr(entry, name), value)


def notices(member: User) -> list[Notification]:
    return list(Notification.objects.filter(recipient=member, kind=Notification.Kind.MODERATION))


def the_notice(member: User, moderator: User) -> Notification:
    """The member's one moderation notice, which never names who acted."""
    found = notices(member)
    assert len(found) == 1, [n.text for n in found]
    notice = found[0]
    assert notice.actor_id is None
    assert moderator.handle not in notice.text
    assert notice.url == reverse("moderation:mine")
    return notice


def queue_changed(layer: Recorder, group: SupportGroup | None) -> bool:
    wanted = {"type": "queue.changed"}
    site = wanted in layer.to(realtime.queue_group(None))
    return site and (group is None or wanted in layer.to(realtime.queue_group(group.pk)))


# --- hiding and restoring content -------------------------------------------------------------

KINDS = ("post", "thread", "chat message")


@pytest.mark.parametrize("kind", KINDS)
def test_hiding_content_hides_it_logs_once_and_tells_the_author(scene, layer, committed, kind):
    rule = Rule.objects.create(group=scene.group, title="No phone numbers")
    obj = content(scene, kind)
    mark = log_mark()

    committed(
        actions.hide_content, actor=scene.heron, obj=obj, reason="Keep contact private.", rule=rule
    )

    stored = fresh(obj)
    assert is_hidden(stored)
    if kind == "chat message":
        assert stored.removed_by == ChatMessage.RemovedBy.MODERATOR
        assert stored.removal_reason == "No phone numbers: Keep contact private."
        assert stored.source == "Anyone around tonight?"  # kept for review
        (frame,) = layer.frames(scene.room)
        assert frame["type"] == "message_removed"
        assert (frame["message"]["id"], frame["message"]["removed_by"]) == (obj.pk, "moderator")
        assert frame["message"]["html"] == frame["message"]["source"] == ""
    else:
        assert stored.hidden_reason == "No phone numbers: Keep contact private."
        assert not stored.hidden_pending_review
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=scene.heron,
        action=Action.CONTENT_HIDDEN,
        target=(kind, obj.pk),
        member=scene.river,
        actor_role="group moderator",
        reason="Keep contact private.",
        rule_title="No phone numbers",
        group_id=scene.group.pk,
    )
    assert (entry.before["hidden" if kind != "chat message" else "removed"]) in (False, None)
    assert entry.after.get("hidden", entry.after.get("removed")) in (True, "moderator")
    notice = the_notice(scene.river, scene.heron)
    assert "Keep contact private." in notice.text and "No phone numbers" in notice.text
    assert notice.group_id == scene.group.pk


@pytest.mark.parametrize("kind", KINDS)
def test_hiding_twice_is_refused_clearly(scene, kind):
    actions.hide_content(actor=scene.heron, obj=content(scene, kind), reason="Off topic.")
    mark = log_mark()
    with pytest.raises(PermissionDenied, match="already removed"):
        actions.hide_content(actor=scene.warden, obj=content(scene, kind), reason="Again.")
    assert ModerationLogEntry.objects.filter(pk__gt=mark).count() == 0


def test_hiding_needs_a_reason_and_a_rule_of_this_group(scene):
    with pytest.raises(ValidationError) as error:
        actions.hide_content(actor=scene.heron, obj=content(scene, "post"), reason="   ")
    assert "reason" in error.value.message_dict
    other_rule = Rule.objects.create(group=scene.private, title="Their rule")
    with pytest.raises(ValidationError) as error:
        actions.hide_content(
            actor=scene.heron, obj=content(scene, "post"), reason="x", rule=other_rule
        )
    assert "rule" in error.value.message_dict
    assert not is_hidden(scene.post)
    site_rule = Rule.objects.filter(group=None).first()
    assert site_rule is not None, "the migration creates the site rules"
    actions.hide_content(actor=scene.heron, obj=content(scene, "post"), reason="x", rule=site_rule)
    assert is_hidden(scene.post)


def test_hiding_resolves_the_open_queue_item_and_tells_the_queue(scene, layer, committed):
    actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="spam")
    layer.sent.clear()
    committed(actions.hide_content, actor=scene.heron, obj=content(scene, "post"), reason="Spam.")
    item = QueueItem.objects.get()
    assert (item.state, item.resolved_by, item.resolution) == ("resolved", scene.heron, "Removed")
    assert queue_changed(layer, scene.group)


@pytest.mark.parametrize("kind", KINDS)
def test_restoring_shows_it_again_logs_and_tells_the_author(scene, layer, committed, kind):
    actions.hide_content(actor=scene.heron, obj=content(scene, kind), reason="Looked like spam.")
    Notification.objects.all().delete()
    layer.sent.clear()
    mark = log_mark()

    committed(
        actions.restore_content, actor=scene.warden, obj=content(scene, kind), reason="It was fine."
    )

    assert not is_hidden(content(scene, kind))
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=scene.warden,
        action=Action.CONTENT_RESTORED,
        target=(kind, fresh(content(scene, kind)).pk),
        member=scene.river,
        actor_role="site moderator",
        reason="It was fine.",
    )
    assert entry.before != entry.after
    assert "restored" in the_notice(scene.river, scene.warden).text
    if kind == "chat message":
        (frame,) = layer.frames(scene.room)
        assert frame["type"] == "message_updated"
        assert frame["message"]["html"].strip() == "<p>Anyone around tonight?</p>"
        assert frame["message"]["removed"] is False
    with pytest.raises(PermissionDenied, match="nothing to restore"):
        actions.restore_content(actor=scene.warden, obj=content(scene, kind))


def test_remove_chat_message_uses_a_default_reason(scene):
    actions.remove_chat_message(actor=scene.sage, message=content(scene, "chat message"))
    stored = fresh(scene.message)
    assert stored.removal_reason == actions.CHAT_REMOVAL_REASON
    entry = ModerationLogEntry.objects.get()
    assert (entry.actor_role, entry.reason) == ("leader", actions.CHAT_REMOVAL_REASON)


@pytest.mark.django_db(transaction=True)
def test_removal_and_restore_reach_connected_sockets(settings):
    lift_limits(settings)
    scene = build_scene()

    async def scenario():
        socket = await open_socket(scene.room, scene.peers[0])
        await socket.expect("history", skip=())
        await socket.expect("room", skip=())
        await db(
            lambda: actions.remove_chat_message(
                actor=scene.sage, message=content(scene, "chat message")
            )
        )
        removed = (await socket.expect("message_removed"))["message"]
        assert (removed["id"], removed["removed_by"], removed["html"]) == (
            scene.message.pk,
            "moderator",
            "",
        )
        await db(
            lambda: actions.restore_content(actor=scene.heron, obj=content(scene, "chat message"))
        )
        restored = await socket.expect("message_updated")
        assert restored["message"]["html"].strip() == "<p>Anyone around tonight?</p>"
        assert restored["message"]["version"] > removed["version"]
        await socket.disconnect()

    run_async(scenario)


# --- editing, warnings, threads ------------------------------------------------------------------


def test_editing_a_post_keeps_the_old_text_and_shows_a_note(scene):
    mark = log_mark()
    actions.edit_content(
        actor=scene.heron,
        post=content(scene, "post"),
        body="Call me at [number removed].",
        note="Took out a *phone number*.",
    )
    stored = fresh(scene.post)
    assert stored.source == "Call me at [number removed]."
    assert "555-0100" not in stored.html
    assert "<em>phone number</em>" in stored.moderator_note
    assert stored.edited_at is not None
    assert PostRevision.objects.get(post=stored).source == "Call me at 555-0100."
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=scene.heron,
        action=Action.CONTENT_EDITED,
        target=("post", stored.pk),
        member=scene.river,
        reason="Took out a *phone number*.",
    )
    assert entry.before["source"] == "Call me at 555-0100."
    assert entry.after["source"] == "Call me at [number removed]."
    assert "edited" in the_notice(scene.river, scene.heron).text
    with pytest.raises(ValidationError) as error:
        actions.edit_content(
            actor=scene.heron,
            post=content(scene, "post"),
            body="Call me at [number removed].",
            note="Again.",
        )
    assert "body" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        actions.edit_content(actor=scene.heron, post=content(scene, "post"), body="New", note="")
    assert "note" in error.value.message_dict


@pytest.mark.parametrize("kind", ["post", "thread"])
def test_a_content_warning_is_set_logged_and_cleared(scene, kind):
    mark = log_mark()
    actions.set_content_warning(actor=scene.sage, obj=content(scene, kind), warning="Relapse")
    assert content(scene, kind).content_warning == "Relapse"
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=scene.sage,
        action=Action.CONTENT_WARNING_SET,
        target=(kind, content(scene, kind).pk),
        member=scene.river,
    )
    assert (entry.before["content_warning"], entry.after["content_warning"]) == ("", "Relapse")
    assert "Relapse" in the_notice(scene.river, scene.sage).text
    with pytest.raises(ValidationError, match="already"):
        actions.set_content_warning(actor=scene.sage, obj=content(scene, kind), warning="Relapse")
    actions.set_content_warning(actor=scene.sage, obj=content(scene, kind), warning="")
    assert content(scene, kind).content_warning == ""
    assert len(notices(scene.river)) == 1  # clearing a warning is no news to the author


def test_content_warnings_do_not_go_on_chat_messages(scene):
    with pytest.raises(PermissionDenied):
        actions.set_content_warning(
            actor=scene.sage, obj=content(scene, "chat message"), warning="x"
        )


def test_a_locked_thread_refuses_replies_at_once(scene):
    mark = log_mark()
    actions.lock_thread(actor=scene.sage, thread=content(scene, "thread"), reason="Heated.")
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=scene.sage,
        action=Action.THREAD_LOCKED,
        target=("thread", scene.thread.pk),
        member=scene.river,
        reason="Heated.",
    )
    assert (entry.before["locked"], entry.after["locked"]) == (False, True)
    notice = the_notice(scene.river, scene.sage)
    assert notice.text == "locked your thread “Three weeks in”: Heated."
    assert notice.group == scene.group
    with pytest.raises(PermissionDenied, match="locked"):
        publishing.publish_reply(author=scene.peers[0], thread=content(scene, "thread"), body="Hi")
    # Its leaders and moderators may still write there.
    publishing.publish_reply(author=scene.sage, thread=content(scene, "thread"), body="Closing.")
    with pytest.raises(PermissionDenied, match="already locked"):
        actions.lock_thread(actor=scene.heron, thread=content(scene, "thread"))
    actions.lock_thread(actor=scene.heron, thread=content(scene, "thread"), locked=False)
    assert ModerationLogEntry.objects.filter(action=Action.THREAD_UNLOCKED).count() == 1
    assert notices(scene.river)[0].text == "unlocked your thread “Three weeks in”."
    publishing.publish_reply(author=scene.peers[0], thread=content(scene, "thread"), body="Hi")
    with pytest.raises(PermissionDenied, match="already unlocked"):
        actions.lock_thread(actor=scene.heron, thread=content(scene, "thread"), locked=False)


def test_pinning_and_unpinning_are_logged(scene):
    actions.pin_thread(actor=scene.sage, thread=content(scene, "thread"))
    assert content(scene, "thread").is_pinned
    assert the_notice(scene.river, scene.sage).text == "pinned your thread “Three weeks in”."
    with pytest.raises(PermissionDenied, match="already pinned"):
        actions.pin_thread(actor=scene.sage, thread=content(scene, "thread"))
    actions.pin_thread(actor=scene.sage, thread=content(scene, "thread"), pinned=False)
    assert not content(scene, "thread").is_pinned
    assert list(ModerationLogEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        Action.THREAD_PINNED,
        Action.THREAD_UNPINNED,
    ]


def test_moving_a_thread_needs_standing_in_both_groups(scene):
    second = make_group("second-circle")
    with pytest.raises(PermissionDenied):
        actions.move_thread(actor=scene.heron, thread=content(scene, "thread"), to_group=second)
    with pytest.raises(Http404):  # a private group heron is not in stays unknown
        actions.move_thread(
            actor=scene.heron,
            thread=content(scene, "thread"),
            to_group=make_group("hidden-circle", private=True),
        )
    with pytest.raises(ValidationError):
        actions.move_thread(
            actor=scene.heron, thread=content(scene, "thread"), to_group=scene.group
        )
    assert ModerationLogEntry.objects.count() == 0
    mark = log_mark()
    join(scene.heron, second, Membership.Role.MODERATOR)
    actions.move_thread(
        actor=scene.heron,
        thread=content(scene, "thread"),
        to_group=second,
        reason="Fits there better.",
    )
    assert content(scene, "thread").group == second
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=scene.heron,
        action=Action.THREAD_MOVED,
        target=("thread", scene.thread.pk),
        member=scene.river,
    )
    assert (entry.before["group"], entry.after["group"]) == ("open-circle", "second-circle")
    assert "Second Circle" in the_notice(scene.river, scene.heron).text


def test_moving_a_thread_takes_its_open_queue_items_along(scene, layer, committed):
    second = make_group("second-circle")
    join(scene.heron, second, Membership.Role.MODERATOR)
    flagger = scene.peers[0]
    for obj in (content(scene, "thread"), content(scene, "post"), content(scene, "chat message")):
        actions.flag(flagger=flagger, obj=obj, reason="spam")
    # An item already decided stays where it was decided.
    opening = Post.objects.get(thread=scene.thread, parent__isnull=True)
    decided = actions.flag(flagger=flagger, obj=opening, reason="spam").item
    actions.dismiss_flags(actor=scene.heron, item=decided)
    layer.sent.clear()

    committed(
        actions.move_thread, actor=scene.heron, thread=content(scene, "thread"), to_group=second
    )

    def group_of(obj) -> SupportGroup:
        return QueueItem.objects.get(
            object_id=obj.pk, content_type__model=obj._meta.model_name
        ).group

    assert group_of(scene.thread) == second
    assert group_of(scene.post) == second
    assert group_of(scene.message) == scene.group  # the chat is not in the thread
    assert QueueItem.objects.get(pk=decided.pk).group == scene.group
    assert queue_changed(layer, scene.group) and queue_changed(layer, second)


# --- content its author deleted -----------------------------------------------------------------


def test_content_its_author_deleted_cannot_be_acted_on(scene):
    publishing.remove_own_post(actor=scene.river, post=content(scene, "post"))
    publishing.withdraw_chat_message(author=scene.river, message=content(scene, "chat message"))
    attempts = [
        lambda: actions.hide_content(actor=scene.heron, obj=content(scene, "post"), reason="x"),
        lambda: actions.restore_content(actor=scene.heron, obj=content(scene, "post")),
        lambda: actions.edit_content(
            actor=scene.heron, post=content(scene, "post"), body="y", note="z"
        ),
        lambda: actions.set_content_warning(
            actor=scene.heron, obj=content(scene, "post"), warning="w"
        ),
        lambda: actions.remove_chat_message(
            actor=scene.heron, message=content(scene, "chat message")
        ),
        lambda: actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="spam"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match="deleted"):
            attempt()
    assert ModerationLogEntry.objects.count() == 0
    assert fresh(scene.message).removed_by == ChatMessage.RemovedBy.AUTHOR


def test_hide_content_refuses_a_member_as_its_target(scene):
    with pytest.raises(PermissionDenied):
        actions.hide_content(actor=scene.warden, obj=scene.river, reason="Not content.")
    assert ModerationLogEntry.objects.count() == 0


# --- flags -------------------------------------------------------------------------------------


def test_a_flag_opens_a_queue_item_and_tells_the_queue(scene, layer, committed):
    made = committed(
        actions.flag,
        flagger=scene.peers[0],
        obj=content(scene, "post"),
        reason="harassment",
        details="Felt *targeted*.",
    )
    item = QueueItem.objects.get()
    assert (made.item, made.flagger, made.details_html.strip()) == (
        item,
        scene.peers[0],
        "<p>Felt <em>targeted</em>.</p>",
    )
    assert (item.group, item.member, item.flag_count, item.weight, item.is_urgent) == (
        scene.group,
        scene.river,
        1,
        3,
        False,
    )
    assert queue_changed(layer, scene.group)
    # The flagged member hears nothing; no log entry until something is done.
    assert notices(scene.river) == []
    assert ModerationLogEntry.objects.count() == 0


def test_a_member_flags_an_item_only_once(scene):
    actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="spam")
    with pytest.raises(ValidationError, match="already flagged"):
        actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="harassment")
    assert Flag.objects.count() == 1
    assert QueueItem.objects.get().flag_count == 1


@pytest.mark.parametrize("kind", KINDS)
def test_three_members_flags_hide_content_pending_review(scene, layer, committed, settings, kind):
    assert settings.KINSHIP_FLAGS_TO_HIDE == 3
    for peer in scene.peers[:2]:
        committed(actions.flag, flagger=peer, obj=content(scene, kind), reason="spam")
    assert not is_hidden(content(scene, kind))
    assert layer.frames(scene.room) == []
    committed(actions.flag, flagger=scene.peers[2], obj=content(scene, kind), reason="harassment")

    stored = content(scene, kind)
    assert is_hidden(stored)
    if kind == "chat message":
        assert stored.removed_by == ChatMessage.RemovedBy.REVIEW
        (frame,) = layer.frames(scene.room)
        assert frame["type"] == "message_removed"
        assert (frame["message"]["id"], frame["message"]["removed_by"]) == (stored.pk, "review")
    else:
        assert stored.hidden_pending_review
    item = QueueItem.objects.get()
    assert item.hidden_pending_review and item.flag_count == 3
    entry = ModerationLogEntry.objects.get()
    assert_entry(
        entry,
        actor=None,
        action=Action.HIDDEN_BY_FLAGS,
        target=(kind, stored.pk),
        member=scene.river,
        actor_role="automatic",
    )
    # Hidden now: members can no longer flag it (a hidden thread no longer exists for
    # them); moderators are on it.
    refusal = Http404 if kind == "thread" else PermissionDenied
    with pytest.raises(refusal):
        actions.flag(flagger=scene.peers[3], obj=content(scene, kind), reason="spam")
    assert ModerationLogEntry.objects.count() == 1


def test_the_threshold_is_a_setting(scene, settings):
    settings.KINSHIP_FLAGS_TO_HIDE = 1
    actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="spam")
    assert is_hidden(scene.post)


def test_crisis_flags_never_hide_and_mark_the_item_urgent(scene):
    for peer in scene.peers[:3]:
        actions.flag(flagger=peer, obj=content(scene, "post"), reason="crisis")
    assert not is_hidden(scene.post)
    item = QueueItem.objects.get()
    assert item.is_urgent and item.flag_count == 3 and item.weight == 0
    # Crisis flags do not count toward hiding either.
    actions.flag(flagger=scene.peers[3], obj=content(scene, "post"), reason="spam")
    assert not is_hidden(scene.post)


def test_dismissing_flags_restores_what_they_hid(scene, layer, committed):
    for peer in scene.peers[:3]:
        actions.flag(flagger=peer, obj=content(scene, "chat message"), reason="spam")
    assert fresh(scene.message).removed_by == ChatMessage.RemovedBy.REVIEW
    layer.sent.clear()
    mark = log_mark()
    item = QueueItem.objects.get()

    committed(actions.dismiss_flags, actor=scene.heron, item=item, note="Nothing wrong.")

    assert not is_hidden(scene.message)
    item.refresh_from_db()
    assert (item.state, item.resolved_by, item.resolution) == (
        "resolved",
        scene.heron,
        "Flags dismissed",
    )
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=scene.heron,
        action=Action.FLAGS_DISMISSED,
        target=("chat message", scene.message.pk),
        member=scene.river,
        reason="Nothing wrong.",
    )
    assert entry.before["removed"] == "review" and entry.after["removed"] is None
    (frame,) = layer.frames(scene.room)
    assert frame["type"] == "message_updated" and frame["message"]["removed"] is False
    assert queue_changed(layer, scene.group)
    with pytest.raises(PermissionDenied, match="already resolved"):
        actions.dismiss_flags(actor=scene.warden, item=item)


def test_a_moderators_removal_closes_the_item_and_dismissing_cannot_undo_it(scene):
    for peer in scene.peers[:3]:
        actions.flag(flagger=peer, obj=content(scene, "post"), reason="spam")
    item = QueueItem.objects.get()
    actions.hide_content(actor=scene.warden, obj=content(scene, "post"), reason="Spam.")
    stored = fresh(scene.post)
    assert stored.is_hidden and not stored.hidden_pending_review
    with pytest.raises(PermissionDenied, match="already resolved"):
        actions.dismiss_flags(actor=scene.heron, item=item)
    assert is_hidden(scene.post)


def test_flagging_your_own_words_or_yourself_is_refused(scene):
    for obj in (content(scene, "post"), content(scene, "chat message"), scene.river):
        with pytest.raises(PermissionDenied, match="cannot flag yourself"):
            actions.flag(flagger=scene.river, obj=obj, reason="spam")
    assert Flag.objects.count() == 0


def test_a_flag_needs_a_known_reason_and_details_for_other(scene):
    with pytest.raises(ValidationError) as error:
        actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="rude")
    assert "reason" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        actions.flag(
            flagger=scene.peers[0], obj=content(scene, "post"), reason="other", details="  "
        )
    assert "details" in error.value.message_dict
    assert Flag.objects.count() == 0
    actions.flag(
        flagger=scene.peers[0],
        obj=content(scene, "post"),
        reason="other",
        details="Asks for money.",
    )


def test_a_flag_with_an_unknown_reason_costs_no_allowance(scene, settings):
    # The reason is checked before the rate limit; the details, like all text, after it
    # (the write path's order: access, rate limit, validate).
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "flag": (1, 3600)}
    with pytest.raises(ValidationError):
        actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="rude")
    actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="spam")


def test_flags_are_rate_limited(scene, settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "flag": (2, 3600)}
    flagger = scene.peers[0]
    actions.flag(flagger=flagger, obj=content(scene, "post"), reason="spam")
    actions.flag(flagger=flagger, obj=content(scene, "thread"), reason="spam")
    with pytest.raises(RateLimited) as limited:
        actions.flag(flagger=flagger, obj=content(scene, "chat message"), reason="spam")
    assert limited.value.action == "flag" and 0 < limited.value.retry_after <= 3600
    assert Flag.objects.count() == 2


def test_who_may_flag(scene):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied):
        actions.flag(flagger=AnonymousUser(), obj=content(scene, "post"), reason="spam")
    hidden_thread = publishing.publish_thread(
        author=scene.river, group=scene.private, title="Only us", body="Private words."
    )
    with pytest.raises(Http404):
        actions.flag(flagger=scene.peers[0], obj=fresh(hidden_thread), reason="spam")
    # A public group's posts can be flagged by any signed-in reader; its chat only by members.
    outsider = make_user("stranger")
    actions.flag(flagger=outsider, obj=content(scene, "post"), reason="spam")
    with pytest.raises(PermissionDenied):
        actions.flag(flagger=outsider, obj=content(scene, "chat message"), reason="spam")
    # A member can be flagged (site moderators review it).
    made = actions.flag(flagger=outsider, obj=scene.river, reason="harassment")
    assert made.item.group is None and made.item.member == scene.river


def test_hidden_content_can_no_longer_be_flagged_by_members(scene):
    actions.hide_content(actor=scene.heron, obj=content(scene, "post"), reason="Spam.")
    with pytest.raises(PermissionDenied, match="hidden already"):
        actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="spam")


def test_a_post_in_a_hidden_thread_does_not_exist_for_a_flagger(scene):
    actions.hide_content(actor=scene.heron, obj=content(scene, "thread"), reason="Spam.")
    with pytest.raises(Http404):
        actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="spam")


def test_after_a_decision_a_new_flag_opens_a_new_item(scene):
    actions.flag(flagger=scene.peers[0], obj=content(scene, "post"), reason="spam")
    actions.dismiss_flags(actor=scene.heron, item=QueueItem.objects.get())
    actions.flag(flagger=scene.peers[1], obj=content(scene, "post"), reason="spam")
    assert QueueItem.objects.filter(state="open").count() == 1
    assert QueueItem.objects.count() == 2


# --- notes --------------------------------------------------------------------------------------


def test_a_moderator_note_is_logged_and_never_told_to_the_member(scene):
    mark = log_mark()
    note = actions.add_note(
        actor=scene.heron, member=scene.river, group=scene.group, text="Lost a friend **recently**."
    )
    assert note.html.strip() == "<p>Lost a friend <strong>recently</strong>.</p>"
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=scene.heron,
        action=Action.NOTE_ADDED,
        target=("member", scene.river.pk),
        member=scene.river,
    )
    assert Action.NOTE_ADDED not in ModerationLogEntry.PUBLIC_ACTIONS
    assert notices(scene.river) == []
    with pytest.raises(ValidationError):
        actions.add_note(actor=scene.heron, member=scene.river, group=scene.group, text="")
