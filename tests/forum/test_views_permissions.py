"""Every cell of the "Pages" tables in docs/permissions.md, as real HTTP requests.

For each page, role and group visibility the test builds a small forum through the
write path (forum.publishing), signs the actor in with ``force_login`` and makes
the request. ``login`` in a cell means a redirect to the login page; ``302`` means
any other redirect (the action succeeded). Two more checks keep the table honest:
every route in forum.urls has a row, and a private group's pages never show its
name or its threads' titles to people who may not know it exists.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.shortcuts import resolve_url
from django.urls import URLPattern, reverse
from django.utils import timezone

from forum import accountability, attendance
from forum import urls as forum_urls
from forum.models import (
    ChatMessage,
    ChatRoom,
    CheckIn,
    Conversation,
    Goal,
    HeldPost,
    JoinRequest,
    LiveSession,
    MentorApproval,
    MentorProfile,
    Mentorship,
    SessionParticipant,
    SessionScript,
)
from forum.views import sessions
from tests.conftest import make_user
from tests.permissions_world import (
    ROLES,
    TABLES,
    THREAD_TITLE,
    VISIBILITIES,
    Table,
    World,
    build_world,
    lift_limits,
    table_cases,
)

PAGE_TABLES = {"public": "Public group pages", "private": "Private group pages"}
OUTSIDERS = ("anonymous", "non-member")


def page_table(visibility: str) -> Table:
    return TABLES[PAGE_TABLES[visibility]]


# --- the forum each request runs against -------------------------------------------


def build_page_world(visibility: str, role: str) -> World:
    """A private group takes members by request, a public one lets anyone join."""
    return build_world(
        visibility, role, join_policy="request" if visibility == "private" else "open"
    )


def pending_request(world: World) -> JoinRequest:
    return JoinRequest.objects.create(user=make_user("applicant"), group=world.group)


# --- how to request each documented page -------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    url: object  # (World) -> str
    method: str = "get"
    data: dict = field(default_factory=dict)
    # Rows where the actor knows the group by their own content or by holding its
    # invitation link; everywhere else outsiders must not learn its name.
    shows_group_by_design: bool = False


def _slug(name):
    return lambda w: reverse(name, kwargs={"slug": w.group.slug})


def _thread(name):
    return lambda w: reverse(name, kwargs={"slug": w.group.slug, "thread_id": w.thread.pk})


def _others_post(name):
    return lambda w: reverse(name, kwargs={"post_id": w.others_post.pk})


def _plain(name):
    return lambda w: reverse(name)


def _room(name):
    return lambda w: reverse(name, kwargs={"slug": w.group.slug, "room_slug": w.room().slug})


JOIN = {"accept_guidelines": "on"}


# Live sessions: one scheduled for later (made as needed), and valid form input.
def _later_session(world: World) -> LiveSession:
    found = LiveSession.objects.filter(group=world.group, title="Evening share").first()
    if found is not None:
        return found
    room = ChatRoom.objects.create(
        group=world.group, slug="session-later", name="Evening share", kind=ChatRoom.Kind.SESSION
    )
    starts = timezone.now() + timedelta(days=2)
    return LiveSession.objects.create(
        group=world.group,
        room=room,
        title="Evening share",
        starts_at=starts,
        ends_at=starts + timedelta(hours=1),
    )


def _session(name: str):
    return lambda w: reverse(
        name, kwargs={"slug": w.group.slug, "session_id": _later_session(w).pk}
    )


def _own_feed(world: World) -> str:
    """The feed at the link the person is given: with their token when they have an account."""
    feed = reverse("group_sessions_feed", kwargs={"slug": world.group.slug})
    if not world.actor.is_authenticated:
        return feed
    return f"{feed}?token={sessions.feed_token(world.actor, world.group)}"


def _script_edit(world: World) -> str:
    script = SessionScript.objects.create(
        group=world.group, title="Preamble", source="Welcome.", html="<p>Welcome.</p>"
    )
    return reverse("session_script_edit", kwargs={"slug": world.group.slug, "script_id": script.pk})


SESSION_FORM = {
    "title": "Saturday share",
    "format": "open_share",
    "starts_on": "2030-06-01",
    "start_time": "10:00",
    "end_time": "11:00",
    "time_zone": "Europe/London",
    "opens_before_minutes": "15",
    "transcript": "delete",
}


# Attendance: a session of the group that someone attended, and proofs of it.
ATTENDED_AT = datetime(2025, 3, 3, 19, tzinfo=UTC)
PROOF_RANGE = {"date_from": "2025-03-01", "date_to": "2025-03-31", "shows_group": "on"}


def _attended(world: World, user) -> None:
    room = ChatRoom.objects.create(
        group=world.group,
        slug=f"session-{user.pk}",
        name="Monday share",
        kind=ChatRoom.Kind.SESSION,
    )
    session = LiveSession.objects.create(
        group=world.group,
        room=room,
        title="Monday share",
        starts_at=ATTENDED_AT,
        ends_at=ATTENDED_AT + timedelta(hours=1),
    )
    SessionParticipant.objects.create(session=session, user=user, seconds_attended=3600)


def _proof_new(world: World) -> str:
    if world.actor.is_authenticated:
        _attended(world, world.actor)
    return reverse("attendance_proof_new")


def _proof(world: World, *, own: bool):
    """A proof by the actor, or by the poster (an anonymous visitor's "own" is the poster's)."""
    owner = world.actor if own and world.actor.is_authenticated else world.poster
    _attended(world, owner)
    return attendance.create_proof(
        user=owner,
        date_from=date(2025, 3, 1),
        date_to=date(2025, 3, 31),
        shows_handle=False,
        shows_group=True,
        shows_title=False,
        shows_duration=True,
    )


def _proof_url(name: str, *, own: bool):
    return lambda w: reverse(name, kwargs={"proof_id": _proof(w, own=own).pk})


def _held(world: World, *, own: bool) -> HeldPost:
    """A reply held back in the group: the actor's own (an anonymous visitor's "own" is the
    poster's), or the poster's."""
    owner = world.actor if own and world.actor.is_authenticated else world.poster
    return HeldPost.objects.create(
        author=owner,
        group=world.group,
        kind=HeldPost.Kind.REPLY,
        thread=world.thread,
        body="Not yet.",
        release_at=datetime.now(UTC) + timedelta(hours=1),
    )


def _held_url(name: str, *, own: bool):
    return lambda w: reverse(name, kwargs={"held_id": _held(w, own=own).pk})


# Accountability: a goal and a check-in of the actor's own or the poster's; a mentorship.
def _owner(world: World, *, own: bool):
    return world.actor if own and world.actor.is_authenticated else world.poster


def _goal_url(name: str, *, own: bool):
    def url(world: World) -> str:
        goal = Goal.objects.create(owner=_owner(world, own=own), title="Call someone")
        return reverse(name, kwargs={"goal_id": goal.pk})

    return url


def _check_in_delete(*, own: bool):
    def url(world: World) -> str:
        day = accountability.member_today(world.poster)
        CheckIn.objects.create(owner=_owner(world, own=own), day=day, note="Only mine.")
        return reverse("check_in_delete", kwargs={"day": day.isoformat()})

    return url


def _mentorship_goals(*, as_mentor: bool):
    """The actor mentors the poster, or two others are paired (the actor is not part of it)."""

    def url(world: World) -> str:
        mentor = world.actor if as_mentor and world.actor.is_authenticated else make_user("guide")
        mentorship = Mentorship.objects.create(
            mentor=mentor, mentee=world.poster, group=world.group, state="active"
        )
        return reverse("mentorship_goals", kwargs={"mentorship_id": mentorship.pk})

    return url


GOAL_FORM = {"title": "Go to a meeting", "cadence": "daily", "visibility": "only_me"}
CHECK_IN_FORM = {"mood": "3", "cravings": "1", "note": "A quiet day."}


# Peer mentoring: the poster is a mentor listed in the group; a mentorship is the actor's
# own when the actor mentors the poster (an anonymous visitor's is someone else's).
def _listed_mentor(world: World):
    profile, _created = MentorProfile.objects.get_or_create(
        user=world.poster,
        defaults={"experience_source": "Ten years.", "experience_html": "<p>Ten years.</p>"},
    )
    MentorApproval.objects.get_or_create(
        profile=profile, group=world.group, defaults={"state": MentorApproval.State.APPROVED}
    )
    return world.poster


def _mentor_request(world: World) -> str:
    mentor = _listed_mentor(world)
    return reverse("mentor_request", kwargs={"slug": world.group.slug, "handle": mentor.handle})


def _mentorship_url(name: str, *, own: bool, state: str = Mentorship.State.ACTIVE):
    def url(world: World) -> str:
        mentor = world.actor if own and world.actor.is_authenticated else make_user("a-mentor")
        mentorship = Mentorship.objects.create(
            mentor=mentor,
            mentee=world.poster,
            group=world.group,
            state=state,
            accepted_at=timezone.now() if state == Mentorship.State.ACTIVE else None,
        )
        return reverse(name, kwargs={"mentorship_id": mentorship.pk})

    return url


def _eligible_offer(world: World) -> str:
    """The actor may offer: on Kinship long enough, a regular by their chat messages, with a
    mentor profile."""
    actor = world.actor
    if actor.is_authenticated:
        type(actor).objects.filter(pk=actor.pk).update(
            date_joined=timezone.now() - timedelta(days=400)
        )
        room = world.room()
        ChatMessage.objects.bulk_create(
            ChatMessage(
                room=room, seq=i, version=i, author=actor, client_id=f"c{i}", source="Hi", html="Hi"
            )
            for i in range(1, 41)
        )
        MentorProfile.objects.create(user=actor, experience_source="Some.", experience_html="Some.")
    return reverse("mentor_approval_request", kwargs={"slug": world.group.slug})


def _pending_offer(world: World) -> str:
    profile = MentorProfile.objects.create(
        user=make_user("offering"), experience_source="Some.", experience_html="Some."
    )
    approval = MentorApproval.objects.create(profile=profile, group=world.group)
    return reverse(
        "group_mentor_decide",
        kwargs={"slug": world.group.slug, "approval_id": approval.pk, "decision": "decline"},
    )


# Direct conversations: the poster asked the actor (the actor's own), or asked someone else.
def _conversation_url(name: str, *, own: bool, state: str = "accepted"):
    def url(world: World) -> str:
        actor = world.actor
        recipient = actor if own and actor.is_authenticated else make_user("listener")
        room = ChatRoom.objects.create(
            group=world.group,
            slug=f"dm-{recipient.pk}",
            name="Direct conversation",
            kind=ChatRoom.Kind.DIRECT,
        )
        conversation = Conversation.objects.create(
            room=room,
            starter=world.poster,
            recipient=recipient,
            state=state,
            note_source="Hello, can we talk?",
            note_html="<p>Hello, can we talk?</p>",
            accepted_at=timezone.now() if state == "accepted" else None,
        )
        if name == "room":
            return reverse(name, kwargs={"slug": world.group.slug, "room_slug": room.slug})
        return reverse(name, kwargs={"pk": conversation.pk})

    return url


def _ask_poster(world: World) -> str:
    return reverse("conversation_new", kwargs={"handle": world.poster.handle})


PAGES: dict[str, Page] = {
    "`group`": Page("group", _slug("group")),
    "`group_join`": Page("group_join", _slug("group_join")),
    "`group_join` (POST)": Page("group_join", _slug("group_join"), "post", JOIN),
    "`invite`": Page(
        "invite",
        lambda w: reverse("invite", kwargs={"code": w.group.invite_code}),
        shows_group_by_design=True,
    ),
    "`invite` (POST)": Page(
        "invite",
        lambda w: reverse("invite", kwargs={"code": w.group.invite_code}),
        "post",
        JOIN,
        shows_group_by_design=True,
    ),
    "`group_leave`": Page("group_leave", _slug("group_leave")),
    "`group_settings`": Page("group_settings", _slug("group_settings")),
    "`renew_invite` (POST)": Page("renew_invite", _slug("renew_invite"), "post"),
    "`join_requests`": Page("join_requests", _slug("join_requests")),
    "`decide_join_request` (POST, decline a pending request)": Page(
        "decide_join_request",
        lambda w: reverse(
            "decide_join_request",
            kwargs={
                "slug": w.group.slug,
                "request_id": pending_request(w).pk,
                "decision": "decline",
            },
        ),
        "post",
    ),
    "`thread_new`": Page("thread_new", _slug("thread_new")),
    "`thread`": Page("thread", _thread("thread")),
    "`reply` (GET)": Page("reply", _thread("reply")),
    "`subthread`": Page(
        "subthread",
        lambda w: reverse(
            "subthread",
            kwargs={"slug": w.group.slug, "thread_id": w.thread.pk, "post_id": w.others_post.pk},
        ),
    ),
    "`thread_follow` (POST)": Page(
        "thread_follow", _thread("thread_follow"), "post", {"follow": "1"}
    ),
    "`thread_follow` (GET)": Page("thread_follow", _thread("thread_follow")),
    "`thread_mute` (POST)": Page("thread_mute", _thread("thread_mute"), "post", {"mute": "1"}),
    "`thread_slow_mode` (POST)": Page(
        "thread_slow_mode", _thread("thread_slow_mode"), "post", {"seconds": "60"}
    ),
    "`post_edit` (someone else's post)": Page("post_edit", _others_post("post_edit")),
    "`post_edit` (own post)": Page(
        "post_edit",
        lambda w: reverse("post_edit", kwargs={"post_id": w.own_post().pk}),
        shows_group_by_design=True,
    ),
    "`post_remove` (someone else's post)": Page("post_remove", _others_post("post_remove")),
    "`post_remove` (own post)": Page(
        "post_remove",
        lambda w: reverse("post_remove", kwargs={"post_id": w.own_post().pk}),
        shows_group_by_design=True,
    ),
    "`post_remove` (POST, own post)": Page(
        "post_remove",
        lambda w: reverse("post_remove", kwargs={"post_id": w.own_post().pk}),
        "post",
        shows_group_by_design=True,
    ),
    "`post_history` (someone else's post)": Page("post_history", _others_post("post_history")),
    "`post_history` (own post)": Page(
        "post_history",
        lambda w: reverse("post_history", kwargs={"post_id": w.own_post().pk}),
        shows_group_by_design=True,
    ),
    "`post_support` (POST, someone else's post)": Page(
        "post_support", _others_post("post_support"), "post"
    ),
    "`rooms`": Page("rooms", _slug("rooms")),
    "`room`": Page("room", _room("room")),
    "`room_mute` (POST)": Page("room_mute", _room("room_mute"), "post", {"mute": "1"}),
    "`room_slow_mode` (POST)": Page(
        "room_slow_mode", _room("room_slow_mode"), "post", {"seconds": "60"}
    ),
    "`room_new`": Page("room_new", _slug("room_new")),
    "`room_new` (POST)": Page(
        "room_new", _slug("room_new"), "post", {"name": "Evening check-in", "state": "open"}
    ),
    "`room_settings`": Page("room_settings", _room("room_settings")),
    "`room_settings` (POST)": Page(
        "room_settings", _room("room_settings"), "post", {"name": "Renamed", "state": "read_only"}
    ),
    "`sessions`": Page("sessions", _slug("sessions")),
    "`session`": Page("session", _session("session")),
    "`session_ics`": Page("session_ics", _session("session_ics")),
    "`group_sessions_feed` (with the person's own feed link)": Page(
        "group_sessions_feed", _own_feed
    ),
    "`session_rsvp` (POST)": Page("session_rsvp", _session("session_rsvp"), "post"),
    "`session_rsvp` (GET)": Page("session_rsvp", _session("session_rsvp")),
    "`session_new`": Page("session_new", _slug("session_new")),
    "`session_new` (POST)": Page("session_new", _slug("session_new"), "post", SESSION_FORM),
    "`session_edit`": Page("session_edit", _session("session_edit")),
    "`session_edit` (POST)": Page("session_edit", _session("session_edit"), "post", SESSION_FORM),
    "`session_cancel`": Page("session_cancel", _session("session_cancel")),
    "`session_cancel` (POST)": Page("session_cancel", _session("session_cancel"), "post"),
    "`session_scripts`": Page("session_scripts", _slug("session_scripts")),
    "`session_scripts` (POST)": Page(
        "session_scripts", _slug("session_scripts"), "post", {"title": "Closing", "text": "Bye."}
    ),
    "`session_script_edit`": Page("session_script_edit", _script_edit),
    "`session_script_edit` (POST, delete)": Page(
        "session_script_edit", _script_edit, "post", {"delete": "1"}
    ),
    # Search: the thread's title itself must not show to those who may not read it.
    "`search` (a word of the group's thread title, in every group the person can read)": Page(
        "search", lambda w: f"{reverse('search')}?q=sunrise"
    ),
    "`search` (a word of the group's thread title, in the group)": Page(
        "search", lambda w: f"{reverse('search')}?q=sunrise&group={w.group.slug}"
    ),
    "`home`": Page("home", _plain("home")),
    "`directory`": Page("directory", _plain("directory")),
    "`my_groups`": Page("my_groups", _plain("my_groups")),
    "`notifications`": Page("notifications", _plain("notifications")),
    "`settings`": Page("settings", _plain("settings")),
    "`change_email`": Page("change_email", _plain("change_email")),
    "`your_data`": Page("your_data", _plain("your_data")),
    "`export_data` (POST, download one's own data)": Page(
        "export_data", _plain("export_data"), "post"
    ),
    "`withdraw_left_chat` (POST, delete one's chat messages in groups one left)": Page(
        "withdraw_left_chat", _plain("withdraw_left_chat"), "post"
    ),
    "`profile` (another member's)": Page(
        "profile", lambda w: reverse("profile", kwargs={"handle": w.poster.handle})
    ),
    "`block` (POST, another member)": Page(
        "block", lambda w: reverse("block", kwargs={"handle": w.poster.handle}), "post"
    ),
    "`group_create`": Page("group_create", _plain("group_create")),
    "`signup`": Page("signup", _plain("signup")),
    "`password_reset`": Page("password_reset", _plain("password_reset")),
    "`crisis_help`": Page("crisis_help", _plain("crisis_help")),
    "`healthz`": Page("healthz", _plain("healthz")),
    "`attendance`": Page("attendance", _plain("attendance")),
    "`attendance_proof_new` (POST, a range with a session attended)": Page(
        "attendance_proof_new", _proof_new, "post", PROOF_RANGE
    ),
    # The holder chose to show the group's name to whoever holds the link.
    "`attendance_proof` (someone else's proof)": Page(
        "attendance_proof",
        lambda w: _proof(w, own=False).get_absolute_url(),
        shows_group_by_design=True,
    ),
    "`attendance_proof` (unknown or withdrawn)": Page(
        "attendance_proof", lambda w: reverse("attendance_proof", kwargs={"token": "withdrawn"})
    ),
    "`attendance_proof_download` (own proof)": Page(
        "attendance_proof_download",
        _proof_url("attendance_proof_download", own=True),
        shows_group_by_design=True,
    ),
    "`attendance_proof_download` (someone else's proof)": Page(
        "attendance_proof_download", _proof_url("attendance_proof_download", own=False)
    ),
    "`attendance_proof_revoke` (POST, own proof)": Page(
        "attendance_proof_revoke", _proof_url("attendance_proof_revoke", own=True), "post"
    ),
    "`attendance_proof_revoke` (POST, someone else's proof)": Page(
        "attendance_proof_revoke", _proof_url("attendance_proof_revoke", own=False), "post"
    ),
    "`held_posts`": Page("held_posts", _plain("held_posts")),
    # Their own words, wherever they were written (like `post_remove` of an own post).
    "`held_edit` (own held post)": Page(
        "held_edit", _held_url("held_edit", own=True), shows_group_by_design=True
    ),
    "`held_edit` (someone else's held post)": Page("held_edit", _held_url("held_edit", own=False)),
    "`held_send` (POST, own held post)": Page(
        "held_send", _held_url("held_send", own=True), "post", shows_group_by_design=True
    ),
    "`held_send` (POST, someone else's held post)": Page(
        "held_send", _held_url("held_send", own=False), "post"
    ),
    "`held_discard` (POST, own held post)": Page(
        "held_discard", _held_url("held_discard", own=True), "post", shows_group_by_design=True
    ),
    "`held_discard` (POST, someone else's held post)": Page(
        "held_discard", _held_url("held_discard", own=False), "post"
    ),
    "`group_mentors`": Page("group_mentors", _slug("group_mentors")),
    "`group_mentor_decide` (POST, decline a pending offer)": Page(
        "group_mentor_decide", _pending_offer, "post"
    ),
    "`mentor_approval_request` (POST, an eligible member with a mentor profile)": Page(
        "mentor_approval_request", _eligible_offer, "post"
    ),
    "`mentor_request` (a mentor listed in the group)": Page("mentor_request", _mentor_request),
    "`mentor_request` (POST, a note to a mentor listed in the group)": Page(
        "mentor_request", _mentor_request, "post", {"note": "I am three weeks in."}
    ),
    "`mentors`": Page("mentors", _plain("mentors")),
    "`mentoring`": Page("mentoring", _plain("mentoring")),
    "`mentor_profile`": Page("mentor_profile", _plain("mentor_profile")),
    "`mentor_profile_withdraw` (POST)": Page(
        "mentor_profile_withdraw", _plain("mentor_profile_withdraw"), "post"
    ),
    # Their own mentorship, wherever the two met (like `post_remove` of an own post).
    "`mentorship` (own mentorship)": Page(
        "mentorship", _mentorship_url("mentorship", own=True), shows_group_by_design=True
    ),
    "`mentorship` (someone else's mentorship)": Page(
        "mentorship", _mentorship_url("mentorship", own=False)
    ),
    "`mentorship_accept` (POST, a request to the actor)": Page(
        "mentorship_accept",
        _mentorship_url("mentorship_accept", own=True, state=Mentorship.State.REQUESTED),
        "post",
        shows_group_by_design=True,
    ),
    "`mentorship_accept` (POST, someone else's request)": Page(
        "mentorship_accept",
        _mentorship_url("mentorship_accept", own=False, state=Mentorship.State.REQUESTED),
        "post",
    ),
    "`mentorship_decline` (POST, a request to the actor)": Page(
        "mentorship_decline",
        _mentorship_url("mentorship_decline", own=True, state=Mentorship.State.REQUESTED),
        "post",
        shows_group_by_design=True,
    ),
    "`mentorship_end` (own mentorship)": Page(
        "mentorship_end", _mentorship_url("mentorship_end", own=True), shows_group_by_design=True
    ),
    "`mentorship_end` (POST, own mentorship)": Page(
        "mentorship_end",
        _mentorship_url("mentorship_end", own=True),
        "post",
        shows_group_by_design=True,
    ),
    "`mentorship_end` (POST, someone else's mentorship)": Page(
        "mentorship_end", _mentorship_url("mentorship_end", own=False), "post"
    ),
    "`recovery`": Page("recovery", _plain("recovery")),
    "`check_in` (POST, today)": Page("check_in", _plain("check_in"), "post", CHECK_IN_FORM),
    "`check_in_history`": Page("check_in_history", _plain("check_in_history")),
    "`check_in_delete` (POST, own check-in)": Page(
        "check_in_delete", _check_in_delete(own=True), "post"
    ),
    "`check_in_delete` (POST, a day only someone else checked in)": Page(
        "check_in_delete", _check_in_delete(own=False), "post"
    ),
    "`recovery_date` (POST)": Page(
        "recovery_date",
        _plain("recovery_date"),
        "post",
        {"recovery_date": "2024-01-01", "recovery_date_visibility": "only_me"},
    ),
    "`goal_new`": Page("goal_new", _plain("goal_new")),
    "`goal_new` (POST)": Page("goal_new", _plain("goal_new"), "post", GOAL_FORM),
    "`goal_edit` (own goal)": Page("goal_edit", _goal_url("goal_edit", own=True)),
    "`goal_edit` (someone else's goal)": Page("goal_edit", _goal_url("goal_edit", own=False)),
    "`goal_archive` (POST, own goal)": Page(
        "goal_archive", _goal_url("goal_archive", own=True), "post"
    ),
    "`goal_archive` (POST, someone else's goal)": Page(
        "goal_archive", _goal_url("goal_archive", own=False), "post"
    ),
    "`mentorship_goals` (the actor mentors the member)": Page(
        "mentorship_goals", _mentorship_goals(as_mentor=True)
    ),
    "`mentorship_goals` (a mentorship the actor is not part of)": Page(
        "mentorship_goals", _mentorship_goals(as_mentor=False)
    ),
    "`messages`": Page("messages", _plain("messages")),
    "`message_settings` (POST, requests off)": Page(
        "message_settings", _plain("message_settings"), "post"
    ),
    "`conversation_new` (a member of the group)": Page("conversation_new", _ask_poster),
    "`conversation_new` (POST, a note to a member of the group)": Page(
        "conversation_new", _ask_poster, "post", {"note": "Your share about mornings helped."}
    ),
    "`conversation` (own conversation)": Page(
        "conversation", _conversation_url("conversation", own=True)
    ),
    "`conversation` (someone else's conversation)": Page(
        "conversation", _conversation_url("conversation", own=False)
    ),
    "`conversation_accept` (POST, a request to the actor)": Page(
        "conversation_accept",
        _conversation_url("conversation_accept", own=True, state="requested"),
        "post",
    ),
    "`conversation_accept` (POST, someone else's request)": Page(
        "conversation_accept",
        _conversation_url("conversation_accept", own=False, state="requested"),
        "post",
    ),
    "`conversation_ignore` (POST, a request to the actor)": Page(
        "conversation_ignore",
        _conversation_url("conversation_ignore", own=True, state="requested"),
        "post",
    ),
    "`conversation_ignore` (POST, someone else's request)": Page(
        "conversation_ignore",
        _conversation_url("conversation_ignore", own=False, state="requested"),
        "post",
    ),
    "`conversation_block` (POST, own conversation)": Page(
        "conversation_block", _conversation_url("conversation_block", own=True), "post"
    ),
    "`conversation_block` (POST, someone else's conversation)": Page(
        "conversation_block", _conversation_url("conversation_block", own=False), "post"
    ),
    "`conversation_close` (POST, own conversation)": Page(
        "conversation_close", _conversation_url("conversation_close", own=True), "post"
    ),
    "`conversation_close` (POST, someone else's conversation)": Page(
        "conversation_close", _conversation_url("conversation_close", own=False), "post"
    ),
    "`conversation_report` (own conversation)": Page(
        "conversation_report", _conversation_url("conversation_report", own=True)
    ),
    "`conversation_report` (POST, own conversation)": Page(
        "conversation_report",
        _conversation_url("conversation_report", own=True),
        "post",
        {"reason": "harassment", "details": "", "block": "on"},
    ),
    "`conversation_report` (someone else's conversation)": Page(
        "conversation_report", _conversation_url("conversation_report", own=False)
    ),
    "`room` (the room of the actor's own conversation)": Page(
        "room", _conversation_url("room", own=True)
    ),
    "`room` (the room of someone else's conversation)": Page(
        "room", _conversation_url("room", own=False)
    ),
}
SITE_WIDE = {
    "`home`",
    "`directory`",
    "`my_groups`",
    "`notifications`",
    "`settings`",
    "`change_email`",
    "`your_data`",
    "`export_data` (POST, download one's own data)",
    "`withdraw_left_chat` (POST, delete one's chat messages in groups one left)",
    "`profile` (another member's)",
    "`block` (POST, another member)",
    "`group_create`",
    "`signup`",
    "`password_reset`",
    "`crisis_help`",
    "`healthz`",
    "`attendance`",
    "`attendance_proof_new` (POST, a range with a session attended)",
    "`attendance_proof` (someone else's proof)",
    "`attendance_proof` (unknown or withdrawn)",
    "`attendance_proof_download` (own proof)",
    "`attendance_proof_download` (someone else's proof)",
    "`attendance_proof_revoke` (POST, own proof)",
    "`attendance_proof_revoke` (POST, someone else's proof)",
    "`held_posts`",
    "`held_edit` (own held post)",
    "`held_edit` (someone else's held post)",
    "`held_send` (POST, own held post)",
    "`held_send` (POST, someone else's held post)",
    "`held_discard` (POST, own held post)",
    "`held_discard` (POST, someone else's held post)",
    "`mentors`",
    "`mentoring`",
    "`mentor_profile`",
    "`mentor_profile_withdraw` (POST)",
    "`mentorship` (own mentorship)",
    "`mentorship` (someone else's mentorship)",
    "`mentorship_accept` (POST, a request to the actor)",
    "`mentorship_accept` (POST, someone else's request)",
    "`mentorship_decline` (POST, a request to the actor)",
    "`mentorship_end` (own mentorship)",
    "`mentorship_end` (POST, own mentorship)",
    "`mentorship_end` (POST, someone else's mentorship)",
    "`recovery`",
    "`check_in` (POST, today)",
    "`check_in_history`",
    "`check_in_delete` (POST, own check-in)",
    "`check_in_delete` (POST, a day only someone else checked in)",
    "`recovery_date` (POST)",
    "`goal_new`",
    "`goal_new` (POST)",
    "`goal_edit` (own goal)",
    "`goal_edit` (someone else's goal)",
    "`goal_archive` (POST, own goal)",
    "`goal_archive` (POST, someone else's goal)",
    "`mentorship_goals` (the actor mentors the member)",
    "`mentorship_goals` (a mentorship the actor is not part of)",
    "`messages`",
    "`message_settings` (POST, requests off)",
    "`conversation_new` (a member of the group)",
    "`conversation_new` (POST, a note to a member of the group)",
    "`conversation` (own conversation)",
    "`conversation` (someone else's conversation)",
    "`conversation_accept` (POST, a request to the actor)",
    "`conversation_accept` (POST, someone else's request)",
    "`conversation_ignore` (POST, a request to the actor)",
    "`conversation_ignore` (POST, someone else's request)",
    "`conversation_block` (POST, own conversation)",
    "`conversation_block` (POST, someone else's conversation)",
    "`conversation_close` (POST, own conversation)",
    "`conversation_close` (POST, someone else's conversation)",
    "`conversation_report` (own conversation)",
    "`conversation_report` (POST, own conversation)",
    "`conversation_report` (someone else's conversation)",
    "`room` (the room of the actor's own conversation)",
    "`room` (the room of someone else's conversation)",
}
STATUSES = {"200", "302", "login", "403", "404", "405"}


def _leak_cases():
    for row, page in PAGES.items():
        if page.shows_group_by_design or row not in page_table("private").rows:
            continue
        for role in OUTSIDERS:
            yield pytest.param(row, role, id=f"{row}-{role}")


@pytest.fixture
def quick(settings):
    return lift_limits(settings)


def request_page(client, world: World, page: Page):
    if world.actor.is_authenticated:
        client.force_login(world.actor)
    url = page.url(world)
    if page.method == "post":
        return client.post(url, page.data)
    return client.get(url)


def login_path() -> str:
    return urlsplit(resolve_url(django_settings.LOGIN_URL)).path


def describe(response) -> str:
    location = response.get("Location", "")
    return f"{response.status_code}{f' -> {location}' if location else ''}"


# --- the document's shape ----------------------------------------------------------


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_pages_table_has_every_role_as_a_column(visibility):
    assert page_table(visibility).columns == ("Page", *ROLES)


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_every_documented_page_has_a_request_and_every_request_a_row(visibility):
    documented = set(page_table(visibility).rows)
    assert documented - set(PAGES) == set(), "rows in the doc that no test requests"
    assert set(PAGES) - documented == set(), "requests whose row is missing from the doc"


@pytest.mark.parametrize("visibility", VISIBILITIES)
def test_page_cells_are_known_statuses(visibility):
    for row, cells in page_table(visibility).rows.items():
        for role, cell in cells.items():
            assert cell in STATUSES, f"{visibility} / {row} / {role}: {cell!r}"


def test_site_wide_pages_are_the_same_for_public_and_private_groups():
    public, private = page_table("public"), page_table("private")
    for row in SITE_WIDE:
        assert public.rows[row] == private.rows[row], row


def test_every_route_has_a_row_in_both_pages_tables():
    """A new route in forum/urls.py fails here until docs/permissions.md describes it.

    Django's own views (login, logout, password pages, the admin) are not ours to
    document and are left out."""
    routes = {
        pattern.name
        for pattern in forum_urls.urlpatterns
        if isinstance(pattern, URLPattern)
        and pattern.name
        and not pattern.callback.__module__.startswith("django.")
    }
    assert routes, "no routes found in forum.urls"
    for visibility in VISIBILITIES:
        documented = {PAGES[row].name for row in page_table(visibility).rows if row in PAGES}
        assert routes - documented == set(), f"routes without a row in the {visibility} table"
        assert documented - routes == set(), f"rows for routes that do not exist ({visibility})"


def test_each_row_names_the_route_it_requests():
    for row, page in PAGES.items():
        assert row.startswith(f"`{page.name}`"), row


# --- every cell ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("quick")
@pytest.mark.parametrize(("visibility", "row", "role", "documented"), list(table_cases(page_table)))
def test_page_status_matches_the_table(client, visibility, row, role, documented):
    page = PAGES.get(row)
    assert page is not None, f"docs/permissions.md has a row {row!r} that no test requests"
    world = build_page_world(visibility, role)
    response = request_page(client, world, page)

    where = f"{row} for a {role} in a {visibility} group: got {describe(response)}"
    if documented == "login":
        assert response.status_code == 302, where
        assert urlsplit(response["Location"]).path == login_path(), where
    elif documented == "302":
        assert response.status_code == 302, where
        assert urlsplit(response["Location"]).path != login_path(), where
    else:
        assert str(response.status_code) == documented, f"{where}, the table says {documented}"


@pytest.mark.django_db
@pytest.mark.usefixtures("quick")
@pytest.mark.parametrize(("row", "role"), list(_leak_cases()))
def test_private_group_pages_do_not_name_the_group_to_outsiders(client, row, role):
    world = build_page_world("private", role)
    response = request_page(client, world, PAGES[row])
    body = response.content.decode(errors="replace")
    assert world.group.name not in body, f"{row} shows the group's name to a {role}"
    assert THREAD_TITLE not in body, f"{row} shows a thread's title to a {role}"
    if response.status_code == 404:
        # Same page as for a group that does not exist.
        assert world.group.slug not in body, f"{row} shows the group's address to a {role}"
