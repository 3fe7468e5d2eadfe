"""Peer mentoring services (forum.mentoring) and their permissions (moderation.permissions)."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from forum import engagement, mentoring
from forum.models import (
    ChatMessage,
    ChatRoom,
    Conversation,
    MentorApproval,
    MentorProfile,
    Mentorship,
    Notification,
    User,
)
from moderation import permissions
from moderation.models import ModerationLogEntry, Sanction
from tests.conftest import join, make_group, make_user
from tests.permissions_world import ROLES, TABLES, lift_limits, make_actor

State = Mentorship.State
NOTE = "I am three weeks sober and scared of weekends."


@pytest.fixture(autouse=True)
def _quick(settings):
    lift_limits(settings)


def make_regular(user: User, group) -> User:
    """Long enough on Kinship, and a regular by forty chat messages."""
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - timedelta(days=400))
    room, _created = ChatRoom.objects.get_or_create(
        group=group, slug="regulars", defaults={"name": "Regulars"}
    )
    start = ChatMessage.objects.filter(room=room).count() + 1
    ChatMessage.objects.bulk_create(
        ChatMessage(
            room=room,
            seq=start + i,
            version=start + i,
            author=user,
            client_id=f"{user.pk}-{i}",
            source="Hello",
            html="<p>Hello</p>",
        )
        for i in range(40)
    )
    return User.objects.get(pk=user.pk)


def build_world():
    """A group with its leader, an eligible mentor listed there, and a newer member."""
    group = make_group("harbour")
    leader = make_user("lighthouse")
    join(leader, group, "leader")
    mentor = make_user("oak")
    join(mentor, group)
    mentor = make_regular(mentor, group)
    mentee = make_user("sprout")
    join(mentee, group)
    profile = mentoring.save_profile(
        user=mentor,
        experience="Twelve years of **meetings** and a sponsor of my own.",
        approaches=["smart", "twelve_step"],
        availability="Weekday evenings",
        languages="English, Polish",
    )
    approval = mentoring.request_approval(user=mentor, group=group)
    mentoring.decide_approval(actor=leader, approval=approval, approve=True)

    class World:
        pass

    w = World()
    w.group, w.leader, w.mentor, w.mentee, w.profile = group, leader, mentor, mentee, profile
    w.approval = MentorApproval.objects.get(pk=approval.pk)
    return w


@pytest.fixture
def world(db):
    return build_world()


def ask(world, mentee=None, note=NOTE) -> Mentorship:
    return mentoring.request_mentor(
        mentee=mentee or world.mentee, mentor=world.mentor, group=world.group, note=note
    )


# --- eligibility -----------------------------------------------------------------------------


def test_gaps_are_empty_for_a_regular_of_long_standing(settings):
    settings.KINSHIP_MENTOR_MIN_DAYS = 90
    settings.KINSHIP_MENTOR_MIN_RECOVERY_DAYS = 365
    assert (
        permissions.mentoring_gaps(
            days_since_joining=120, best_trust_level=2, sanctioned=False, days_in_recovery=800
        )
        == []
    )
    # No recovery date recorded: not asked for.
    assert (
        permissions.mentoring_gaps(
            days_since_joining=120, best_trust_level=3, sanctioned=False, days_in_recovery=None
        )
        == []
    )


@pytest.mark.parametrize(
    ("facts", "says"),
    [
        ({"days_since_joining": 10}, "at least 90 days; you will be able to offer in 80 days"),
        ({"best_trust_level": 1}, "regulars in at least one of their groups"),
        ({"sanctioned": True}, "once the moderation measure on your account ends"),
        ({"days_in_recovery": 200}, "at least 365 days since their recovery date"),
    ],
)
def test_each_gap_is_named_kindly(facts, says):
    base = {
        "days_since_joining": 400,
        "best_trust_level": 2,
        "sanctioned": False,
        "days_in_recovery": None,
    }
    gaps = permissions.mentoring_gaps(**{**base, **facts})
    assert len(gaps) == 1 and says in gaps[0]


@pytest.mark.django_db
def test_a_new_member_is_told_everything_missing(public_group):
    newcomer = make_user("newcomer", recovery_date=timezone.localdate() - timedelta(days=30))
    join(newcomer, public_group)
    refusals = permissions.mentoring_refusals(newcomer)
    assert len(refusals) == 3  # days on Kinship, trust, days in recovery
    with pytest.raises(PermissionDenied):
        mentoring.save_profile(
            user=newcomer, experience="x", approaches=[], availability="", languages=""
        )
    assert not MentorProfile.objects.exists()


@pytest.mark.django_db
def test_a_regular_with_time_and_recovery_may_offer(public_group):
    oak = make_user("oak", recovery_date=date(2015, 1, 1))
    join(oak, public_group)
    assert not permissions.can_offer_mentoring(oak)  # not yet a regular
    oak = make_regular(oak, public_group)
    assert permissions.can_offer_mentoring(oak)
    User.objects.filter(pk=oak.pk).update(recovery_date=timezone.localdate() - timedelta(days=40))
    oak.refresh_from_db()
    assert permissions.mentoring_refusals(oak) == [
        "Mentors have at least 365 days since their recovery date; there is no rush, and "
        "every day counts."
    ]


@pytest.mark.django_db
def test_a_sanction_in_force_stops_offering_and_leading_a_group_counts_as_trust(public_group):
    leader = make_user("guide")
    join(leader, public_group, "leader")
    User.objects.filter(pk=leader.pk).update(date_joined=timezone.now() - timedelta(days=100))
    leader.refresh_from_db()
    assert permissions.can_offer_mentoring(leader)  # no posts needed: leaders are trusted
    Sanction.objects.create(
        member=leader,
        group=public_group,
        kind=Sanction.Kind.CHAT_MUTE,
        ends_at=timezone.now() + timedelta(days=1),
    )
    leader = User.objects.get(pk=leader.pk)
    assert any("moderation measure" in r for r in permissions.mentoring_refusals(leader))


# --- profile and approval --------------------------------------------------------------------


def test_profile_text_goes_through_the_write_path(world):
    profile = world.profile
    assert "<strong>meetings</strong>" in profile.experience_html
    assert profile.approaches == ["twelve_step", "smart"]  # canonical order
    with pytest.raises(ValidationError) as error:
        mentoring.save_profile(
            user=world.mentor,
            experience="<script>x</script>\x00",
            approaches=["smart"],
            availability="",
            languages="",
        )
    assert "experience" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        mentoring.save_profile(
            user=world.mentor,
            experience="Fine.",
            approaches=["astrology"],
            availability="",
            languages="",
        )
    assert "approaches" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        mentoring.save_profile(
            user=world.mentor, experience="   ", approaches=[], availability="", languages=""
        )
    assert "experience" in error.value.message_dict
    saved = mentoring.save_profile(
        user=world.mentor,
        experience="<script>alert(1)</script> Still here.",
        approaches=[],
        availability="x" * 120,
        languages="",
    )
    assert "<script>" not in saved.experience_html


def test_approval_is_logged_and_lists_the_mentor(world):
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.MENTOR_APPROVED)
    assert entry.actor_id == world.leader.pk and entry.member_id == world.mentor.pk
    assert entry.group_id == world.group.pk
    cards = mentoring.listed_mentors(world.mentee)
    assert [c.profile.user for c in cards] == [world.mentor]
    assert cards[0].taking_requests
    # Leaders were told of the offer; the mentor of the approval.
    assert Notification.objects.filter(
        recipient=world.leader, kind=Notification.Kind.MENTORSHIP
    ).exists()
    assert Notification.objects.filter(
        recipient=world.mentor,
        kind=Notification.Kind.MODERATION,
        actor=None,
        text__contains="listed as a mentor",
    ).exists()


def test_only_leaders_decide_and_not_twice(world):
    other = make_user("willow")
    join(other, world.group)
    other = make_regular(other, world.group)
    mentoring.save_profile(
        user=other, experience="Some.", approaches=[], availability="", languages=""
    )
    approval = mentoring.request_approval(user=other, group=world.group)
    with pytest.raises(PermissionDenied):
        mentoring.decide_approval(actor=world.mentee, approval=approval, approve=True)
    with pytest.raises(ValidationError):
        mentoring.request_approval(user=other, group=world.group)  # already waiting
    mentoring.decide_approval(actor=world.leader, approval=approval, approve=False)
    with pytest.raises(ValidationError):
        mentoring.decide_approval(actor=world.leader, approval=approval, approve=True)
    assert ModerationLogEntry.objects.filter(
        action=ModerationLogEntry.Action.MENTOR_REVOKED, member_id=other.pk
    ).exists()
    assert other.pk not in {c.profile.user_id for c in mentoring.listed_mentors(world.mentee)}
    # Declined: they may ask again later.
    assert mentoring.request_approval(user=other, group=world.group).state == "pending"


def test_a_private_groups_leaders_are_unknown_to_outsiders(world):
    secret = make_group("secret", private=True)
    with pytest.raises(Http404):
        mentoring.decide_approval(
            actor=make_user("nosy"),
            approval=MentorApproval.objects.create(profile=world.profile, group=secret),
            approve=True,
        )


def test_revoking_keeps_mentorships_under_way_and_withdraws_waiting_requests(world):
    active = ask(world)
    mentoring.accept(mentor=world.mentor, mentorship=active)
    waiting_one = make_user("seedling")
    join(waiting_one, world.group)
    waiting = ask(world, mentee=waiting_one)
    mentoring.revoke_approval(actor=world.leader, approval=world.approval)
    active.refresh_from_db()
    waiting.refresh_from_db()
    assert active.state == State.ACTIVE
    assert waiting.state == State.DECLINED
    assert mentoring.listed_mentors(world.mentee) == []
    assert ModerationLogEntry.objects.filter(
        action=ModerationLogEntry.Action.MENTOR_REVOKED, member_id=world.mentor.pk
    ).exists()
    with pytest.raises(Http404):  # no longer listed: nothing to ask through
        ask(world, mentee=make_user("late"))


# --- request, accept, decline, end -----------------------------------------------------------


def test_request_notifies_the_mentor_without_the_note(world):
    mentorship = ask(world)
    assert mentorship.state == State.REQUESTED
    assert mentorship.note_html.startswith("<p>I am three weeks")
    note = Notification.objects.filter(
        recipient=world.mentor, kind=Notification.Kind.MENTORSHIP
    ).latest("pk")
    assert note.actor == world.mentee
    assert "weekends" not in note.text and "sober" not in note.text
    assert not Notification.objects.filter(text__icontains="weekends").exists()


def test_one_open_mentorship_per_pair(world):
    ask(world)
    with pytest.raises(ValidationError) as error:
        ask(world)
    assert "already have a request" in str(error.value)
    assert Mentorship.objects.count() == 1


def test_accept_opens_the_conversation_and_end_closes_it(world):
    mentorship = mentoring.accept(mentor=world.mentor, mentorship=ask(world))
    assert mentorship.state == State.ACTIVE and mentorship.accepted_at
    conversation = Conversation.objects.get(mentorship=mentorship)
    assert conversation.state == Conversation.State.ACCEPTED
    assert {conversation.starter, conversation.recipient} == {world.mentor, world.mentee}
    assert conversation.room.kind == ChatRoom.Kind.DIRECT
    assert mentoring.conversation_of(mentorship) == conversation
    told = Notification.objects.filter(recipient=world.mentee, kind=Notification.Kind.MENTORSHIP)
    assert told.filter(text__contains="accepted").exists()

    mentoring.end(user=world.mentee, mentorship=mentorship)
    mentorship.refresh_from_db()
    conversation.refresh_from_db()
    assert mentorship.state == State.ENDED and mentorship.ended_by == world.mentee
    assert conversation.state == Conversation.State.CLOSED
    assert permissions.conversation_write_refusal(world.mentor, conversation) is not None
    assert permissions.conversation_write_refusal(world.mentee, conversation) is not None
    assert Notification.objects.filter(recipient=world.mentor, text="ended the mentorship").exists()
    with pytest.raises(ValidationError):
        mentoring.end(user=world.mentor, mentorship=mentorship)
    # Ended: the pair may start again.
    assert ask(world).state == State.REQUESTED


def test_only_the_mentor_answers_and_only_once(world):
    mentorship = ask(world)
    with pytest.raises(PermissionDenied):
        mentoring.accept(mentor=world.mentee, mentorship=mentorship)
    with pytest.raises(Http404):
        mentoring.accept(mentor=world.leader, mentorship=mentorship)
    mentoring.decline(mentor=world.mentor, mentorship=mentorship)
    mentorship.refresh_from_db()
    assert mentorship.state == State.DECLINED
    with pytest.raises(ValidationError):
        mentoring.accept(mentor=world.mentor, mentorship=mentorship)
    note = Notification.objects.filter(recipient=world.mentee).latest("pk")
    assert "can't take on" in note.text and "weekends" not in note.text
    # The same mentor is not asked again straight after a no.
    with pytest.raises(PermissionDenied) as refusal:
        ask(world)
    assert str(refusal.value) == permissions.MENTOR_UNAVAILABLE


def test_a_mentee_may_withdraw_a_request_and_the_mentor_may_not_end_one(world):
    mentorship = ask(world)
    with pytest.raises(ValidationError):
        mentoring.end(user=world.mentor, mentorship=mentorship)
    mentoring.end(user=world.mentee, mentorship=mentorship)
    mentorship.refresh_from_db()
    assert mentorship.state == State.ENDED and mentorship.accepted_at is None


def test_a_full_mentor_takes_no_more(world, settings):
    settings.KINSHIP_MENTOR_MAX_MENTEES = 1
    mentoring.accept(mentor=world.mentor, mentorship=ask(world))
    second = make_user("acorn")
    join(second, world.group)
    cards = mentoring.listed_mentors(second)
    assert cards and not cards[0].taking_requests
    with pytest.raises(PermissionDenied) as refusal:
        ask(world, mentee=second)
    assert str(refusal.value) == permissions.MENTOR_UNAVAILABLE


def test_accept_refuses_past_the_limit(world, settings):
    third = make_user("acorn")
    join(third, world.group)
    first, second = ask(world), ask(world, mentee=third)
    settings.KINSHIP_MENTOR_MAX_MENTEES = 1
    mentoring.accept(mentor=world.mentor, mentorship=first)
    with pytest.raises(ValidationError) as error:
        mentoring.accept(mentor=world.mentor, mentorship=second)
    assert "already mentor 1" in str(error.value)


def test_a_block_is_never_revealed(world):
    stranger = make_user("bramble")
    join(stranger, world.group)
    engagement.block_member(user=world.mentor, member=stranger)
    # Listed the same as a full mentor, and refused with the same words.
    cards = mentoring.listed_mentors(stranger)
    assert cards and not cards[0].taking_requests
    with pytest.raises(PermissionDenied) as refusal:
        ask(world, mentee=stranger)
    assert str(refusal.value) == permissions.MENTOR_UNAVAILABLE
    assert not permissions.can_request_mentor(stranger, world.mentor, world.group)
    # Blocking the mentor yourself reads the same.
    engagement.block_member(user=world.mentee, member=world.mentor)
    with pytest.raises(PermissionDenied) as refusal:
        ask(world)
    assert str(refusal.value) == permissions.MENTOR_UNAVAILABLE


def test_a_block_ends_an_open_mentorship_like_any_ending(world):
    mentorship = mentoring.accept(mentor=world.mentor, mentorship=ask(world))
    engagement.block_member(user=world.mentee, member=world.mentor)
    mentorship.refresh_from_db()
    assert mentorship.state == State.ENDED
    assert Conversation.objects.get(mentorship=mentorship).state != Conversation.State.ACCEPTED
    told = Notification.objects.filter(recipient=world.mentor).latest("pk")
    assert told.text == "ended the mentorship"


def test_members_only_and_not_yourself(world):
    outsider = make_user("drifter")
    with pytest.raises(PermissionDenied):
        ask(world, mentee=outsider)
    with pytest.raises(PermissionDenied):
        mentoring.request_mentor(
            mentee=world.mentor, mentor=world.mentor, group=world.group, note=""
        )


def test_too_many_waiting_requests(world, settings):
    others = []
    for handle in ("elm", "ash", "fir"):
        mentor = make_user(handle)
        join(mentor, world.group)
        mentor = make_regular(mentor, world.group)
        mentoring.save_profile(
            user=mentor, experience="Some.", approaches=[], availability="", languages=""
        )
        approval = mentoring.request_approval(user=mentor, group=world.group)
        mentoring.decide_approval(actor=world.leader, approval=approval, approve=True)
        others.append(mentor)
    for mentor in others:
        mentoring.request_mentor(mentee=world.mentee, mentor=mentor, group=world.group, note="")
    with pytest.raises(ValidationError) as error:
        ask(world)
    assert "3 requests waiting" in str(error.value)


def test_note_is_validated(world):
    with pytest.raises(ValidationError) as error:
        ask(world, note="x" * (mentoring.NOTE_MAX + 1))
    assert "note" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        ask(world, note="bad\x00")
    assert "note" in error.value.message_dict
    assert not Mentorship.objects.exists()


def test_crisis_words_in_a_note_are_noticed_for_the_asker(world):
    mentorship = ask(world, note="Some days I want to kill myself.")
    assert mentorship.crisis_categories


def test_withdrawing_the_profile_keeps_mentorships_under_way(world):
    active = mentoring.accept(mentor=world.mentor, mentorship=ask(world))
    other = make_user("acorn")
    join(other, world.group)
    waiting = ask(world, mentee=other)
    mentoring.withdraw_profile(user=world.mentor)
    active.refresh_from_db()
    waiting.refresh_from_db()
    assert active.state == State.ACTIVE and waiting.state == State.DECLINED
    assert not MentorProfile.objects.filter(user=world.mentor).exists()
    assert mentoring.listed_mentors(other) == []


def test_only_the_pair_sees_a_mentorship(world, site_moderator):
    mentorship = ask(world)
    assert mentoring.get_mentorship_for(world.mentee, mentorship.pk) == mentorship
    assert mentoring.get_mentorship_for(world.mentor, mentorship.pk) == mentorship
    for nosy in (world.leader, site_moderator):
        with pytest.raises(Http404):
            mentoring.get_mentorship_for(nosy, mentorship.pk)


def test_deleting_an_account_deletes_its_mentoring_rows(world):
    ask(world)
    world.mentor.delete()
    assert not Mentorship.objects.exists()
    assert not MentorProfile.objects.exists()
    assert not MentorApproval.objects.exists()


# --- the "Mentoring" table of docs/permissions.md --------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_mentoring_table_matches_the_permissions(db, role):
    table = TABLES["Mentoring"]
    assert table.columns == ("What", *ROLES)
    group = make_group("harbour")
    mentor = make_user("oak")
    join(mentor, group)
    actor = make_actor(role, group)
    mentorship = Mentorship.objects.create(mentor=mentor, mentee=make_user("sprout"), group=group)
    answers = {
        "ask a listed mentor of the group": permissions.can_request_mentor(actor, mentor, group),
        "approve, decline or revoke a group's mentors": permissions.can_approve_mentor(
            actor, group
        ),
        "read, accept, decline or end a mentorship one is not part of": (
            permissions.can_view_mentorship(actor, mentorship)
        ),
    }
    assert set(table.rows) == set(answers)
    for row, answer in answers.items():
        assert table.rows[row][role] == ("yes" if answer else "no"), row
