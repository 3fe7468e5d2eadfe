"""Account changes that are not member-visible text: the private e-mail address."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

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
