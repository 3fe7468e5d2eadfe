"""The active context-note library, compiled once per change in each worker process.

Like the watched phrases (forum.publishing.watched_rules): the version token lives in the
shared cache, so a note saved in any worker is matched, and shown, by every worker. Imports
nothing from ``forum``: the write path and the thread page both read it.
"""

from dataclasses import dataclass

from .models import CONTEXT_NOTES_VERSION, ContextNote
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
