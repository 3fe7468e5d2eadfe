"""Forms for the review side: the queue's filter, actions on an item, the ladder on a member.

Each form only collects and shapes input; moderation.actions decides and refuses
(its ValidationErrors land on these forms through forum.views._util.submit).
"""

from collections.abc import Iterable
from datetime import timedelta

from django import forms
from django.db.models import Q, QuerySet

from forum import content_warnings
from forum.models import SupportGroup

from .models import Rule, Sanction

# How long a sanction lasts: a short list of choices, so nobody types "3 dyas".
DURATIONS: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("1 hour", timedelta(hours=1)),
    "1d": ("1 day", timedelta(days=1)),
    "3d": ("3 days", timedelta(days=3)),
    "7d": ("1 week", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
}
NO_END = "none"

SLOW_MODE_CHOICES = [
    ("30", "30 seconds"),
    ("60", "1 minute"),
    ("300", "5 minutes"),
    ("900", "15 minutes"),
    ("3600", "1 hour"),
]

REASON_ATTRS = {"rows": 2, "maxlength": 2_000}


def rules_for(group_ids: Iterable[int] | QuerySet = ()) -> QuerySet[Rule]:
    """The site's rules and those of these groups (ids, or a queryset of their pks)."""
    return (
        Rule.objects.filter(Q(group__isnull=True) | Q(group_id__in=group_ids))
        .select_related("group")
        .order_by("group_id", "position", "pk")
    )


class RuleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, rule: Rule) -> str:
        return f"{rule.group.name}: {rule.title}" if rule.group_id else f"Site: {rule.title}"


def _reason_field(label: str = "Reason", *, required: bool = True) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=2_000,
        widget=forms.Textarea(attrs=REASON_ATTRS),
        error_messages={"required": "Give a reason: the member sees it and can appeal."},
    )


class NoteForm(forms.Form):
    text = forms.CharField(
        label="Add a note for the other moderators (the member never sees it)",
        max_length=2_000,
        widget=forms.Textarea(attrs=REASON_ATTRS),
        error_messages={"required": "Write the note first."},
    )

    def __init__(self, *args, groups=None, site_wide: bool = False, **kwargs) -> None:
        """``groups``: offer a choice of group (the member page); None: the item's group."""
        super().__init__(*args, **kwargs)
        if groups is not None:
            self.fields["group"] = forms.ModelChoiceField(
                label="Shared with the moderators of",
                queryset=groups,
                required=not site_wide,
                empty_label="Every moderator (site-wide)" if site_wide else "Choose…",
                error_messages={
                    "required": "Choose the group whose moderators share the note.",
                    "invalid_choice": "Choose one of the groups you moderate.",
                },
            )


class DismissForm(forms.Form):
    note = forms.CharField(
        label="Note (optional): why nothing is wrong",
        required=False,
        max_length=2_000,
        widget=forms.Textarea(attrs=REASON_ATTRS),
    )


class HideForm(forms.Form):
    rule = RuleChoiceField(
        label="Rule",
        queryset=Rule.objects.none(),
        required=False,
        empty_label="No specific rule",
        error_messages={"invalid_choice": "Choose a rule from the list."},
    )
    reason = _reason_field()

    def __init__(self, *args, group: SupportGroup | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rule"].queryset = rules_for([group.pk] if group is not None else [])


class ReasonForm(forms.Form):
    """Restore, lock, unlock, pin, unpin: an optional reason is all they take."""

    reason = _reason_field("Reason (optional)", required=False)


class EditForm(forms.Form):
    body = forms.CharField(
        label="The post's text",
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 6}),
        error_messages={"required": "The post cannot be empty; remove it instead."},
    )
    note = forms.CharField(
        label="Moderator note every reader sees (e.g. “Phone number removed.”)",
        max_length=300,
        error_messages={"required": "Say why you edited it: readers see this note."},
    )


class ContentWarningForm(forms.Form):
    warning = forms.CharField(
        label="Content warning (leave empty to clear it)", required=False, max_length=100
    )
    categories = forms.MultipleChoiceField(
        label="It contains",
        required=False,
        choices=content_warnings.CATEGORY_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="Members choose to show, collapse or hide each of these.",
    )


class MoveForm(forms.Form):
    group = forms.ModelChoiceField(
        label="Move to",
        queryset=SupportGroup.objects.none(),
        empty_label="Choose a group…",
        error_messages={
            "required": "Choose the group to move it to.",
            "invalid_choice": "Choose one of the groups you moderate.",
        },
    )
    reason = _reason_field("Reason (optional)", required=False)

    def __init__(self, *args, groups=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if groups is not None:
            self.fields["group"].queryset = groups


class DecideAppealForm(forms.Form):
    decision = forms.ChoiceField(
        label="Decision",
        choices=[("uphold", "Uphold: the action stands"), ("reverse", "Reverse the action")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose whether the action stands."},
    )
    note = forms.CharField(
        label="Your reasons (the member reads them)",
        max_length=2_000,
        widget=forms.Textarea(attrs=REASON_ATTRS),
        error_messages={"required": "Explain your decision to the member."},
    )


class SanctionForm(forms.Form):
    """One step of the ladder; which fields show depends on ``kind``."""

    group = forms.ModelChoiceField(
        label="Group",
        queryset=SupportGroup.objects.none(),
        empty_label="Choose…",
        error_messages={
            "required": "Choose the group.",
            "invalid_choice": "Choose one of the groups you moderate that they belong to.",
        },
    )
    rule = RuleChoiceField(
        label="Rule",
        queryset=Rule.objects.none(),
        required=False,
        empty_label="No specific rule",
        error_messages={"invalid_choice": "Choose a rule from the list."},
    )
    reason = _reason_field()
    message = forms.CharField(
        label="Message to the member (optional)",
        required=False,
        max_length=2_000,
        widget=forms.Textarea(attrs=REASON_ATTRS),
    )
    duration = forms.ChoiceField(
        label="How long",
        choices=[],
        error_messages={
            "required": "Choose how long it lasts.",
            "invalid_choice": "Choose a duration from the list.",
        },
    )
    slow_mode_seconds = forms.TypedChoiceField(
        label="Time between posts",
        choices=SLOW_MODE_CHOICES,
        coerce=int,
        error_messages={
            "required": "Choose the time between posts.",
            "invalid_choice": "Choose a time from the list.",
        },
    )

    def __init__(self, *args, kind: str, groups=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind == Sanction.Kind.BAN:
            del self.fields["group"]
            self.fields["rule"].queryset = rules_for()
        else:
            self.fields["group"].queryset = (
                groups if groups is not None else self.fields["group"].queryset
            )
            # Site rules and the rules of every group on offer; clean() checks the match.
            self.fields["rule"].queryset = rules_for(self.fields["group"].queryset.values("pk"))
        if kind == Sanction.Kind.WARNING:
            del self.fields["duration"]
        else:
            choices = [(key, label) for key, (label, _) in DURATIONS.items()]
            if kind == Sanction.Kind.BAN:
                choices.append((NO_END, "No end"))
            self.fields["duration"].choices = [("", "Choose…"), *choices]
        if kind != Sanction.Kind.SLOW_MODE:
            del self.fields["slow_mode_seconds"]

    def clean(self):
        data = super().clean()
        rule, group = data.get("rule"), data.get("group")
        if (
            rule is not None
            and rule.group_id is not None
            and (group is None or rule.group_id != group.pk)
        ):
            self.add_error("rule", "That rule belongs to another group.")
        return data

    def duration_value(self) -> timedelta | None:
        key = self.cleaned_data.get("duration")
        if not key or key == NO_END:
            return None
        return DURATIONS[key][1]


class LiftForm(forms.Form):
    sanction = forms.IntegerField(widget=forms.HiddenInput)
    reason = _reason_field("Reason (optional)", required=False)
