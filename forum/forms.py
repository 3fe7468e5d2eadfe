"""Forms collect input and show errors; the rules live in forum.publishing.

Text fields here only set browser hints (maxlength, required); the authoritative
validation happens once, in the write path, whose errors the views attach back
to these forms.
"""

from django import forms
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm
from django.core.exceptions import ValidationError

from . import publishing
from .models import ChatRoom, SupportGroup, User


def _text(label: str, max_length: int, *, rows: int = 0, required: bool = True, help: str = ""):
    attrs = {"maxlength": max_length}
    widget = forms.Textarea(attrs={**attrs, "rows": rows}) if rows else forms.TextInput(attrs)
    # Lengths and blank checks belong to the write path: accept anything here.
    field = forms.CharField(label=label, required=False, strip=False, widget=widget, help_text=help)
    if required:
        field.widget.attrs["required"] = True
    return field


def attach_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a write-path ValidationError onto the form's fields."""
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)


MARKDOWN_HELP = "Markdown works: **bold**, _italic_, > quote, lists and links."


class SignupForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("handle", "email")
        labels = {"handle": "Handle", "email": "E-mail"}
        help_texts = {
            "handle": "How others see you. Not your real name: 3 to 30 letters, digits, - or _.",
            "email": "Private. Only used to reset your password; never shown to anyone.",
        }

    def clean_handle(self) -> str:
        handle = self.cleaned_data["handle"]
        if User.objects.filter(handle__iexact=handle).exists():
            raise ValidationError("That handle is taken. Please choose another.")
        return handle

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email__iexact=email).exists():
            # Same wording a reset would need: no hint about who is registered.
            raise ValidationError("That e-mail address cannot be used. Try another, or log in.")
        return email


class LoginForm(AuthenticationForm):
    error_messages = {
        "invalid_login": "That handle and password do not match. Handles are not case-sensitive.",
        "inactive": "This account is not active.",
    }


class ThreadForm(forms.Form):
    title = _text("Title", publishing.TITLE_MAX)
    body = _text("Your post", publishing.POST_MAX, rows=10, help=MARKDOWN_HELP)
    content_warning = _text(
        "Content warning (optional)",
        publishing.CONTENT_WARNING_MAX,
        required=False,
        help='e.g. "relapse details" or "self-harm". Readers choose to open it.',
    )


class ReplyForm(forms.Form):
    body = _text("Your reply", publishing.POST_MAX, rows=5, help=MARKDOWN_HELP)
    content_warning = _text(
        "Content warning (optional)", publishing.CONTENT_WARNING_MAX, required=False
    )
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)


class EditPostForm(forms.Form):
    title = _text("Title", publishing.TITLE_MAX)
    body = _text("Your post", publishing.POST_MAX, rows=10, help=MARKDOWN_HELP)
    content_warning = _text(
        "Content warning (optional)", publishing.CONTENT_WARNING_MAX, required=False
    )

    def __init__(self, *args, is_opening: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_opening:
            del self.fields["title"]


class ProfileForm(forms.Form):
    bio = _text(
        "About you (optional)",
        publishing.BIO_MAX,
        rows=4,
        required=False,
        help="Anything you want other members to know. Please keep real names out of it.",
    )
    recovery_date = forms.DateField(
        label="Recovery date (optional)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Shown as a day count, never as the date itself.",
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )
    recovery_date_visibility = forms.ChoiceField(
        label="Who can see your day count", choices=User.Visibility.choices
    )


class EmailForm(forms.Form):
    email = forms.EmailField(label="New e-mail address (private)", max_length=254)
    password = forms.CharField(
        label="Your current password", strip=False, widget=forms.PasswordInput
    )


class JoinForm(forms.Form):
    accept_guidelines = forms.BooleanField(
        label="I have read the guidelines and will follow them", required=False
    )


class GroupForm(forms.Form):
    name = _text("Name", publishing.GROUP_NAME_MAX)
    slug = forms.CharField(
        label="Address",
        max_length=60,
        required=False,
        help_text="Lower-case letters, digits and hyphens; the group lives at /g/<address>/.",
    )
    kind = forms.ChoiceField(label="Kind", choices=SupportGroup.Kind.choices)
    description = _text("Description", publishing.GROUP_TEXT_MAX, rows=4, help=MARKDOWN_HELP)
    guidelines = _text(
        "Guidelines members accept when joining",
        publishing.GROUP_TEXT_MAX,
        rows=8,
        help=MARKDOWN_HELP,
    )
    visibility = forms.ChoiceField(
        label="Visibility", choices=SupportGroup.Visibility.choices, widget=forms.RadioSelect
    )
    join_policy = forms.ChoiceField(
        label="Joining", choices=SupportGroup.JoinPolicy.choices, widget=forms.RadioSelect
    )


class RoomForm(forms.Form):
    name = _text("Room name", publishing.ROOM_NAME_MAX)
    state = forms.ChoiceField(
        label="State", choices=ChatRoom.State.choices, widget=forms.RadioSelect
    )


class DirectoryFilterForm(forms.Form):
    q = forms.CharField(label="Search by name", required=False, max_length=80)
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "All kinds"), *SupportGroup.Kind.choices]
    )
