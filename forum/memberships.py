"""Joining, leaving and the join requests leaders decide."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from moderation import permissions

from . import notify
from .models import JoinRequest, Membership, Notification, SupportGroup, User
from .models.groups import new_invite_code


def add_member(
    *, user: User, group: SupportGroup, role: str = Membership.Role.MEMBER
) -> Membership:
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            user=user, group=group, defaults={"role": role}
        )
        if created:
            SupportGroup.objects.filter(pk=group.pk).update(member_count=F("member_count") + 1)
    permissions.forget_roles(group)
    return membership


def join_group(
    *, user: User, group: SupportGroup, accepted_guidelines: bool, invited: bool = False
) -> Membership | JoinRequest:
    """Join an open group, or ask to join one that needs a leader's approval.

    Either way the member first accepts the group's guidelines.
    """
    if not permissions.can_join_group(user, group, invited=invited):
        if permissions.membership_role(user, group) is not None:
            raise ValidationError({"__all__": "You are already a member of this group."})
        permissions.check_can_view_group(user, group)
        raise PermissionDenied("You cannot join this group.")
    if not accepted_guidelines:
        raise ValidationError(
            {"accept_guidelines": "Please read and accept the group's guidelines to join."}
        )
    if group.join_policy == SupportGroup.JoinPolicy.OPEN:
        return add_member(user=user, group=group)
    try:
        with transaction.atomic():
            return JoinRequest.objects.create(user=user, group=group)
    except IntegrityError:
        raise ValidationError(
            {"__all__": "Your request is already waiting for a leader."}
        ) from None


def leave_group(*, user: User, group: SupportGroup) -> None:
    if not permissions.can_leave_group(user, group):
        permissions.check_can_view_group(user, group)
        raise ValidationError({"__all__": "You are not a member of this group."})
    with transaction.atomic():
        deleted, _ = Membership.objects.filter(user=user, group=group).delete()
        if deleted:
            SupportGroup.objects.filter(pk=group.pk).update(member_count=F("member_count") - 1)
    permissions.forget_roles(group)


def pending_request(*, user: User, group: SupportGroup) -> JoinRequest | None:
    if not user.is_authenticated:
        return None
    return JoinRequest.objects.filter(
        user=user, group=group, status=JoinRequest.Status.PENDING
    ).first()


def decide_join_request(*, actor: User, request: JoinRequest, approve: bool) -> JoinRequest:
    permissions.check_can_lead_group(actor, request.group)
    if request.status != JoinRequest.Status.PENDING:
        raise ValidationError({"__all__": "This request was already decided."})
    with transaction.atomic():
        request.status = JoinRequest.Status.APPROVED if approve else JoinRequest.Status.DECLINED
        request.decided_by, request.decided_at = actor, timezone.now()
        request.save(update_fields=["status", "decided_by", "decided_at"])
        if approve:
            add_member(user=request.user, group=request.group)
            notify.notify(
                recipient=request.user,
                kind=Notification.Kind.JOIN_APPROVED,
                actor=actor,
                group=request.group,
            )
    return request


def renew_invite_code(*, actor: User, group: SupportGroup) -> SupportGroup:
    """Invalidate the old invitation link, e.g. after it was shared too widely."""
    permissions.check_can_lead_group(actor, group)
    group.invite_code = new_invite_code()
    group.save(update_fields=["invite_code"])
    return group
