"""The context-note library (moderation.context_notes): site moderators write, edit, retire
and bring back notes; group moderators read it, and on a queue item confirm, detach or
attach notes by hand (``ItemNotes``, used by views/review.py). Every change is an action
in moderation.actions, so it is checked and logged there."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from forum.views._util import posted, submit

from .. import actions, permissions
from ..models import ContextNote, NoteAttachment

TEXT_ATTRS = {"rows": 4}


class ContextNoteForm(forms.Form):
    claim = forms.CharField(
        label="The claim",
        max_length=actions.CLAIM_MAX,
        help_text="The misinformation, in one plain sentence, as a member might say it.",
    )
    phrasings = forms.CharField(
        label="Other ways people say it (optional)",
        required=False,
        max_length=actions.PHRASINGS_MAX,
        widget=forms.Textarea(attrs=TEXT_ATTRS),
        help_text="One a line. Matching already survives rewording; add slang and idioms.",
    )
    correction = forms.CharField(
        label="The correction, for peers",
        max_length=actions.CORRECTION_MAX,
        widget=forms.Textarea(attrs=TEXT_ATTRS),
        help_text="Shown under every matching post. Kind and plain; Markdown works.",
    )
    sources = forms.CharField(
        label="Sources (optional)",
        required=False,
        max_length=actions.SOURCES_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One a line: a title or a link.",
    )
    hold_on_match = forms.BooleanField(
        label="Hold matching posts and messages until a moderator looks", required=False
    )

    @classmethod
    def initial_for(cls, note: ContextNote) -> dict:
        return {
            "claim": note.claim,
            "phrasings": note.phrasings,
            "correction": note.correction_source,
            "sources": note.sources,
            "hold_on_match": note.hold_on_match,
        }


def _save(request, form: ContextNoteForm, note: ContextNote | None) -> ContextNote | None:
    data = form.cleaned_data
    return submit(
        form,
        lambda: actions.save_context_note(
            actor=request.user, note=note, claim=data["claim"], phrasings=data["phrasings"],
            correction=data["correction"], sources=data["sources"],
            hold_on_match=data["hold_on_match"],
        ),
    )  # fmt: skip


def _check_can_read(user) -> None:
    if not permissions.can_review(user):
        raise PermissionDenied("Only moderators see the context-note library.")


@login_required
def library(request):
    user = request.user
    _check_can_read(user)
    can_manage = permissions.can_moderate(user, "manage_rules", None)
    form = ContextNoteForm(posted(request))
    if request.method == "POST":
        permissions.check_can_moderate(user, "manage_rules", None)
        if form.is_valid() and (note := _save(request, form, None)) is not None:
            messages.success(request, f"The note on “{note.claim}” is in the library.")
            return redirect("moderation:notes")
    shown = Q(
        attachments__state__in=[NoteAttachment.State.SUGGESTED, NoteAttachment.State.CONFIRMED]
    )
    notes = ContextNote.objects.select_related("created_by").annotate(
        shown_count=Count("attachments", filter=shown)
    )
    context = {
        "notes": [n for n in notes if n.is_active],
        "retired": [n for n in notes if not n.is_active],
        "can_manage": can_manage,
        "form": form if can_manage else None,
    }
    return render(request, "moderation/notes.html", context)


@login_required
def edit_note(request, note_id: int):
    permissions.check_can_moderate(request.user, "manage_rules", None)
    note = get_object_or_404(ContextNote, pk=note_id)
    form = ContextNoteForm(posted(request), initial=ContextNoteForm.initial_for(note))
    if request.method == "POST" and form.is_valid() and _save(request, form, note) is not None:
        messages.success(request, "Note saved; readers see the new wording at once.")
        return redirect("moderation:notes")
    return render(request, "moderation/note_edit.html", {"note": note, "form": form})


def _set_active(request, note_id: int, active: bool):
    note = get_object_or_404(ContextNote, pk=note_id)
    try:
        actions.set_context_note_active(actor=request.user, note=note, active=active)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        done = "back in use" if active else "retired: no longer matched or shown"
        messages.success(request, f"The note on “{note.claim}” is {done}.")
    return redirect("moderation:notes")


@login_required
@require_POST
def retire_note(request, note_id: int):
    return _set_active(request, note_id, False)


@login_required
@require_POST
def restore_note(request, note_id: int):
    return _set_active(request, note_id, True)


# --- on a queue item -------------------------------------------------------------------------


class AttachNoteForm(forms.Form):
    note = forms.ModelChoiceField(
        label="Attach a note", queryset=ContextNote.objects.none(), empty_label="Choose a note"
    )
    reason = forms.CharField(label="Why (optional, for the log)", required=False, max_length=2_000)

    def __init__(self, *args, notes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["note"].queryset = notes


ITEM_ACTIONS = {
    "note_attach": "Note attached: readers see it under the content.",
    "note_confirm": "Note confirmed.",
    "note_detach": "Note detached: readers no longer see it.",
}


class ItemNotes:
    """The notes panel of a queue item: what is attached to its content, and the forms to
    change that. ``enabled`` is False where there is nothing to attach a note to, or the
    viewer may not."""

    def __init__(self, request, target: actions.Target | None):
        self.request, self.target, self.error = request, target, ""
        self.enabled = (
            target is not None
            and target.kind in {"post", "thread", "chat message"}
            and not target.is_gone
            and permissions.can_moderate(request.user, "review_queue", target.group)
        )
        self.attachments: list[NoteAttachment] = (
            list(actions.attachments_on(target.obj)) if self.enabled else []
        )
        shown = [a.note_id for a in self.attachments if a.is_shown]
        sent = posted(request)
        self.attach_form = AttachNoteForm(
            sent if sent is not None and sent.get("action") == "note_attach" else None,
            prefix="note_attach",
            notes=ContextNote.objects.filter(is_active=True).exclude(pk__in=shown),
        )

    def handles(self, name: str) -> bool:
        return self.enabled and name in ITEM_ACTIONS

    def run(self, name: str) -> str:
        """Run one notes action; its success message, or "" with the error kept to show."""
        user = self.request.user
        if name == "note_attach":
            form = self.attach_form
            if not form.is_valid():
                return ""
            done = submit(
                form,
                lambda: actions.attach_note(
                    actor=user, note=form.cleaned_data["note"], obj=self.target.obj,
                    reason=form.cleaned_data["reason"],
                ),
            )  # fmt: skip
            return ITEM_ACTIONS[name] if done else ""
        attachment = next(
            (a for a in self.attachments if str(a.pk) == self.request.POST.get("attachment")),
            None,
        )
        if attachment is None:
            raise PermissionDenied("That note is not attached here.")
        call = actions.confirm_attachment if name == "note_confirm" else actions.detach_note
        try:
            call(actor=user, attachment=attachment)
        except ValidationError as error:
            self.error = " ".join(error.messages)
            return ""
        return ITEM_ACTIONS[name]
