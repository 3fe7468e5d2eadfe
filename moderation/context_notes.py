"""The active context-note library, compiled once per change in each worker process.

Like the watched phrases (forum.publishing.watched_rules): the version token lives in the
shared cache, so a note saved in any worker is matched, and shown, by every worker. Imports
nothing from ``forum``: the write path and the thread page both read it.
"""

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType

from .models import CONTEXT_NOTES_VERSION, ContextNote, NoteAttachment
from .similarity import Matcher, NoteClaim, build_matcher


@dataclass(frozen=True)
class NoteView:
    """What readers and the write path need of an active note, held in memory."""

    id: int
    claim: str
    correction_html: str
    sources: tuple[str, ...]
    hold_on_match: bool


@dataclass(frozen=True)
class Library:
    matcher: Matcher
    notes: dict[int, NoteView]


def library() -> Library:
    def compile_it() -> Library:
        notes = list(ContextNote.objects.filter(is_active=True).order_by("pk"))
        return Library(
            matcher=build_matcher(NoteClaim(n.pk, n.claim, tuple(n.phrasing_list)) for n in notes),
            notes={
                n.pk: NoteView(
                    n.pk, n.claim, n.correction_html, tuple(n.source_list), n.hold_on_match
                )
                for n in notes
            },
        )

    return CONTEXT_NOTES_VERSION.cached("library", compile_it)


def matching_notes(*texts: str) -> list[tuple[NoteView, float]]:
    """Active notes whose claim the text restates, best first (empty for an empty library)."""
    lib = library()
    if not lib.notes:
        return []
    text = "\n".join(t for t in texts if t)
    return [
        (lib.notes[m.note_id], m.score) for m in lib.matcher.match(text) if m.note_id in lib.notes
    ]


def _attachments(obj):
    return NoteAttachment.objects.filter(
        content_type=ContentType.objects.get_for_model(type(obj)), object_id=obj.pk
    )


def new_matches(obj, notes: list[tuple[NoteView, float]]) -> list[tuple[NoteView, float]]:
    """Of ``notes`` matched by an edit of ``obj``, those never attached to it before: a note
    already shown stays as it is, and one a moderator took off is not put back."""
    if not notes:
        return []
    known = set(_attachments(obj).values_list("note_id", flat=True))
    return [(note, score) for note, score in notes if note.id not in known]


def note_shown_under(obj) -> NoteView | None:
    """The active note shown under ``obj`` now (the first attached), if any."""
    shown = (
        _attachments(obj)
        .filter(note__is_active=True)
        .exclude(state=NoteAttachment.State.DETACHED)
        .order_by("pk")
        .values_list("note_id", flat=True)
        .first()
    )
    return library().notes.get(shown) if shown else None
