"""The active context-note library, compiled once per change in each worker process.

Like the watched phrases (forum.publishing.watched_rules): the version token lives in the
shared cache, so a note saved in any worker is matched, and shown, by every worker. Imports
nothing from ``forum``: the write path and the thread page both read it.
"""

from dataclasses import dataclass

from .models import ContextNote, context_notes_version
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


_compiled: dict[str, Library] = {}


def library() -> Library:
    token = context_notes_version()
    cached = _compiled.get(token)
    if cached is not None:
        return cached
    notes = list(ContextNote.objects.filter(is_active=True).order_by("pk"))
    compiled = Library(
        matcher=build_matcher(NoteClaim(n.pk, n.claim, tuple(n.phrasing_list)) for n in notes),
        notes={
            n.pk: NoteView(n.pk, n.claim, n.correction_html, tuple(n.source_list), n.hold_on_match)
            for n in notes
        },
    )
    _compiled.clear()  # one library is current; older tokens are never asked for again
    _compiled[token] = compiled
    return compiled


def matching_notes(*texts: str) -> list[tuple[NoteView, float]]:
    """Active notes whose claim the text restates, best first (empty for an empty library)."""
    lib = library()
    if not lib.notes:
        return []
    text = "\n".join(t for t in texts if t)
    return [
        (lib.notes[m.note_id], m.score) for m in lib.matcher.match(text) if m.note_id in lib.notes
    ]
