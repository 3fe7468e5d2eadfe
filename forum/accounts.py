"""Account changes that are not member-visible text: the private e-mail address, quiet hours."""

from datetime import time

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from . import quiet_hours
from .models import User


def change_email(*, user: User, email: str, password: str) -> User:
    """Change the private e-mail address; the current password confirms it is the owner."""
    if not user.check_password(password or ""):
        raise ValidationError({"password": "That is not your current password."})
    email = User.objects.normalize_email((email or "").strip())
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid e-mail address."}) from None
    if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
        raise ValidationError({"email": "That e-mail address cannot be used. Try another."})
    user.email = email
    user.save(update_fields=["email"])
    return user


def set_quiet_hours(*, user: User, start: time | None, end: time | None, timezone: str) -> User:
    """The member's own quiet hours (no posting from ``start`` to ``end`` in ``timezone``);
    both times empty turns them off."""
    if (start is None) != (end is None):
        raise ValidationError({"quiet_end": "Give both a start and an end, or neither."})
    if start is not None and start == end:
        raise ValidationError({"quiet_end": "The end must differ from the start."})
    if start is not None and not quiet_hours.valid_timezone(timezone):
        raise ValidationError({"quiet_timezone": "Choose a time zone such as Europe/London."})
    user.quiet_start, user.quiet_end = start, end
    user.quiet_timezone = timezone if start is not None else ""
    user.save(update_fields=["quiet_start", "quiet_end", "quiet_timezone"])
    return user
