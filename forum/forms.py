"""Forms collect input and show errors; the rules live in forum.publishing.

Text fields here only set browser hints (maxlength, required); the authoritative
validation happens once, in the write path, whose errors the views attach back
to these forms.
"""

from django import forms
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm
from django.core.exceptions import ValidationError

from . import content_warnings, publishing
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


def _post_anyway() -> forms.BooleanField:
    """The one-post override of the member's own quiet hours (publishing._check_quiet_hours)."""
    return forms.BooleanField(label="I know it is my quiet hours: post anyway", required=False)


def _cw_categories() -> forms.MultipleChoiceField:
    """Content-warning categories (forum.content_warnings); readers choose what each does."""
    return forms.MultipleChoiceField(
        label="It contains (optional)",
        required=False,
        choices=content_warnings.CATEGORY_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="Members who asked to collapse or hide these will see a warning instead.",
        error_messages={"invalid_choice": "“%(value)s” is not a content-warning category."},
    )


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
    cw_categories = _cw_categories()
    post_anyway = _post_anyway()

    def __init__(self, *args, quiet_hours_set: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not quiet_hours_set:
            del self.fields[publishing.QUIET_HOURS_FIELD]


class ReplyForm(forms.Form):
    body = _text("Your reply", publishing.POST_MAX, rows=5, help=MARKDOWN_HELP)
    content_warning = _text(
        "Content warning (optional)", publishing.CONTENT_WARNING_MAX, required=False
    )
    cw_categories = _cw_categories()
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)
    post_anyway = _post_anyway()

    def __init__(self, *args, quiet_hours_set: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not quiet_hours_set:  # only members who set quiet hours need the override
            del self.fields[publishing.QUIET_HOURS_FIELD]


class EditPostForm(forms.Form):
    title = _text("Title", publishing.TITLE_MAX)
    body = _text("Your post", publishing.POST_MAX, rows=10, help=MARKDOWN_HELP)
    content_warning = _text(
        "Content warning (optional)", publishing.CONTENT_WARNING_MAX, required=False
    )
    cw_categories = _cw_categories()

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


class QuietHoursForm(forms.Form):
    quiet_start = forms.TimeField(
        label="Quiet from (optional)",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        error_messages={"invalid": "Enter a time as HH:MM."},
    )
    quiet_end = forms.TimeField(
        label="Until",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text="e.g. 23:00 until 06:00. Leave both empty for no quiet hours.",
        error_messages={"invalid": "Enter a time as HH:MM."},
    )
    quiet_timezone = forms.CharField(
        label="Your time zone",
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"list": "timezones", "autocomplete": "off"}),
        help_text="e.g. Europe/London or America/Chicago.",
    )


class ContentWarningSettingsForm(forms.Form):
    """One show / collapse / hide choice per content-warning category."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for code, label in content_warnings.CATEGORY_CHOICES:
            self.fields[f"cw_{code}"] = forms.ChoiceField(
                label=label[:1].upper() + label[1:],
                choices=content_warnings.MODE_CHOICES,
                widget=forms.RadioSelect,
                error_messages={
                    "required": "Choose show, collapse or hide.",
                    "invalid_choice": "Choose show, collapse or hide.",
                },
            )

    def choices(self) -> dict[str, str]:
        return {code: self.cleaned_data[f"cw_{code}"] for code in content_warnings.CATEGORIES}


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
