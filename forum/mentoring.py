"""Peer mentoring: offering to mentor, leaders' approval, requests, and ending a pairing.

- A member who may offer (``moderation.permissions.mentoring_refusals``: time on Kinship,
  trust, no sanction in force, time since a recorded recovery date) writes a mentor profile
  and asks the leaders of their groups to list them there. A mentor is listed in a group
  only while an approval by one of its leaders stands.
- Revoking an approval takes the mentor off the group's list and withdraws the requests
  still waiting there; mentorships already under way continue (the pair chose each other,
  and either can end it at any time).
- A member asks a listed mentor of a group they share, with a note only the mentor reads.
  One open (requested or active) mentorship per pair; a mentor takes at most
  KINSHIP_MENTOR_MAX_MENTEES at once. A block either way reads like a full mentor, and a
  block placed later ends the pairing like any ending.
- Accepting opens the pair's private conversation (forum.conversations: a DIRECT chat room,
  so the chat write path, policy, flags and crisis path apply); ending it, by either side and
  without a reason, closes that conversation read-only.

Member text (the profile's experience, the request's note) goes through the write path's
text steps: ``publishing.clean_text``, the site's watched phrases (``moderation.policy``),
then ``forum.sanitize``. Notifications never carry the note: only what happened, and a link.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from moderation import crisis, permissions, policy, ratelimit
from moderation.actions import log_action, member_target
from moderation.models import ModerationLogEntry

from . import conversations, notify, publishing, sanitize
from .models import (
    Block,
    Membership,
    MentorApproval,
    MentorProfile,
    Mentorship,
    Notification,
    SupportGroup,
    User,
)
from .models.mentoring import APPROACH_LABELS, validate_approaches

EXPERIENCE_MAX = 2_000
SHORT_MAX = 120
NOTE_MAX = 1_000
# A member waits on at most this many requests at once: asking is for finding a mentor,
# not for canvassing every one of them.
OPEN_REQUESTS_MAX = 3
# After a decline the same mentor is not asked again for this long.
DECLINE_PAUSE = timedelta(days=30)

Action = ModerationLogEntry.Action
Kind = Notification.Kind
State = Mentorship.State
ApprovalState = MentorApproval.State


def _blocked_either_way(user: User) -> set[int]:
    """Members ``user`` blocked, and members who blocked ``user``."""
    pairs = Block.objects.filter(Q(blocker=user) | Q(blocked=user)).values_list(
        "blocker_id", "blocked_id"
    )
    return {member for pair in pairs for member in pair if member != user.pk}


def _screened(
    value: str | None,
    *,
    field: str,
    label: str,
    max_length: int,
    kind: str,
    required: bool = True,
    multiline: bool = True,
) -> str:
    """Steps 3 and 5 of the write path: clean, then the site's watched phrases (a block
    refuses on the field; censoring masks; the rest is the leaders' and mentor's to read)."""
    text = publishing.clean_text(
        value,
        field=field,
        label=label,
        max_length=max_length,
        required=required,
        multiline=multiline,
    )
    if not text:
        return ""
    verdict = policy.evaluate(policy.Submission(kind, text), publishing.watched_rules(None))
    if verdict.rejected:
        raise ValidationError({field: verdict.reason})
    return verdict.text if verdict.text is not None else text


# --- reading -----------------------------------------------------------------------------------


def profile_of(user: User) -> MentorProfile | None:
    return MentorProfile.objects.filter(user=user).first() if user.is_authenticated else None


def active_mentee_count(mentor: User) -> int:
    return Mentorship.objects.filter(mentor=mentor, state=State.ACTIVE).count()


def is_full(mentor: User) -> bool:
    return active_mentee_count(mentor) >= settings.KINSHIP_MENTOR_MAX_MENTEES


def listed_mentors(
    user: User, *, approach: str = "", language: str = "", group: SupportGroup | None = None
) -> list[MentorApproval]:
    """Approved, accepting mentors of the groups ``user`` belongs to, one card per mentor and
    group, each with ``taking_requests``: False when the mentor is full or a block stands
    either way (the two read the same, so a block is never revealed)."""
    approvals = (
        MentorApproval.objects.filter(
            state=ApprovalState.APPROVED,
            group__in=Membership.objects.filter(user=user).values("group_id"),
            profile__accepting=True,
            profile__user__is_active=True,
            # The mentor still belongs to the group the approval is for.
            group__memberships__user=F("profile__user"),
        )
        .exclude(profile__user=user)
        .select_related("profile__user", "group")
        .annotate(
            active_mentees=Count(
                "profile__user__mentorships_as_mentor",
                filter=Q(profile__user__mentorships_as_mentor__state=State.ACTIVE),
                distinct=True,
            )
        )
        .order_by("group__name", "profile__user__handle")
    )
    if group is not None:
        approvals = approvals.filter(group=group)
    if approach:
        # No JSON containment lookup on SQLite: match the quoted code in the stored list.
        approvals = approvals.filter(profile__approaches__icontains=f'"{approach}"')
    if language:
        approvals = approvals.filter(profile__languages__icontains=language)
    blocked = _blocked_either_way(user)
    found = list(approvals)
    for approval in found:
        approval.taking_requests = (
            approval.active_mentees < settings.KINSHIP_MENTOR_MAX_MENTEES
            and approval.profile.user_id not in blocked
        )
    return found


def listed_approval(*, user: User, mentor: User, group: SupportGroup) -> MentorApproval:
    """The mentor's standing approval in ``group``, as ``user`` may ask through it; 404 when
    the mentor is not listed there (or ``user`` may not know the group)."""
    permissions.check_can_view_group(user, group)
    approval = (
        MentorApproval.objects.filter(
            group=group,
            profile__user=mentor,
            state=ApprovalState.APPROVED,
            profile__accepting=True,
        )
        .select_related("profile__user", "group")
        .first()
    )
    if approval is None or not mentor.is_active:
        raise Http404("No such mentor.")
    return approval


def mentorships_of(user: User) -> dict[str, list[Mentorship]]:
    """The member's mentorships: incoming requests, and each side's open and past ones."""
    rows = (
        Mentorship.objects.filter(Q(mentor=user) | Q(mentee=user))
        .select_related("mentor", "mentee", "group")
        .order_by("-created_at", "-pk")
    )
    found: dict[str, list[Mentorship]] = {
        "incoming": [],
        "as_mentor": [],
        "as_mentee": [],
        "past": [],
    }
    for mentorship in rows:
        if mentorship.mentor_id == user.pk and mentorship.state == State.REQUESTED:
            found["incoming"].append(mentorship)
        elif not mentorship.is_open:
            found["past"].append(mentorship)
        elif mentorship.mentor_id == user.pk:
            found["as_mentor"].append(mentorship)
        else:
            found["as_mentee"].append(mentorship)
    return found


def get_mentorship_for(user: User, mentorship_id: int) -> Mentorship:
    """One of the member's own mentorships; 404 for anyone else's, moderators included."""
    mentorship = (
        Mentorship.objects.select_related("mentor", "mentee", "group")
        .filter(pk=mentorship_id)
        .first()
    )
    if mentorship is None:
        raise Http404("No such mentorship.")
    permissions.check_can_view_mentorship(user, mentorship)
    return mentorship


def conversation_of(mentorship: Mentorship):
    """The pair's conversation, opened when the mentorship was accepted (None before)."""
    return mentorship.conversations.order_by("-pk").first()


def pending_approvals(group: SupportGroup) -> list[MentorApproval]:
    return list(
        MentorApproval.objects.filter(group=group, state=ApprovalState.PENDING).select_related(
            "profile__user"
        )
    )


def approved_mentors(group: SupportGroup) -> list[MentorApproval]:
    return list(
        MentorApproval.objects.filter(group=group, state=ApprovalState.APPROVED).select_related(
            "profile__user"
        )
    )


# --- the mentor's profile and approvals ------------------------------------------------------


def clean_approaches(values) -> list[str]:
    """Known approach codes, once each, in the list's order."""
    codes = list(values or [])
    try:
        validate_approaches(codes)
    except ValidationError as error:
        raise ValidationError({"approaches": error.messages}) from error
    return [code for code in APPROACH_LABELS if code in set(codes)]


def save_profile(
    *,
    user: User,
    experience: str,
    approaches: list[str],
    availability: str,
    languages: str,
    accepting: bool = True,
) -> MentorProfile:
    """Write or update the member's mentor profile. Offering needs eligibility; so does
    changing the profile, since a listed profile speaks for the member in every group."""
    permissions.check_can_offer_mentoring(user)
    ratelimit.hit("profile", key=str(user.pk))
    experience_source = _screened(
        experience,
        field="experience",
        label="What you can speak to",
        max_length=EXPERIENCE_MAX,
        kind="bio",
    )
    codes = clean_approaches(approaches)
    availability = _screened(
        availability,
        field="availability",
        label="Your availability",
        max_length=SHORT_MAX,
        kind="bio",
        required=False,
        multiline=False,
    )
    languages = _screened(
        languages,
        field="languages",
        label="Languages",
        max_length=SHORT_MAX,
        kind="bio",
        required=False,
        multiline=False,
    )
    profile = profile_of(user) or MentorProfile(user=user)
    profile.experience_source = experience_source
    profile.experience_html = sanitize.render_markdown(experience_source)
    profile.approaches = codes
    profile.availability = availability
    profile.languages = languages
    profile.accepting = accepting
    profile.updated_at = timezone.now()
    profile.save()
    return profile


def _withdraw_requests(requests, *, text: str) -> None:
    """Let members waiting on requests know, kindly, that this mentor cannot take them."""
    for mentorship in requests.select_related("mentee", "mentor"):
        mentorship.state = State.DECLINED
        mentorship.ended_at = timezone.now()
        mentorship.save(update_fields=["state", "ended_at"])
        notify.notify(
            recipient=mentorship.mentee,
            kind=Kind.MENTORSHIP,
            actor=mentorship.mentor,
            text=text,
            url=reverse("mentoring"),
        )


UNAVAILABLE_TEXT = "is not taking mentoring requests right now; you can ask another mentor"


def withdraw_profile(*, user: User) -> None:
    """Stop offering: the profile and its approvals go, waiting requests are withdrawn, and
    mentorships under way continue until either side ends them."""
    profile = profile_of(user)
    if profile is None:
        return
    with transaction.atomic():
        _withdraw_requests(
            Mentorship.objects.filter(mentor=user, state=State.REQUESTED), text=UNAVAILABLE_TEXT
        )
        profile.delete()


def request_approval(*, user: User, group: SupportGroup) -> MentorApproval:
    """Ask the group's leaders to list the member as a mentor there."""
    permissions.check_can_offer_mentoring(user)
    permissions.check_can_post_in_group(user, group)
    profile = profile_of(user)
    if profile is None:
        raise ValidationError({"group": "Write your mentor profile first."})
    with transaction.atomic():
        approval, created = MentorApproval.objects.select_for_update().get_or_create(
            profile=profile, group=group
        )
        if not created:
            if approval.state != ApprovalState.REVOKED:
                state = (
                    "already listed"
                    if approval.state == ApprovalState.APPROVED
                    else ("already waiting for a leader")
                )
                raise ValidationError({"group": f"You are {state} in {group.name}."})
            approval.state = ApprovalState.PENDING
            approval.created_at = timezone.now()
            approval.decided_by, approval.decided_at = None, None
            approval.save()
        leaders = Membership.objects.filter(
            group=group, role__in=permissions.LEADING_ROLES
        ).exclude(user=user)
        notify.notify_many(
            recipient_ids=leaders.values_list("user_id", flat=True),
            kind=Kind.MENTORSHIP,
            actor=user,
            group=group,
            text=f"offers to mentor in {group.name}",
            url=reverse("group_mentors", kwargs={"slug": group.slug}),
        )
    return approval


def _decide(
    *, actor: User, approval: MentorApproval, state: str, action: str, text: str
) -> MentorApproval:
    group = approval.group
    mentor = approval.profile.user
    before = {"state": approval.state}
    approval.state = state
    approval.decided_by, approval.decided_at = actor, timezone.now()
    approval.save(update_fields=["state", "decided_by", "decided_at"])
    log_action(
        actor=actor,
        action=action,
        target=member_target(mentor, group),
        before=before,
        after={"state": state},
    )
    # Told like any moderation notice: what was decided, not which leader decided it.
    notify.notify(
        recipient=mentor,
        kind=Kind.MODERATION,
        group=group,
        text=text,
        url=reverse("mentor_profile"),
    )
    return approval


def decide_approval(*, actor: User, approval: MentorApproval, approve: bool) -> MentorApproval:
    """A leader lists a mentor in their group, or declines to."""
    permissions.check_can_approve_mentor(actor, approval.group)
    if approval.profile.user_id == actor.pk:
        raise PermissionDenied("Another leader decides about your own offer to mentor.")
    with transaction.atomic():
        approval = MentorApproval.objects.select_for_update().get(pk=approval.pk)
        if approval.state != ApprovalState.PENDING:
            raise ValidationError({"approval": "This offer has already been decided."})
        group = approval.group
        if approve:
            return _decide(
                actor=actor,
                approval=approval,
                state=ApprovalState.APPROVED,
                action=Action.MENTOR_APPROVED,
                text=f"You are listed as a mentor in {group.name}.",
            )
        return _decide(
            actor=actor,
            approval=approval,
            state=ApprovalState.REVOKED,
            action=Action.MENTOR_REVOKED,
            text=f"The leaders of {group.name} are not listing mentors from your offer for now.",
        )


def revoke_approval(*, actor: User, approval: MentorApproval) -> MentorApproval:
    """A leader takes a mentor off the group's list. Requests waiting there are withdrawn;
    mentorships under way continue (either of the pair can end them at any time)."""
    permissions.check_can_approve_mentor(actor, approval.group)
    with transaction.atomic():
        approval = MentorApproval.objects.select_for_update().get(pk=approval.pk)
        if approval.state != ApprovalState.APPROVED:
            raise ValidationError({"approval": "This mentor is not listed here."})
        group = approval.group
        _withdraw_requests(
            Mentorship.objects.filter(
                mentor_id=approval.profile.user_id, group=group, state=State.REQUESTED
            ),
            text=UNAVAILABLE_TEXT,
        )
        return _decide(
            actor=actor,
            approval=approval,
            state=ApprovalState.REVOKED,
            action=Action.MENTOR_REVOKED,
            text=f"You are no longer listed as a mentor in {group.name}.",
        )


# --- asking, answering, ending ---------------------------------------------------------------


def request_mentor(*, mentee: User, mentor: User, group: SupportGroup, note: str) -> Mentorship:
    """Ask a listed mentor of a shared group. The note is for the mentor's eyes only; the
    returned mentorship carries ``crisis_categories`` so the asker can be shown help."""
    approval = listed_approval(user=mentee, mentor=mentor, group=group)
    permissions.check_can_request_mentor(mentee, mentor, group)
    if permissions.membership_role(mentor, group) is None:
        raise PermissionDenied(permissions.MENTOR_UNAVAILABLE)
    ratelimit.hit("profile", key=str(mentee.pk))
    note_source = _screened(
        note, field="note", label="Your note", max_length=NOTE_MAX, kind="reply", required=False
    )
    pair = Q(mentor=mentor, mentee=mentee) | Q(mentor=mentee, mentee=mentor)
    with transaction.atomic():
        # Serialise a mentor's requests so the count of mentees cannot race past the limit.
        User.objects.select_for_update().filter(pk=mentor.pk).first()
        if Mentorship.objects.filter(pair, state__in=Mentorship.OPEN_STATES).exists():
            raise ValidationError(
                {"note": f"You and {mentor.handle} already have a request or a mentorship open."}
            )
        if (
            is_full(mentor)
            or Mentorship.objects.filter(
                mentor=mentor,
                mentee=mentee,
                state=State.DECLINED,
                ended_by=mentor,
                ended_at__gte=timezone.now() - DECLINE_PAUSE,
            ).exists()
        ):
            raise PermissionDenied(permissions.MENTOR_UNAVAILABLE)
        waiting = Mentorship.objects.filter(mentee=mentee, state=State.REQUESTED).count()
        if waiting >= OPEN_REQUESTS_MAX:
            raise ValidationError(
                {
                    "note": f"You have {waiting} requests waiting. Wait for an answer, or "
                    "withdraw one, before asking someone else."
                }
            )
        try:
            mentorship = Mentorship.objects.create(
                mentor=mentor,
                mentee=mentee,
                group=approval.group,
                note_source=note_source,
                note_html=sanitize.render_markdown(note_source) if note_source else "",
            )
        except IntegrityError as error:  # a second click raced the first
            raise ValidationError({"note": "This request is already on its way."}) from error
        notify.notify(
            recipient=mentor,
            kind=Kind.MENTORSHIP,
            actor=mentee,
            text="asked you to be their mentor",
            url=reverse("mentoring"),
        )
    mentorship.crisis_categories = crisis.detect(note_source) if note_source else frozenset()
    return mentorship


def _locked(mentorship: Mentorship) -> Mentorship:
    return (
        Mentorship.objects.select_for_update()
        .select_related("mentor", "mentee", "group")
        .get(pk=mentorship.pk)
    )


def accept(*, mentor: User, mentorship: Mentorship) -> Mentorship:
    """The mentor says yes: the mentorship starts and the pair's conversation opens."""
    permissions.check_can_view_mentorship(mentor, mentorship)
    if mentorship.mentor_id != mentor.pk:
        raise PermissionDenied("Only the mentor who was asked can accept.")
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=mentor.pk).first()
        mentorship = _locked(mentorship)
        if mentorship.state != State.REQUESTED:
            raise ValidationError({"mentorship": "This request has already been answered."})
        mentee, group = mentorship.mentee, mentorship.group
        if not mentee.is_active or permissions.membership_role(mentee, group) is None:
            raise ValidationError(
                {"mentorship": f"{mentee.handle} is no longer a member of {group.name}."}
            )
        if permissions.membership_role(mentor, group) is None:
            raise ValidationError({"mentorship": f"You are no longer a member of {group.name}."})
        if is_full(mentor):
            raise ValidationError(
                {
                    "mentorship": f"You already mentor {settings.KINSHIP_MENTOR_MAX_MENTEES} "
                    "members: end a mentorship first, or decline."
                }
            )
        mentorship.state = State.ACTIVE
        mentorship.accepted_at = timezone.now()
        mentorship.save(update_fields=["state", "accepted_at"])
        conversations.open_for_mentorship(mentorship=mentorship)
        notify.notify(
            recipient=mentee,
            kind=Kind.MENTORSHIP,
            actor=mentor,
            text="accepted your mentoring request",
            url=mentorship.get_absolute_url(),
        )
    return mentorship


def decline(*, mentor: User, mentorship: Mentorship) -> Mentorship:
    """The mentor says no, with no reason asked; the member is told kindly."""
    permissions.check_can_view_mentorship(mentor, mentorship)
    if mentorship.mentor_id != mentor.pk:
        raise PermissionDenied("Only the mentor who was asked can decline.")
    with transaction.atomic():
        mentorship = _locked(mentorship)
        if mentorship.state != State.REQUESTED:
            raise ValidationError({"mentorship": "This request has already been answered."})
        mentorship.state = State.DECLINED
        mentorship.ended_at, mentorship.ended_by = timezone.now(), mentor
        mentorship.save(update_fields=["state", "ended_at", "ended_by"])
        notify.notify(
            recipient=mentorship.mentee,
            kind=Kind.MENTORSHIP,
            actor=mentor,
            text="can't take on your mentoring request right now; you can ask another mentor",
            url=reverse("mentors"),
        )
    return mentorship


def end(*, user: User, mentorship: Mentorship) -> Mentorship:
    """Either side ends the pairing, at any time, without a reason (a mentee may also take
    back a request). The conversation closes: it keeps its history, read-only for both."""
    permissions.check_can_view_mentorship(user, mentorship)
    with transaction.atomic():
        mentorship = _locked(mentorship)
        if not mentorship.is_open:
            raise ValidationError({"mentorship": "This mentorship has already ended."})
        if mentorship.state == State.REQUESTED and user.pk == mentorship.mentor_id:
            raise ValidationError({"mentorship": "Decline the request instead."})
        was_active = mentorship.state == State.ACTIVE
        mentorship.state = State.ENDED
        mentorship.ended_at, mentorship.ended_by = timezone.now(), user
        mentorship.save(update_fields=["state", "ended_at", "ended_by"])
        if was_active:
            conversations.close_for_mentorship(mentorship=mentorship)
            notify.notify(
                recipient=mentorship.other(user),
                kind=Kind.MENTORSHIP,
                actor=user,
                text="ended the mentorship",
                url=mentorship.get_absolute_url(),
            )
    return mentorship


def end_between(*, blocker: User, blocked: User) -> None:
    """A block ends whatever is open between the two, as an ordinary ending or decline
    would: the blocked member learns nothing more than that."""
    open_ = Mentorship.objects.filter(
        Q(mentor=blocker, mentee=blocked) | Q(mentor=blocked, mentee=blocker),
        state__in=Mentorship.OPEN_STATES,
    )
    for mentorship in open_:
        if mentorship.state == State.REQUESTED and mentorship.mentor_id == blocker.pk:
            decline(mentor=blocker, mentorship=mentorship)
        else:
            end(user=blocker, mentorship=mentorship)
