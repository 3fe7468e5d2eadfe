"""Pure moderation decisions: a submission in, a verdict out.

Nothing here touches the database or imports from ``forum``: the write path
gathers the facts (the author's recent texts, ...) and this module decides.
"""

import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    PUBLISH = "publish"
    REJECT = "reject"


@dataclass(frozen=True)
class Submission:
    kind: str  # "thread", "reply", "edit", "bio", "group"
    text: str
    recent_texts: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""
    field: str = ""

    @property
    def rejected(self) -> bool:
        return self.outcome == Outcome.REJECT


PUBLISH = Verdict(Outcome.PUBLISH)


def _fingerprint(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split())


def evaluate(submission: Submission) -> Verdict:
    """Decide what happens to a submission that has already passed validation."""
    if submission.recent_texts and submission.kind in {"thread", "reply"}:
        mine = _fingerprint(submission.text)
        if any(_fingerprint(text) == mine for text in submission.recent_texts):
            return Verdict(
                Outcome.REJECT,
                reason="You posted this same text a moment ago. It is already there.",
                field="body",
            )
    return PUBLISH
