"""Forms for the members' side of moderation: flags, appeals and the log's filters."""

from django import forms

from .models import FlagReason, ModerationLogEntry

# A short explanation under each reason, so members pick the right one.
REASON_HELP = {
    FlagReason.HARASSMENT: "Attacks, insults, threats or someone not letting a member be.",
    FlagReason.MISINFORMATION: (
        "Advice that could hurt someone, e.g. about detox, withdrawal or medication."
    ),
    FlagReason.SPAM: "Advertising, selling, or steering people to a treatment centre.",
    FlagReason.TRIGGERING: "Graphic detail about using or harm, without a content warning.",
    FlagReason.CRISIS: (
        "A crisis concern, not an accusation: it alerts the moderators so someone can "
        "reach out to this person. Nothing is hidden and nobody is punished."
    ),
    FlagReason.OTHER: "Something else a moderator should see. Tell us what, below.",
}


class FlagForm(forms.Form):
    reason = forms.ChoiceField(
        label="What is wrong?",
        choices=FlagReason.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a reason from the list."},
    )
    details = forms.CharField(
        label="Anything a moderator should know (needed for “Something else”)",
        required=False,
        max_length=1_000,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 1_000}),
    )

    def clean(self):
        data = super().clean()
        if data.get("reason") == FlagReason.OTHER and not data.get("details", "").strip():
            self.add_error("details", "Tell the moderators what is wrong.")
        return data

    def reasons(self) -> list[dict]:
        """The radio buttons with their explanations, for the template."""
        return [
            {"radio": radio, "help": REASON_HELP[FlagReason(radio.data["value"])]}
            for radio in self["reason"]
        ]


class AppealForm(forms.Form):
    text = forms.CharField(
        label="Why should this be looked at again?",
        max_length=2_000,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": 2_000}),
        error_messages={"required": "Tell the moderators why you are appealing."},
    )


class LogFilterForm(forms.Form):
    group = forms.CharField(label="Group (its address name)", required=False, max_length=80)
    moderator = forms.CharField(label="Moderator", required=False, max_length=30)
    member = forms.CharField(label="Member", required=False, max_length=30)
    action = forms.ChoiceField(
        label="Action",
        required=False,
        choices=[("", "Any action"), *ModerationLogEntry.Action.choices],
    )
