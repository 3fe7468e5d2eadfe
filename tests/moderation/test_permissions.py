"""Every cell of the action tables in docs/permissions.md against moderation.permissions.

The tables are parsed from the document itself, so a test fails when either the
document or the code changes. For each row, role and group visibility the test
builds the situation (the actor, their membership, a post by someone else or by
the actor, a locked thread) and asks the ``can_*`` predicate. Where a ``check_*``
function exists it must agree: silent for "yes", and for "no" Http404 when the
actor may not see the group, otherwise PermissionDenied.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from forum import publishing, selectors
from forum.models import ChatMessage, ChatRoom, Thread
from moderation import actions, permissions
from tests.conftest import join, make_group, make_user
from tests.permissions_world import (
    ROLES,
    TABLES,
    VISIBILITIES,
    Table,
    World,
    build_world,
    lift_limits,
    table_cases,
)

ACTION_TABLES = {"public": "Public group", "private": "Private group"}


def action_table(visibility: str) -> Table:
    return TABLES[ACTION_TABLES[visibility]]


# --- how to ask each documented row ------------------------------------------------


@dataclass(frozen=True)
class Check:
    """How to ask one row: the predicate, the matching ``check_*`` (if any), and whether
    a refusal depends on seeing the group (404) or not (always 403)."""

    ask: Callable[[World], tuple[Callable[..., bool], tuple, dict]]
    check: Callable | None = None
    about_group: bool = True


def _locked_thread(world: World) -> Thread:
    Thread.objects.filter(pk=world.thread.pk).update(is_locked=True)
    return world.fresh_thread()


ROW_CHECKS: dict[str, Check] = {
    "view group": Check(
        lambda w: (permissions.can_view_group, (w.actor, w.fresh_group()), {}),
        permissions.check_can_view_group,
    ),
    "start thread": Check(
        lambda w: (permissions.can_post_in_group, (w.actor, w.fresh_group()), {}),
        permissions.check_can_post_in_group,
    ),
    "reply": Check(
        lambda w: (permissions.can_reply, (w.actor, w.fresh_thread()), {}),
        permissions.check_can_reply,
    ),
    "reply in locked thread": Check(
        lambda w: (permissions.can_reply, (w.actor, _locked_thread(w)), {}),
        permissions.check_can_reply,
    ),
    "edit own post": Check(
        lambda w: (permissions.can_edit_post, (w.actor, w.own_post()), {}),
        permissions.check_can_edit_post,
    ),
    "remove own post": Check(
        lambda w: (permissions.can_remove_own_post, (w.actor, w.own_post()), {}),
        permissions.check_can_remove_own_post,
    ),
    "view edit history of another's post": Check(
        lambda w: (permissions.can_view_history, (w.actor, w.fresh_post(w.others_post)), {}),
        permissions.check_can_view_history,
    ),
    "support another's post": Check(
        lambda w: (permissions.can_support, (w.actor, w.fresh_post(w.others_post)), {}),
        permissions.check_can_support,
    ),
    "follow thread": Check(
        lambda w: (permissions.can_subscribe, (w.actor, w.fresh_thread()), {}),
    ),
    "lead group (settings, join requests, invitation link)": Check(
        lambda w: (permissions.can_lead_group, (w.actor, w.fresh_group()), {}),
        permissions.check_can_lead_group,
    ),
    "join (without invitation)": Check(
        lambda w: (permissions.can_join_group, (w.actor, w.fresh_group()), {}),
    ),
    "join with invitation link": Check(
        lambda w: (permissions.can_join_group, (w.actor, w.fresh_group()), {"invited": True}),
    ),
    "leave": Check(
        lambda w: (permissions.can_leave_group, (w.actor, w.fresh_group()), {}),
    ),
    "create group": Check(
        lambda w: (permissions.can_create_group, (w.actor,), {}),
        permissions.check_can_create_group,
        about_group=False,
    ),
}


# Chat messages have no check_* of their own: the write path is the check. For "yes"
# it goes through (the world is thrown away after the row); for "no" it must refuse.


def edit_chat_message_as(actor, message: ChatMessage) -> None:
    publishing.edit_chat_message(editor=actor, message=message, body="Said it better.")


def withdraw_chat_message_as(actor, message: ChatMessage) -> None:
    publishing.withdraw_chat_message(author=actor, message=message)


def remove_chat_message_as(actor, message: ChatMessage) -> None:
    actions.remove_chat_message(actor=actor, message=message)


ROW_CHECKS.update(
    {
        "read chat rooms": Check(
            lambda w: (permissions.can_read_room, (w.actor, w.room()), {}),
            permissions.check_can_read_room,
        ),
        "write in an open room": Check(
            lambda w: (permissions.can_write_room, (w.actor, w.room(ChatRoom.State.OPEN)), {}),
            permissions.check_can_write_room,
        ),
        "write in a read-only room": Check(
            lambda w: (
                permissions.can_write_room,
                (w.actor, w.room(ChatRoom.State.READ_ONLY)),
                {},
            ),
            permissions.check_can_write_room,
        ),
        "write in an archived room": Check(
            lambda w: (
                permissions.can_write_room,
                (w.actor, w.room(ChatRoom.State.ARCHIVED)),
                {},
            ),
            permissions.check_can_write_room,
        ),
        "edit own chat message": Check(
            lambda w: (permissions.can_edit_chat_message, (w.actor, w.own_chat_message()), {}),
            edit_chat_message_as,
            about_group=False,
        ),
        "delete own chat message": Check(
            lambda w: (permissions.can_delete_chat_message, (w.actor, w.own_chat_message()), {}),
            withdraw_chat_message_as,
            about_group=False,
        ),
        "remove another's chat message": Check(
            lambda w: (
                permissions.can_delete_chat_message,
                (w.actor, w.others_chat_message()),
                {},
            ),
            remove_chat_message_as,
        ),
        "manage rooms (create, rename, make read-only, archive)": Check(
            lambda w: (permissions.can_manage_rooms, (w.actor, w.fresh_group()), {}),
            permissions.check_can_manage_rooms,
        ),
    }
)
SITE_WIDE_ROWS = {"create group"}


@pytest.fixture
def quick(settings):
    return lift_limits(settings)


# --- the document's shape ----------------------------------------------------------


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_action_table_has_every_role_as_a_column(visibility):
    assert action_table(visibility).columns == ("Action", *ROLES)


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_every_documented_action_has_a_check_and_every_check_a_row(visibility):
    documented = set(action_table(visibility).rows)
    assert documented - set(ROW_CHECKS) == set(), "rows in the doc that no test checks"
    assert set(ROW_CHECKS) - documented == set(), "checks whose row is missing from the doc"


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_action_cells_are_yes_or_no(visibility):
    for row, cells in action_table(visibility).rows.items():
        for role, cell in cells.items():
            assert cell in {"yes", "no"}, f"{visibility} / {row} / {role}: {cell!r}"


def test_site_wide_rows_are_the_same_for_public_and_private_groups():
    public, private = action_table("public"), action_table("private")
    for row in SITE_WIDE_ROWS:
        assert public.rows[row] == private.rows[row], row


# --- every cell ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("quick")
@pytest.mark.parametrize(
    ("visibility", "row", "role", "documented"), list(table_cases(action_table))
)
def test_permission_matches_the_table(visibility, row, role, documented):
    spec = ROW_CHECKS.get(row)
    assert spec is not None, f"docs/permissions.md has a row {row!r} that no test checks"
    world = build_world(visibility, role)
    predicate, args, kwargs = spec.ask(world)
    expected = documented == "yes"

    assert bool(predicate(*args, **kwargs)) is expected, (
        f"{predicate.__name__} for a {role} in a {visibility} group: the table says {documented!r}"
    )

    if spec.check is None:
        return
    if expected:
        try:
            spec.check(*args, **kwargs)
        except (Http404, PermissionDenied) as refusal:
            pytest.fail(
                f"{predicate.__name__} allows a {role} in a {visibility} group but "
                f"{spec.check.__name__} refuses with {type(refusal).__name__}: {refusal}"
            )
        return
    hidden = spec.about_group and not permissions.can_view_group(world.actor, world.fresh_group())
    wanted = Http404 if hidden else PermissionDenied
    with pytest.raises((Http404, PermissionDenied)) as refusal:
        spec.check(*args, **kwargs)
    assert isinstance(refusal.value, wanted), (
        f"{spec.check.__name__} refuses a {role} in a {visibility} group with "
        f"{type(refusal.value).__name__}; expected {wanted.__name__}"
    )


# --- profiles and recovery dates (the prose rules in docs/permissions.md) ------------

RECOVERY_DATE_SEEN_BY = {
    # member's choice: {viewer: sees the date?}
    "only_me": {
        "self": True,
        "anonymous": False,
        "shares a group": False,
        "stranger": False,
        "site moderator": False,
    },
    "groups": {
        "self": True,
        "anonymous": False,
        "shares a group": True,
        "stranger": False,
        "site moderator": False,
    },
    "everyone": {
        "self": True,
        "anonymous": True,
        "shares a group": True,
        "stranger": True,
        "site moderator": True,
    },
}


@pytest.mark.django_db
@pytest.mark.usefixtures("quick")
@pytest.mark.parametrize("choice", list(RECOVERY_DATE_SEEN_BY))
def test_recovery_date_follows_the_members_choice(choice):
    group = make_group("quiet-harbour")
    member = make_user("dawn", recovery_date=date(2020, 5, 1), recovery_date_visibility=choice)
    join(member, group)
    peer = make_user("peer")
    join(peer, group)
    viewers = {
        "self": member,
        "anonymous": AnonymousUser(),
        "shares a group": peer,
        "stranger": make_user("stranger"),
        "site moderator": make_user("warden", is_site_moderator=True),
    }
    seen = {
        name: permissions.can_see_recovery_date(
            viewer, member, shares_group=selectors.shares_a_group(viewer, member)
        )
        for name, viewer in viewers.items()
    }
    assert seen == RECOVERY_DATE_SEEN_BY[choice]

    member.recovery_date = None
    assert not any(
        permissions.can_see_recovery_date(viewer, member, shares_group=True)
        for viewer in viewers.values()
    ), "without a recovery date there is nothing to show, not even to the member"


@pytest.mark.django_db
@pytest.mark.usefixtures("quick")
def test_profiles_are_for_signed_in_people_only():
    member = make_user("dawn")
    assert permissions.can_view_profile(make_user("peer"), member)
    assert not permissions.can_view_profile(AnonymousUser(), member)
    member.is_active = False
    assert not permissions.can_view_profile(make_user("other"), member)


# === Moderation actions (the "Moderation actions" table) =============================
# Each cell against permissions.MODERATION_TABLE, and against a real call of the action
# in a public and a private group: "yes" goes through, "no" is refused with Http404
# where the actor may not see the group and PermissionDenied otherwise.

import re  # noqa: E402
from datetime import timedelta  # noqa: E402

from forum.models import Membership, Post, SupportGroup  # noqa: E402
from moderation.models import Appeal, ModerationLogEntry, QueueItem, Sanction  # noqa: E402
from tests.permissions_world import MEMBERSHIP_ROLES, make_actor  # noqa: E402

MODERATION_HEADING = "Moderation actions"
MODERATION_COLUMNS = (
    "anonymous",
    "non-member",
    "member",
    "leader",
    "group moderator",
    "moderator of another group",
    "site moderator",
    "admin",
)
# The standing each column has in the group; None: no standing at all.
COLUMN_STANDING = {
    "leader": permissions.LEADER,
    "group moderator": permissions.GROUP_MODERATOR,
    "site moderator": permissions.SITE_MODERATOR,
    "admin": permissions.SITE_MODERATOR,
}
SITE_WIDE_ACTIONS = {"ban"}  # concern no group: a refusal is always 403


def moderation_rows() -> dict[str, dict[str, str]]:
    """The table's rows keyed by the MODERATION_TABLE key in the first cell's backticks."""
    rows = {}
    for label, cells in TABLES[MODERATION_HEADING].rows.items():
        key = re.match(r"`(\w+)`", label)
        assert key, f"row {label!r} does not start with an action name in backticks"
        rows[key.group(1)] = cells
    return rows


def moderation_actor(column: str, group):
    """Someone of ``column``'s standing; "moderator of another group" moderates another."""
    if column == "moderator of another group":
        actor = make_user("actor")
        join(actor, make_group("elsewhere"), Membership.Role.MODERATOR)
        return actor
    return make_actor(column, group)


def _second_group(world: World, column: str):
    """A group of the same visibility where the actor has the same standing."""
    if column == "moderator of another group":
        return SupportGroup.objects.get(slug="elsewhere")
    group = make_group("second-harbour", private=world.group.is_private)
    if column in MEMBERSHIP_ROLES:
        join(world.actor, group, MEMBERSHIP_ROLES[column])
    return group


def _warden():
    return make_user("warden", is_site_moderator=True)


def _post(world: World) -> Post:
    return world.fresh_post(world.others_post)


def _call_hide(world, column):
    actions.hide_content(actor=world.actor, obj=_post(world), reason="Off topic here.")


def _call_restore(world, column):
    actions.hide_content(actor=_warden(), obj=_post(world), reason="Off topic here.")
    actions.restore_content(actor=world.actor, obj=_post(world), reason="On reflection, fine.")


def _call_lock(world, column):
    actions.lock_thread(actor=world.actor, thread=world.fresh_thread(), reason="Cooling off.")


def _call_slow_mode_place(world, column):
    actions.set_slow_mode(actor=world.actor, place=world.fresh_thread(), seconds=60)


def _call_pin(world, column):
    actions.pin_thread(actor=world.actor, thread=world.fresh_thread())


def _call_warning(world, column):
    actions.set_content_warning(actor=world.actor, obj=_post(world), warning="Mentions relapse")


def _call_edit(world, column):
    actions.edit_content(
        actor=world.actor,
        post=_post(world),
        body="[number removed]",
        note="Took out a phone number.",
    )


def _call_move(world, column):
    actions.move_thread(
        actor=world.actor, thread=world.fresh_thread(), to_group=_second_group(world, column)
    )


def _call_check(key):
    return lambda world, column: permissions.check_can_moderate(
        world.actor, key, world.fresh_group()
    )


def _call_dismiss(world, column):
    flagger = make_user("flagger")
    join(flagger, world.fresh_group())
    made = actions.flag(flagger=flagger, obj=_post(world), reason="spam")
    actions.dismiss_flags(actor=world.actor, item=QueueItem.objects.get(pk=made.item_id))


def _call_decide(world, column):
    actions.hide_content(actor=_warden(), obj=_post(world), reason="Off topic here.")
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.CONTENT_HIDDEN)
    made = actions.appeal(member=world.poster, entry=entry, text="It was on topic.")
    actions.decide_appeal(
        actor=world.actor, appeal=Appeal.objects.get(pk=made.pk), grant=False, note="It stands."
    )


def _call_note(world, column):
    actions.add_note(
        actor=world.actor,
        member=world.poster,
        group=world.fresh_group(),
        text="Struggling this week; be gentle.",
    )


def _call_allow_links(world, column):
    approval = actions.allow_links(
        actor=world.actor, member=world.others_post.author, group=world.fresh_group()
    )
    actions.withdraw_links(actor=world.actor, approval=approval)


def _call_rules(world, column):
    rule = actions.add_rule(actor=world.actor, group=world.fresh_group(), title="No fundraising")
    actions.remove_rule(actor=world.actor, rule=rule)


def _call_sanction(kind):
    def call(world, column):
        actions.sanction_member(
            actor=world.actor,
            member=world.poster,
            kind=kind,
            group=None if kind == Sanction.Kind.BAN else world.fresh_group(),
            reason="Repeated insults.",
            duration=timedelta(days=1),
            slow_mode_seconds=60 if kind == Sanction.Kind.SLOW_MODE else None,
        )

    return call


def _call_lift(world, column):
    muted = actions.mute_in_chat(
        actor=_warden(),
        member=world.poster,
        group=world.fresh_group(),
        reason="Spamming.",
        duration=timedelta(hours=1),
    )
    actions.lift_sanction(actor=world.actor, sanction=Sanction.objects.get(pk=muted.pk))


MODERATION_CALLS = {
    "hide_content": _call_hide,
    "restore_content": _call_restore,
    "lock_thread": _call_lock,
    "pin_thread": _call_pin,
    "set_content_warning": _call_warning,
    "slow_mode_place": _call_slow_mode_place,
    "edit_content": _call_edit,
    "move_thread": _call_move,
    "review_queue": _call_check("review_queue"),
    "dismiss_flags": _call_dismiss,
    "decide_appeal": _call_decide,
    "read_full_log": _call_check("read_full_log"),
    "moderator_notes": _call_note,
    "manage_rules": _call_rules,
    "allow_links": _call_allow_links,
    "chat_mute": _call_sanction(Sanction.Kind.CHAT_MUTE),
    "warning": _call_sanction(Sanction.Kind.WARNING),
    "slow_mode": _call_sanction(Sanction.Kind.SLOW_MODE),
    "suspension": _call_sanction(Sanction.Kind.SUSPENSION),
    "lift_sanction": _call_lift,
    "ban": _call_sanction(Sanction.Kind.BAN),
}


def test_moderation_table_has_its_columns():
    assert TABLES[MODERATION_HEADING].columns == ("Action", *MODERATION_COLUMNS)


def test_moderation_table_rows_are_exactly_the_code_table():
    assert list(moderation_rows()) == list(permissions.MODERATION_TABLE)
    assert set(MODERATION_CALLS) == set(permissions.MODERATION_TABLE)


@pytest.mark.parametrize("key", list(permissions.MODERATION_TABLE))
def test_moderation_table_cells_match_the_code(key):
    cells = moderation_rows()[key]
    expected = {
        column: "yes" if COLUMN_STANDING.get(column) in permissions.MODERATION_TABLE[key] else "no"
        for column in MODERATION_COLUMNS
    }
    assert cells == expected, f"docs/permissions.md row {key!r} disagrees with MODERATION_TABLE"


def moderation_cases():
    for visibility in VISIBILITIES:
        for key in permissions.MODERATION_TABLE:
            for column in MODERATION_COLUMNS:
                yield pytest.param(visibility, key, column, id=f"{visibility}-{key}-{column}")


@pytest.mark.django_db
@pytest.mark.usefixtures("quick")
@pytest.mark.parametrize(("visibility", "key", "column"), list(moderation_cases()))
def test_moderation_action_matches_the_table(visibility, key, column):
    documented = moderation_rows()[key][column]
    world = build_world(visibility, "anonymous")  # the actor is made below
    world.actor = moderation_actor(column, world.group)
    group = None if key in SITE_WIDE_ACTIONS else world.fresh_group()
    assert permissions.can_moderate(world.actor, key, group) is (documented == "yes"), (
        f"can_moderate({key!r}) for a {column} in a {visibility} group: table says {documented}"
    )
    call = MODERATION_CALLS[key]
    if documented == "yes":
        call(world, column)  # any refusal fails the test with its message
        return
    hidden = key not in SITE_WIDE_ACTIONS and not permissions.can_view_group(
        world.actor, world.fresh_group()
    )
    wanted = Http404 if hidden else PermissionDenied
    with pytest.raises((Http404, PermissionDenied)) as refusal:
        call(world, column)
    assert type(refusal.value) is wanted, (
        f"{key} by a {column} in a {visibility} group refused with "
        f"{type(refusal.value).__name__}: {refusal.value}; expected {wanted.__name__}"
    )


# --- live sessions (docs/permissions.md, "Live sessions") ----------------------------------

from datetime import time  # noqa: E402

from django.utils import timezone  # noqa: E402

from forum import live  # noqa: E402
from forum.models import LiveSession, User  # noqa: E402

SESSIONS_HEADING = "Live sessions"
SESSION_COLUMNS = (
    "anonymous",
    "non-member",
    "member",
    "co-leader",
    "leader",
    "group moderator",
    "site moderator",
    "admin",
)


@dataclass
class SessionWorld:
    """A group whose session is running: led by its convenor, with a second co-leader to
    hand over to, the poster present with a hand up and a message said; the actor in one
    of SESSION_COLUMNS (a co-leader is a plain member named co-leader of the session)."""

    group: SupportGroup
    session: LiveSession
    poster: object
    actor: object

    def fresh_group(self) -> SupportGroup:
        return SupportGroup.objects.get(pk=self.group.pk)

    def fresh(self) -> LiveSession:
        session = LiveSession.objects.select_related("group", "room").get(pk=self.session.pk)
        session.group = self.fresh_group()  # no roles remembered from the set-up
        return session

    def later(self) -> LiveSession:
        """A session of the group next week, for scheduling rows."""
        convenor = User.objects.get(handle="convenor")
        made = publishing.schedule_session(
            actor=convenor,
            group=self.fresh_group(),
            plan=publishing.SessionPlan(
                title="Next week",
                starts_on=timezone.localdate() + timedelta(days=7),
                start_time=time(19),
                end_time=time(20),
                time_zone="UTC",
            ),
        )
        session = LiveSession.objects.select_related("group").get(pk=made[0].pk)
        session.group = self.fresh_group()
        return session


def build_session_world(visibility: str, column: str) -> SessionWorld:
    group = make_group("quiet-harbour", private=visibility == "private")
    convenor, second, poster = make_user("convenor"), make_user("second"), make_user("poster")
    join(convenor, group, Membership.Role.LEADER)
    join(second, group)
    join(poster, group)
    actor = make_actor("member" if column == "co-leader" else column, group)
    script = publishing.save_script(
        actor=convenor, group=group, title="Preamble", text="We are peers."
    )
    co_leaders = "second" + (" actor" if column == "co-leader" else "")
    made = publishing.schedule_session(
        actor=convenor,
        group=group,
        plan=publishing.SessionPlan(
            title="Tonight",
            co_leaders=co_leaders,
            starts_on=timezone.localdate() + timedelta(days=1),
            start_time=time(19),
            end_time=time(20),
            time_zone="UTC",
            opening_script_id=script.pk,
        ),
    )
    started = timezone.now() - timedelta(minutes=5)
    LiveSession.objects.filter(pk=made[0].pk).update(
        starts_at=started, ends_at=started + timedelta(hours=1)
    )
    session = LiveSession.objects.select_related("group", "room").get(pk=made[0].pk)
    live.join_session(user=poster, session=session)
    live.raise_hand(actor=poster, session=session)
    publishing.publish_chat_message(
        author=poster, room=session.room, body="Glad to be here.", client_id="hello"
    )
    return SessionWorld(group=group, session=session, poster=poster, actor=actor)


def _may_schedule(w):
    return permissions.can_schedule_sessions(w.actor, w.fresh_group())


def _may_read_rooms(w):
    return permissions.can_read_rooms(w.actor, w.fresh_group())


def _may_facilitate(w):
    return permissions.can_facilitate(w.actor, w.fresh())


def _pinnable(w) -> int:
    return ChatMessage.objects.get(room_id=w.session.room_id, client_id="hello").pk


# Each row: (predicate, call). The call is the real write: for "yes" it must go through,
# for "no" it must refuse, with 404 where the actor may not know the group exists.
SESSION_ROWS: dict[str, tuple[Callable, Callable]] = {
    "schedule a session": (_may_schedule, lambda w: publishing.schedule_session(
        actor=w.actor, group=w.fresh_group(), plan=publishing.SessionPlan(
            title="Saturday share", starts_on=timezone.localdate() + timedelta(days=3),
            start_time=time(10), end_time=time(11), time_zone="Europe/London",
        ),
    )),
    "edit a session": (_may_schedule, lambda w: publishing.edit_session(
        actor=w.actor, session=w.later(), plan=publishing.SessionPlan(
            title="Renamed", starts_on=timezone.localdate() + timedelta(days=8),
            start_time=time(19), end_time=time(20), time_zone="UTC",
        ),
    )),
    "cancel a session": (_may_schedule, lambda w: publishing.cancel_session(
        actor=w.actor, session=w.later()
    )),
    "manage the group's readings": (_may_schedule, lambda w: publishing.save_script(
        actor=w.actor, group=w.fresh_group(), title="Closing", text="Keep coming back."
    )),
    "RSVP": (_may_read_rooms, lambda w: publishing.toggle_rsvp(user=w.actor, session=w.fresh())),
    "attend (join the session's room)": (
        _may_read_rooms, lambda w: permissions.check_can_attend_session(w.actor, w.fresh())
    ),
    "open or close the room": (
        _may_facilitate, lambda w: live.close_room(actor=w.actor, session=w.fresh())
    ),
    "post the opening or closing reading": (
        _may_facilitate,
        lambda w: live.post_reading(actor=w.actor, session=w.fresh(), which="opening"),
    ),
    "pin a message": (_may_facilitate, lambda w: live.pin_message(
        actor=w.actor, session=w.fresh(), message_id=_pinnable(w)
    )),
    "lock the chat": (
        _may_facilitate, lambda w: live.set_lock(actor=w.actor, session=w.fresh(), locked=True)
    ),
    "give the floor": (
        _may_facilitate, lambda w: live.give_floor(actor=w.actor, session=w.fresh())
    ),
    "lower someone else's hand": (_may_facilitate, lambda w: live.lower_hand(
        actor=w.actor, session=w.fresh(), handle="poster"
    )),
    "set the share timer": (
        _may_facilitate,
        lambda w: live.set_share_timer(actor=w.actor, session=w.fresh(), seconds=180),
    ),
    "hand over facilitation": (
        _may_facilitate, lambda w: live.hand_over(actor=w.actor, session=w.fresh(), handle="second")
    ),
    "remove a participant": (_may_facilitate, lambda w: live.remove_participant(
        actor=w.actor, session=w.fresh(), handle="poster", reason="Shouting at others."
    )),
    "end the session": (
        _may_facilitate, lambda w: live.end_session(actor=w.actor, session=w.fresh())
    ),
    "mute a participant (`chat_mute`)": (
        lambda w: permissions.can_moderate(w.actor, "chat_mute", w.fresh_group()),
        lambda w: live.mute_participant(
            actor=w.actor, session=w.fresh(), handle="poster", minutes=15, reason="Please pause."
        ),
    ),
    "slow mode on the session's room (`slow_mode_place`)": (
        lambda w: permissions.can_moderate(w.actor, "slow_mode_place", w.fresh_group()),
        lambda w: actions.set_slow_mode(actor=w.actor, place=w.fresh().room, seconds=60),
    ),
}  # fmt: skip


def test_sessions_table_has_its_columns_and_every_row_a_check():
    table = TABLES[SESSIONS_HEADING]
    assert table.columns == ("Action", *SESSION_COLUMNS)
    assert set(table.rows) == set(SESSION_ROWS), "rows and checks differ"
    for row, cells in table.rows.items():
        assert set(cells.values()) <= {"yes", "no"}, row


def test_sessions_table_follows_the_moderation_table_for_sanctions():
    """Muting and slow mode are the moderation actions: the same cells, column by column."""
    table = TABLES[SESSIONS_HEADING].rows
    for row, key in (
        ("mute a participant (`chat_mute`)", "chat_mute"),
        ("slow mode on the session's room (`slow_mode_place`)", "slow_mode_place"),
    ):
        for column in SESSION_COLUMNS:
            if column == "co-leader":
                assert table[row][column] == moderation_rows()[key]["member"]
            else:
                assert table[row][column] == moderation_rows()[key][column], (row, column)


def session_cases():
    for visibility in VISIBILITIES:
        for row, cells in TABLES[SESSIONS_HEADING].rows.items():
            for column in SESSION_COLUMNS:
                yield pytest.param(visibility, row, column, cells[column],
                                   id=f"{visibility}-{row}-{column}")  # fmt: skip


@pytest.mark.django_db
@pytest.mark.usefixtures("quick")
@pytest.mark.parametrize(("visibility", "row", "column", "documented"), list(session_cases()))
def test_session_action_matches_the_table(visibility, row, column, documented):
    world = build_session_world(visibility, column)
    predicate, call = SESSION_ROWS[row]
    expected = documented == "yes"
    assert bool(predicate(world)) is expected, (
        f"{row} for a {column} in a {visibility} group: the table says {documented}"
    )
    if expected:
        call(world)  # any refusal fails the test with its message
        return
    hidden = not permissions.can_view_group(world.actor, world.fresh_group())
    wanted = Http404 if hidden else PermissionDenied
    with pytest.raises((Http404, PermissionDenied)) as refusal:
        call(world)
    assert type(refusal.value) is wanted, (
        f"{row} by a {column} in a {visibility} group refused with "
        f"{type(refusal.value).__name__}: {refusal.value}; expected {wanted.__name__}"
    )


@pytest.mark.django_db
def test_a_role_annotated_for_the_viewer_is_never_taken_for_someone_elses():
    from forum import selectors

    group = make_group("harbour")
    leader, stranger = make_user("lantern"), make_user("faraway")
    join(leader, group, Membership.Role.LEADER)
    seen_by_leader = selectors.get_group_for(leader, "harbour")
    assert permissions.membership_role(leader, seen_by_leader) == Membership.Role.LEADER
    assert permissions.membership_role(stranger, seen_by_leader) is None
    assert not permissions.can_post_in_group(stranger, seen_by_leader)
