"""Sanctions: the ladder (warning, chat mute, slow mode, suspension, ban), what each one
stops, how it ends by itself, lifting, and who may not be sanctioned.

Who may sanction by standing is checked cell by cell in test_permissions.py; here the
effects, through the real write path (forum.publishing) and the real chat socket.
"""

import time
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from forum import publishing
from forum.models import Membership, User
from moderation import actions, permissions
from moderation.models import ModerationLogEntry, Rule, Sanction
from moderation.ratelimit import RateLimited
from tests.chat_helpers import db, open_socket, run_async
from tests.conftest import join, make_group, make_user
from tests.moderation.test_actions import (
    assert_entry,
    build_scene,
    content,
    fresh,
    log_mark,
    notices,
    one_entry,
    quiet_scene,
    the_notice,
)
from tests.permissions_world import lift_limits

Action = ModerationLogEntry.Action


@pytest.fixture
def scene(db, settings):
    return quiet_scene(settings)


HOUR = timedelta(hours=1)
RECHECK = 0.2
REVOKED_WITHIN = 5.0


def anew(user: User) -> User:
    """A fresh instance: sanctions in force are remembered per user instance."""
    return User.objects.get(pk=user.pk)


def say(scene, body: str = "Still here.", client_id: str | None = None):
    return publishing.publish_chat_message(
        author=anew(scene.river),
        room=fresh(scene.room),
        body=body,
        client_id=client_id or f"c-{time.monotonic_ns()}",
    )


def reply(scene, body: str | None = None):
    return publishing.publish_reply(
        author=anew(scene.river),
        thread=content(scene, "thread"),
        body=body or f"A reply {time.monotonic_ns()}",
    )


def until(sanction: Sanction) -> str:
    """The end time as sanction_refusal words it."""
    return f"{timezone.localtime(sanction.ends_at):%d %b %Y, %H:%M %Z}"


# --- each step of the ladder: row, log, notice ---------------------------------------------------

LADDER = [
    # (kind, wrapper call, expected group: "group" or None)
    (
        "warning",
        lambda s, **kw: actions.warn_member(actor=s.heron, member=s.river, group=s.group, **kw),
        "group",
    ),
    (
        "chat_mute",
        lambda s, **kw: actions.mute_in_chat(
            actor=s.sage, member=s.river, group=s.group, duration=HOUR, **kw
        ),
        "group",
    ),
    (
        "slow_mode",
        lambda s, **kw: actions.sanction_member(
            actor=s.heron,
            member=s.river,
            kind="slow_mode",
            group=s.group,
            duration=HOUR,
            slow_mode_seconds=120,
            **kw,
        ),
        "group",
    ),
    (
        "suspension",
        lambda s, **kw: actions.suspend_from_group(
            actor=s.heron, member=s.river, group=s.group, duration=timedelta(days=7), **kw
        ),
        "group",
    ),
    ("ban", lambda s, **kw: actions.ban_member(actor=s.warden, member=s.river, **kw), None),
]


@pytest.mark.parametrize(("kind", "apply", "where"), LADDER, ids=[row[0] for row in LADDER])
def test_each_sanction_is_stored_logged_and_told(scene, kind, apply, where):
    rule = Rule.objects.filter(group=None).first()
    mark = log_mark()
    made = apply(
        scene, reason="Insulted **another member**.", rule=rule, message="Please *take a breath*."
    )

    made.refresh_from_db()
    group = scene.group if where else None
    assert (made.member, made.group, made.kind, made.rule) == (scene.river, group, kind, rule)
    assert made.reason_source == "Insulted **another member**."
    assert "<strong>another member</strong>" in made.reason_html
    assert "<em>take a breath</em>" in made.message_html
    assert made.lifted_at is None
    actor = made.created_by
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=actor,
        action=actions.SANCTION_ACTIONS[kind],
        target=("sanction", made.pk),
        member=scene.river,
        rule_title=rule.title,
        reason="Insulted **another member**.",
        group_id=group.pk if group else None,
    )
    assert entry.before == {}
    assert entry.after["kind"] == kind and entry.after["lifted"] is False
    assert entry.after["ends_at"] == (made.ends_at.isoformat() if made.ends_at else None)
    notice = the_notice(scene.river, actor)
    assert Sanction.Kind(kind).label in notice.text
    assert "Insulted" in notice.text and rule.title in notice.text
    if group:
        assert group.name in notice.text
    if made.ends_at:
        assert until(made) in notice.text
    if kind == "warning":
        assert made.ends_at is None
        assert permissions.sanctions_in_force(anew(scene.river)) == []  # a warning stops nothing
    else:
        assert permissions.sanction_in_force(anew(scene.river), kind, scene.group) == made


@pytest.mark.parametrize(("kind", "apply", "where"), LADDER[1:], ids=[r[0] for r in LADDER[1:]])
def test_the_same_sanction_twice_is_refused(scene, kind, apply, where):
    apply(scene, reason="First time.")
    mark = log_mark()
    with pytest.raises(PermissionDenied, match="already"):
        apply(scene, reason="Second time.")
    assert Sanction.objects.count() == 1 and log_mark() == mark


def test_warnings_may_be_repeated(scene):
    for _ in range(2):
        actions.warn_member(actor=scene.heron, member=scene.river, group=scene.group, reason="x")
    assert Sanction.objects.filter(kind="warning").count() == 2


def test_durations_and_slow_mode_are_validated(scene):
    with pytest.raises(ValidationError) as error:
        actions.sanction_member(
            actor=scene.heron, member=scene.river, kind="chat_mute", group=scene.group, reason="x"
        )
    assert "duration" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        actions.mute_in_chat(
            actor=scene.heron,
            member=scene.river,
            group=scene.group,
            reason="x",
            duration=timedelta(seconds=5),
        )
    assert "duration" in error.value.message_dict
    for seconds in (None, 5, 86_401):
        with pytest.raises(ValidationError) as error:
            actions.sanction_member(
                actor=scene.heron,
                member=scene.river,
                kind="slow_mode",
                group=scene.group,
                reason="x",
                duration=HOUR,
                slow_mode_seconds=seconds,
            )
        assert "slow_mode_seconds" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        actions.sanction_member(
            actor=scene.heron, member=scene.river, kind="exile", group=scene.group, reason="x"
        )
    assert "kind" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        actions.warn_member(actor=scene.heron, member=scene.river, group=scene.group, reason="")
    assert "reason" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        actions.warn_member(
            actor=scene.heron,
            member=scene.river,
            group=scene.group,
            reason="x",
            rule=Rule.objects.create(group=scene.private, title="Theirs"),
        )
    assert "rule" in error.value.message_dict
    assert Sanction.objects.count() == 0 and ModerationLogEntry.objects.count() == 0


# --- who may not be sanctioned --------------------------------------------------------------------


def test_sanctioning_yourself_is_refused(scene):
    with pytest.raises(PermissionDenied, match="yourself"):
        actions.warn_member(actor=scene.heron, member=scene.heron, group=scene.group, reason="x")
    with pytest.raises(PermissionDenied, match="yourself"):
        actions.ban_member(actor=scene.warden, member=scene.warden, reason="x")


def test_sanctioning_someone_outside_the_group_or_your_groups_is_refused(scene):
    stranger = make_user("stranger")
    with pytest.raises(PermissionDenied, match="not a member"):
        actions.mute_in_chat(
            actor=scene.heron, member=stranger, group=scene.group, reason="x", duration=HOUR
        )
    # kestrel moderates another group: no standing here (403), and a private group
    # kestrel is not in does not exist for them (404).
    with pytest.raises(PermissionDenied):
        actions.mute_in_chat(
            actor=scene.kestrel, member=scene.river, group=scene.group, reason="x", duration=HOUR
        )
    with pytest.raises(Http404):
        actions.mute_in_chat(
            actor=scene.kestrel, member=scene.river, group=scene.private, reason="x", duration=HOUR
        )
    assert Sanction.objects.count() == 0


def test_sanctioning_a_fellow_moderator_is_refused(scene):
    other_leader, other_mod = make_user("alder"), make_user("wren")
    join(other_leader, scene.group, Membership.Role.LEADER)
    join(other_mod, scene.group, Membership.Role.MODERATOR)
    other_warden = make_user("ranger", is_site_moderator=True)
    refused = [
        lambda: actions.mute_in_chat(
            actor=scene.sage, member=other_leader, group=scene.group, reason="x", duration=HOUR
        ),
        lambda: actions.mute_in_chat(
            actor=scene.sage, member=scene.heron, group=scene.group, reason="x", duration=HOUR
        ),
        lambda: actions.warn_member(
            actor=scene.heron, member=other_mod, group=scene.group, reason="x"
        ),
        lambda: actions.ban_member(actor=scene.warden, member=other_warden, reason="x"),
        lambda: actions.ban_member(actor=scene.warden, member=scene.keeper, reason="x"),
    ]
    for attempt in refused:
        with pytest.raises(PermissionDenied):
            attempt()
    assert Sanction.objects.count() == 0
    # A moderator outranks a leader; an admin may sanction anyone.
    actions.mute_in_chat(
        actor=scene.heron, member=scene.sage, group=scene.group, reason="x", duration=HOUR
    )
    actions.ban_member(actor=scene.keeper, member=other_warden, reason="x")
    assert Sanction.objects.count() == 2


def test_a_closed_account_is_not_sanctioned(scene):
    User.objects.filter(pk=scene.river.pk).update(is_active=False)
    with pytest.raises(PermissionDenied, match="closed"):
        actions.ban_member(actor=scene.warden, member=anew(scene.river), reason="x")


# --- what each one stops -------------------------------------------------------------------------


def test_a_muted_member_is_refused_in_chat_with_the_reason_and_end(scene):
    muted = actions.mute_in_chat(
        actor=scene.sage,
        member=scene.river,
        group=scene.group,
        reason="Flooding the room.",
        duration=HOUR,
    )
    with pytest.raises(PermissionDenied) as refusal:
        say(scene)
    text = str(refusal.value)
    assert text == permissions.sanction_refusal(muted)
    assert "muted" in text and "(Flooding the room)" in text and until(muted) in text
    # Muted in chat only: the forum still takes their words, and other groups' chats too.
    reply(scene)
    elsewhere = make_group("second-circle")
    join(scene.river, elsewhere)
    room = elsewhere.rooms.create(name="General", slug="general")
    publishing.publish_chat_message(author=anew(scene.river), room=room, body="Hi", client_id="e")


def test_a_mute_ends_by_itself_when_its_time_passes(scene):
    muted = actions.mute_in_chat(
        actor=scene.sage, member=scene.river, group=scene.group, reason="Flooding.", duration=HOUR
    )
    with pytest.raises(PermissionDenied):
        say(scene)
    # Nothing runs at the end: the time passing is enough.
    Sanction.objects.filter(pk=muted.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    message, created = say(scene, "Back again.")
    assert created and message.source == "Back again."
    assert permissions.sanction_in_force(anew(scene.river), "chat_mute", scene.group) is None
    # ... and an ended sanction is no longer there to lift.
    with pytest.raises(PermissionDenied, match="not in force"):
        actions.lift_sanction(actor=scene.heron, sanction=Sanction.objects.get(pk=muted.pk))


def test_a_suspension_ends_when_the_clock_passes_it(scene, monkeypatch):
    actions.suspend_from_group(
        actor=scene.heron,
        member=scene.river,
        group=scene.group,
        reason="Cooling off.",
        duration=timedelta(days=2),
    )
    with pytest.raises(PermissionDenied):
        reply(scene)
    later = timezone.now() + timedelta(days=2, minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    reply(scene)


@pytest.mark.parametrize("kind", ["suspension", "ban"])
def test_suspension_and_ban_refuse_posting_with_the_sanction_message(scene, kind):
    if kind == "ban":
        made = actions.ban_member(
            actor=scene.warden, member=scene.river, reason="Threats.", duration=timedelta(days=30)
        )
    else:
        made = actions.suspend_from_group(
            actor=scene.heron,
            member=scene.river,
            group=scene.group,
            reason="Threats.",
            duration=timedelta(days=3),
        )
    expected = permissions.sanction_refusal(made)
    assert "(Threats)" in expected and until(made) in expected
    attempts = [
        lambda: reply(scene),
        lambda: publishing.publish_thread(
            author=anew(scene.river), group=fresh(scene.group), title="New", body="Words"
        ),
        lambda: say(scene),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied) as refusal:
            attempt()
        assert str(refusal.value) == expected
    # A suspension is from one group; a ban is from the whole site.
    private_thread = publishing.publish_thread(
        author=scene.heron, group=scene.private, title="Elsewhere", body="Hello"
    )
    other = lambda: publishing.publish_reply(  # noqa: E731
        author=anew(scene.river), thread=fresh(private_thread), body="Me too"
    )
    if kind == "ban":
        with pytest.raises(PermissionDenied):
            other()
    else:
        other()


def test_slow_mode_makes_a_member_wait_between_posts(scene):
    actions.sanction_member(
        actor=scene.heron,
        member=scene.river,
        kind="slow_mode",
        group=scene.group,
        reason="Please slow down.",
        duration=HOUR,
        slow_mode_seconds=120,
    )
    from forum.models import ChatMessage, Post

    # river's posts and messages from the scene are old enough.
    ago = timezone.now() - timedelta(seconds=121)
    Post.objects.filter(author=scene.river).update(created_at=ago)
    ChatMessage.objects.filter(author=scene.river).update(created_at=ago)
    first = reply(scene)
    for attempt in (lambda: reply(scene), lambda: say(scene)):
        with pytest.raises(RateLimited) as limited:
            attempt()
        assert limited.value.action == "slow_mode"
        assert 110 <= limited.value.retry_after <= 120
        assert "slow mode" in str(limited.value)
    Post.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=100))
    with pytest.raises(RateLimited) as limited:
        say(scene)
    assert 15 <= limited.value.retry_after <= 20
    Post.objects.filter(pk=first.pk).update(created_at=ago)
    say(scene)  # the wait is over
    # Other members and other groups are not slowed.
    publishing.publish_reply(author=scene.peers[0], thread=content(scene, "thread"), body="a")
    publishing.publish_reply(author=scene.peers[0], thread=content(scene, "thread"), body="b")


# --- lifting -------------------------------------------------------------------------------------


def test_lifting_a_sanction_restores_the_member_logs_and_tells(scene):
    muted = actions.mute_in_chat(
        actor=scene.sage, member=scene.river, group=scene.group, reason="Flooding.", duration=HOUR
    )
    with pytest.raises(PermissionDenied):
        say(scene)
    notices_before = len(notices(scene.river))
    mark = log_mark()
    actions.lift_sanction(
        actor=scene.heron, sanction=Sanction.objects.get(pk=muted.pk), reason="Apologised."
    )
    stored = Sanction.objects.get(pk=muted.pk)
    assert stored.lifted_by == scene.heron and stored.lifted_at is not None
    assert not stored.is_active()
    say(scene)
    entry = one_entry(mark)
    assert_entry(
        entry,
        actor=scene.heron,
        action=Action.SANCTION_LIFTED,
        target=("sanction", muted.pk),
        member=scene.river,
        reason="Apologised.",
    )
    assert entry.before == {"kind": "chat_mute"} and entry.after["lifted"] is True
    assert len(notices(scene.river)) == notices_before + 1
    latest = notices(scene.river)[0]
    assert "lifted" in latest.text and scene.heron.handle not in latest.text
    with pytest.raises(PermissionDenied, match="not in force"):
        actions.lift_sanction(actor=scene.heron, sanction=Sanction.objects.get(pk=muted.pk))


def test_warnings_and_bans_are_lifted_only_where_it_makes_sense(scene):
    warning = actions.warn_member(
        actor=scene.heron, member=scene.river, group=scene.group, reason="x"
    )
    with pytest.raises(PermissionDenied, match="not in force"):
        actions.lift_sanction(actor=scene.warden, sanction=warning)
    ban = actions.ban_member(actor=scene.warden, member=scene.river, reason="x")
    with pytest.raises(PermissionDenied):  # a group moderator cannot lift a site-wide ban
        actions.lift_sanction(actor=scene.heron, sanction=ban)
    actions.lift_sanction(actor=scene.keeper, sanction=ban)
    reply(scene)


# --- the chat socket ------------------------------------------------------------------------------


@pytest.fixture
def live(settings):
    lift_limits(settings)
    settings.KINSHIP_CHAT_RECHECK_SECONDS = RECHECK
    return build_scene()


async def _settle(socket) -> None:
    for kind in ("history", "room", "presence"):
        await socket.expect(kind, skip=())


@pytest.mark.django_db(transaction=True)
def test_a_muted_member_gets_an_error_frame_with_the_reason(live):
    async def scenario():
        socket = await open_socket(live.room, live.river)
        await _settle(socket)
        muted = await db(
            lambda: actions.mute_in_chat(
                actor=live.sage,
                member=live.river,
                group=live.group,
                reason="Flooding the room.",
                duration=HOUR,
            )
        )
        await socket.send({"type": "send", "client_id": "m1", "body": "Can you hear me?"})
        error = await socket.expect("error")
        assert (error["code"], error["client_id"]) == ("forbidden", "m1")
        assert "(Flooding the room)" in error["message"] and until(muted) in error["message"]
        # Muted, not removed: the socket stays open for reading.
        await db(
            lambda: publishing.publish_chat_message(
                author=anew(live.sage), room=fresh(live.room), body="Welcome back", client_id="s"
            )
        )
        assert (await socket.expect("message"))["message"]["source"] == "Welcome back"
        await socket.disconnect()

    run_async(scenario)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["suspension", "ban"])
def test_suspension_and_ban_close_an_open_socket_within_seconds(live, kind):
    def sanction():
        if kind == "ban":
            actions.ban_member(actor=live.warden, member=anew(live.river), reason="Threats.")
        else:
            actions.suspend_from_group(
                actor=live.heron,
                member=anew(live.river),
                group=fresh(live.group),
                reason="Threats.",
                duration=timedelta(days=1),
            )

    async def scenario():
        socket = await open_socket(live.room, live.river)
        await _settle(socket)
        started = time.monotonic()
        await db(sanction)
        assert await socket.closed(timeout=REVOKED_WITHIN) == 4403
        assert time.monotonic() - started < REVOKED_WITHIN
        await socket.disconnect()

    run_async(scenario)


def test_a_moderator_cannot_lift_a_sanction_on_themselves(scene):
    muted = actions.mute_in_chat(
        actor=scene.warden, member=scene.heron, group=scene.group, reason="Flooding.", duration=HOUR
    )
    with pytest.raises(PermissionDenied):
        actions.lift_sanction(actor=anew(scene.heron), sanction=Sanction.objects.get(pk=muted.pk))
    assert Sanction.objects.get(pk=muted.pk).is_active()
    actions.lift_sanction(actor=scene.keeper, sanction=Sanction.objects.get(pk=muted.pk))


def test_lifting_follows_the_same_ranks_as_sanctioning(scene):
    fellow = make_user("wren")
    join(fellow, scene.group, Membership.Role.MODERATOR)
    # A site moderator mutes a group moderator: a fellow group moderator may not lift it.
    muted = actions.mute_in_chat(
        actor=scene.warden, member=scene.heron, group=scene.group, reason="Heated.", duration=HOUR
    )
    with pytest.raises(PermissionDenied, match="moderates here too"):
        actions.lift_sanction(actor=fellow, sanction=Sanction.objects.get(pk=muted.pk))
    assert not permissions.can_lift_sanction(fellow, Sanction.objects.get(pk=muted.pk))
    assert Sanction.objects.get(pk=muted.pk).is_active()
    assert not ModerationLogEntry.objects.filter(action=Action.SANCTION_LIFTED).exists()
    # A leader muted by a site moderator is outranked by the group moderator, who lifts it.
    leader_muted = actions.mute_in_chat(
        actor=scene.warden, member=scene.sage, group=scene.group, reason="x", duration=HOUR
    )
    assert permissions.can_lift_sanction(fellow, leader_muted)
    actions.lift_sanction(actor=fellow, sanction=leader_muted)
    actions.lift_sanction(actor=anew(scene.warden), sanction=Sanction.objects.get(pk=muted.pk))
    assert not Sanction.objects.get(pk=muted.pk).is_active()


def test_a_sanction_is_lifted_after_the_member_left_the_group(scene):
    suspended = actions.suspend_from_group(
        actor=scene.heron, member=scene.river, group=scene.group, reason="x", duration=HOUR
    )
    Membership.objects.filter(user=scene.river, group=scene.group).delete()
    actions.lift_sanction(actor=scene.heron, sanction=Sanction.objects.get(pk=suspended.pk))
    assert not Sanction.objects.get(pk=suspended.pk).is_active()


def test_a_refusal_reads_as_one_sentence_whatever_the_reason_ends_with(scene):
    muted = actions.mute_in_chat(actor=scene.heron, member=scene.river, group=scene.group,
                                 reason="Please take a breather.", duration=HOUR)  # fmt: skip
    text = permissions.sanction_refusal(muted)
    assert "(Please take a breather). You can read why" in text
