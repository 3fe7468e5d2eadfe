"""Forms collect input and show errors; the rules live in forum.publishing.

Text fields here only set browser hints (maxlength, required); the authoritative
validation happens once, in the write path, whose errors the views attach back
to these forms.
"""

import hashlib

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm, PasswordResetForm
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorDict

from moderation import ratelimit

from . import accountability, content_warnings, login_throttle, mentoring, notify, publishing
from .models import (
    ChatRoom,
    CheckIn,
    Goal,
    LiveSession,
    Membership,
    NotificationPreference,
    SupportGroup,
    User,
)
from .models.mentoring import APPROACHES


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


def _hold_for_hour() -> forms.BooleanField:
    """The member's own cooling-off wait (publishing.hold_thread / hold_reply); the label
    follows KINSHIP_HOLD_MINUTES, set in the form's __init__."""
    return forms.BooleanField(
        required=False,
        help_text="Only you can see it until then. You can send it sooner, change it or "
        "discard it.",
    )


def _label_hold(form: forms.Form) -> None:
    label = f"Hold this for {publishing.hold_duration()} before it goes out"
    form.fields[publishing.HOLD_FIELD].label = label


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

    def __init__(self, *args, address: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address  # the client's, for the per-address limit

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

    def full_clean(self) -> None:
        super().full_clean()
        if not self.is_bound:
            return
        # Every attempt counts, and past the limit the form says that and nothing else, so
        # the "taken" answers cannot be used to sweep for handles.
        try:
            ratelimit.hit("signup", key=self.address)
        except ratelimit.RateLimited as error:
            self._errors = ErrorDict()
            self.cleaned_data = {}
            self.add_error(None, ValidationError(str(error), code="rate_limited"))


class ResetRequestForm(PasswordResetForm):
    """Asking for a password-reset link, limited per client address and per e-mail."""

    def __init__(self, *args, address: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.address = address

    def clean(self):
        try:
            ratelimit.hit("password_reset", key=self.address)
        except ratelimit.RateLimited as error:
            raise ValidationError(str(error), code="rate_limited") from None
        return super().clean()

    def save(self, **kwargs) -> None:
        email = self.cleaned_data["email"].strip().lower()
        try:
            ratelimit.hit("password_reset_email", key=hashlib.sha256(email.encode()).hexdigest())
        except ratelimit.RateLimited:
            # Nothing more is sent to this address for a while. The answer stays the same
            # page, so it tells nobody whether the address belongs to an account.
            return
        super().save(**kwargs)


class LoginForm(AuthenticationForm):
    error_messages = {
        "invalid_login": "That handle and password do not match. Handles are not case-sensitive.",
        "inactive": "This account is not active.",
    }

    def clean(self):
        handle = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if handle is None or not password:
            return super().clean()
        address = login_throttle.client_address(self.request)
        if login_throttle.is_locked(handle=handle, address=address):
            # Hash anyway: a refused attempt takes as long as any other.
            make_password(password)
            raise ValidationError(login_throttle.locked_message(), code="locked")
        try:
            super().clean()
        except ValidationError:
            if login_throttle.record_failure(handle=handle, address=address):
                raise ValidationError(login_throttle.locked_message(), code="locked") from None
            raise
        login_throttle.record_success(handle=handle, address=address)
        return self.cleaned_data


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
    hold_for_hour = _hold_for_hour()
    post_anyway = _post_anyway()

    def __init__(self, *args, quiet_hours_set: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        _label_hold(self)
        if not quiet_hours_set:
            del self.fields[publishing.QUIET_HOURS_FIELD]


class ReplyForm(forms.Form):
    body = _text("Your reply", publishing.POST_MAX, rows=5, help=MARKDOWN_HELP)
    content_warning = _text(
        "Content warning (optional)", publishing.CONTENT_WARNING_MAX, required=False
    )
    cw_categories = _cw_categories()
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)
    hold_for_hour = _hold_for_hour()
    post_anyway = _post_anyway()

    def __init__(self, *args, quiet_hours_set: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        _label_hold(self)
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


# --- live sessions ---------------------------------------------------------------------------

# Offered first in the time-zone select; any other IANA name the leader had is added to it.
COMMON_TIME_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Helsinki",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Hong_Kong",
    "Asia/Tokyo",
    "Australia/Perth",
    "Australia/Adelaide",
    "Australia/Sydney",
    "Pacific/Auckland",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Phoenix",
    "America/Chicago",
    "America/New_York",
    "America/Halifax",
    "America/St_Johns",
    "America/Mexico_City",
    "America/Bogota",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
)


def _whole_number(label: str, **attrs) -> forms.IntegerField:
    """A number field whose range the write path checks (so its error names the range)."""
    return forms.IntegerField(
        label=label,
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", **attrs}),
        error_messages={"invalid": "Enter a whole number."},
    )


class SessionForm(forms.Form):
    title = _text("Title", publishing.SESSION_TITLE_MAX)
    format = forms.ChoiceField(
        label="Format",
        choices=LiveSession.Format.choices,
        error_messages={"invalid_choice": "Choose a format.", "required": "Choose a format."},
    )
    topic = _text(
        "Topic (optional)",
        publishing.SESSION_TOPIC_MAX,
        rows=3,
        required=False,
        help=f"What this meeting is about. {MARKDOWN_HELP}",
    )
    starts_on = forms.DateField(
        label="Date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )
    start_time = forms.TimeField(
        label="Starts at",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        error_messages={"invalid": "Enter a time as HH:MM."},
    )
    end_time = forms.TimeField(
        label="Ends at",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text="An end before the start is on the next day (23:00 to 00:30).",
        error_messages={"invalid": "Enter a time as HH:MM."},
    )
    time_zone = forms.CharField(
        label="Time zone",
        required=False,
        max_length=64,
        widget=forms.Select(attrs={"data-zone-select": ""}),
        help_text="Members see the times in their own zone; a weekly series keeps this "
        "zone's local time when the clocks change.",
    )
    weekly = forms.BooleanField(
        label="Repeat weekly",
        required=False,
    )
    capacity = _whole_number("Capacity (optional)", min=2, max=1000)
    co_leaders = forms.CharField(
        label="Co-leaders (optional)",
        required=False,
        max_length=400,
        help_text="Handles of members of this group, separated by commas. "
        "They run the room and the share queue with you.",
    )
    opening_script = forms.TypedChoiceField(
        label="Opening reading",
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={"invalid_choice": "Choose one of this group's readings."},
    )
    closing_script = forms.TypedChoiceField(
        label="Closing reading",
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={"invalid_choice": "Choose one of this group's readings."},
    )
    opens_before_minutes = _whole_number("The room opens this many minutes before", min=0, max=120)
    welcome = _text(
        "Welcome for newcomers (optional)",
        publishing.SESSION_WELCOME_MAX,
        rows=3,
        required=False,
        help=f"Shown to members at their first session in this group. Empty: "
        f"“{publishing.DEFAULT_WELCOME}”",
    )
    fellowship_after = forms.BooleanField(
        label="Open a fellowship room for informal talk when the session ends", required=False
    )
    transcript = forms.ChoiceField(
        label="What is said in the session",
        choices=LiveSession.Transcript.choices,
        widget=forms.RadioSelect,
        error_messages={
            "invalid_choice": "Choose what happens to what is said.",
            "required": "Choose what happens to what is said.",
        },
    )
    transcript_days = _whole_number(
        "Days to keep it (with “kept for a number of days”)", min=1, max=365
    )

    def __init__(self, *args, scripts=(), zone: str = "UTC", series: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        zones = list(COMMON_TIME_ZONES)
        for name in (zone, self.data.get("time_zone") if self.is_bound else None):
            if name and name not in zones:
                zones.insert(0, name)
        self.fields["time_zone"].widget.choices = [(name, name.replace("_", " ")) for name in zones]
        readings = [("", "None"), *((script.pk, script.title) for script in scripts)]
        self.fields["opening_script"].choices = readings
        self.fields["closing_script"].choices = readings
        if not series:  # editing one occurrence: its series stays as it is
            del self.fields["weekly"]
        else:
            self.fields["weekly"].help_text = (
                f"{settings.KINSHIP_SESSION_SERIES_WEEKS} sessions at this local time, one a "
                "week; each can then be changed or cancelled on its own."
            )

    def session_plan(self) -> publishing.SessionPlan:
        """The cleaned data for publishing.schedule_session / edit_session."""
        data = dict(self.cleaned_data)
        data["opening_script_id"] = data.pop("opening_script")
        data["closing_script_id"] = data.pop("closing_script")
        return publishing.SessionPlan(**data)


class CancelSessionForm(forms.Form):
    reason = _text(
        "Reason (optional)",
        publishing.MODERATION_TEXT_MAX,
        rows=2,
        required=False,
        help="Members who said they were coming get a notification with it.",
    )
    following = forms.BooleanField(
        label="Also cancel the later sessions of this weekly series", required=False
    )

    def __init__(self, *args, series: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not series:
            del self.fields["following"]


class ScriptForm(forms.Form):
    title = _text("Title", publishing.SCRIPT_TITLE_MAX)
    text = _text("Text", publishing.SCRIPT_TEXT_MAX, rows=10, help=MARKDOWN_HELP)


class NotificationSettingsForm(forms.Form):
    """Per kind: in the app, and counted in the e-mail digest; and how often the digest
    comes (forum.notify.CATEGORIES). Moderation notices and held posts have no in-app box:
    they always reach the app."""

    digest_frequency = forms.ChoiceField(
        label="E-mail digest",
        choices=NotificationPreference.Frequency.choices,
        widget=forms.RadioSelect,
        help_text="Off unless you choose. It says only how many notifications of each kind "
        "are waiting: never what was written, by whom, or in which group.",
        error_messages={
            "required": "Choose off, daily or weekly.",
            "invalid_choice": "Choose off, daily or weekly.",
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for category in notify.CATEGORIES:
            if not category.always_in_app:
                self.fields[f"{category.key}_in_app"] = forms.BooleanField(
                    label=f"{category.label}: in Kinship", required=False
                )
            self.fields[f"{category.key}_in_digest"] = forms.BooleanField(
                label=f"{category.label}: in the e-mail digest", required=False
            )

    def rows(self) -> list[tuple]:
        """(category, its in-app field or None, its digest field), for the table."""
        return [
            (
                category,
                None if category.always_in_app else self[f"{category.key}_in_app"],
                self[f"{category.key}_in_digest"],
            )
            for category in notify.CATEGORIES
        ]

    def choices(self) -> dict[str, bool]:
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name.endswith(("_in_app", "_in_digest"))
        }


# --- accountability: goals, check-ins, the recovery date (forum.accountability) ----------------


def _your_groups(owner: User) -> list[tuple[str, str]]:
    memberships = Membership.objects.filter(user=owner).select_related("group")
    return [("", "—"), *((str(m.group_id), m.group.name) for m in memberships)]


class GoalForm(forms.Form):
    title = _text(
        "Your goal",
        publishing.GOAL_TITLE_MAX,
        help="e.g. “Call my mentor” or “Go to a meeting”. Keep real names out of it.",
    )
    cadence = forms.ChoiceField(
        label="How often",
        choices=Goal.Cadence.choices,
        widget=forms.RadioSelect,
        initial=Goal.Cadence.DAILY,
        error_messages={"required": "Choose how often.", "invalid_choice": "Choose how often."},
    )
    weekly_target = forms.IntegerField(
        label="Days a week (for a weekly goal)",
        required=False,
        min_value=1,
        max_value=7,
        initial=3,
        error_messages={
            "invalid": "Enter a number of days from 1 to 7.",
            "min_value": "A weekly goal is for 1 to 7 days a week.",
            "max_value": "A weekly goal is for 1 to 7 days a week.",
        },
    )
    visibility = forms.ChoiceField(
        label="Who can see this goal",
        choices=Goal.Visibility.choices,
        widget=forms.RadioSelect,
        initial=Goal.Visibility.ONLY_ME,
        help_text="Others see its title and streak, never your check-in notes.",
        error_messages={
            "required": "Choose who can see this goal.",
            "invalid_choice": "Choose who can see this goal.",
        },
    )
    group = forms.ChoiceField(
        label="Which group (for “members of one of my groups”)",
        required=False,
        error_messages={"invalid_choice": "Choose one of your groups."},
    )

    def __init__(self, *args, owner: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].choices = _your_groups(owner)


def _score(label: str, choices: list[tuple[int, str]], help: str = "") -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Skip"), *choices],
        help_text=help,
        error_messages={"invalid_choice": "Choose from the list."},
    )


class CheckInForm(forms.Form):
    day = forms.DateField(
        label="Day",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Today, or a day you missed in the last 30.",
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )
    goals_met = forms.TypedMultipleChoiceField(
        label="Goals I met",
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose from your own goals."},
    )
    mood = _score("Mood", CheckIn.MOOD_CHOICES)
    cravings = _score("Cravings", CheckIn.CRAVING_CHOICES)
    note = _text(
        "A note for yourself (optional)",
        accountability.NOTE_MAX,
        rows=3,
        required=False,
        help="Only you ever see this note: not your mentor, not your groups, not moderators.",
    )

    def __init__(self, *args, goals: list[Goal], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["goals_met"].choices = [(goal.pk, goal.title) for goal in goals]


class RecoveryDateForm(forms.Form):
    recovery_date = forms.DateField(
        label="Recovery date (optional)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Others only ever see a day count, never the date itself.",
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )
    recovery_date_visibility = forms.ChoiceField(
        label="Who can see your day count",
        choices=User.Visibility.choices,
        error_messages={"invalid_choice": "Choose who can see your day count."},
    )
    mentor_sees_days = forms.BooleanField(
        label="My mentor can see my day count and milestones", required=False
    )
    celebrate = forms.BooleanField(
        label="Show my latest milestone as a badge on my profile",
        required=False,
        help_text="Only to those who can see your day count.",
    )
    share_check_ins = forms.BooleanField(
        label="My mentor can see my check-ins' mood and cravings",
        required=False,
        help_text="Never your notes.",
    )


# --- peer mentoring --------------------------------------------------------------------------


class MentorProfileForm(forms.Form):
    experience = _text(
        "What you can speak to",
        mentoring.EXPERIENCE_MAX,
        rows=6,
        help="The experience you can share: what helped, what you have been through. "
        "Please keep real names out of it. " + MARKDOWN_HELP,
    )
    approaches = forms.MultipleChoiceField(
        label="Approaches you know",
        required=False,
        choices=APPROACHES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "“%(value)s” is not one of the approaches."},
    )
    availability = _text(
        "Availability",
        mentoring.SHORT_MAX,
        required=False,
        help='e.g. "weekday evenings, UK time".',
    )
    languages = _text(
        "Languages", mentoring.SHORT_MAX, required=False, help='e.g. "English, Polish".'
    )
    accepting = forms.BooleanField(
        label="I am taking new requests",
        required=False,
        help_text="Untick to pause: you stay approved, but are not listed until you tick it again.",
    )


class MentorRequestForm(forms.Form):
    note = _text(
        "A note for the mentor (optional)",
        mentoring.NOTE_MAX,
        rows=4,
        required=False,
        help="Only the mentor reads it. What are you looking for? Please keep real names out.",
    )


class MentorFilterForm(forms.Form):
    approach = forms.ChoiceField(
        label="Approach", required=False, choices=[("", "Any approach"), *APPROACHES]
    )
    language = forms.CharField(label="Language", required=False, max_length=40)
    group = forms.ChoiceField(label="Group", required=False)

    def __init__(self, *args, groups, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].choices = [("", "All my groups")] + [
            (group.slug, group.name) for group in groups
        ]


class DeleteAccountForm(forms.Form):
    posts = forms.ChoiceField(
        label="What happens to what you wrote",
        widget=forms.RadioSelect,
        choices=[
            ("remove", "Remove it: each post leaves a “[removed by author]” placeholder"),
            ("keep", "Keep it, shown as written by “a former member”"),
        ],
    )
    password = forms.CharField(
        label="Your current password", strip=False, widget=forms.PasswordInput
    )
