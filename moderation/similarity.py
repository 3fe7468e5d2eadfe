"""Matching member text against the context-note library: pure, no Django, no I/O.

The lexical matcher survives rewording without a model: text is folded (case, accents),
multi-word idioms and a small domain synonym map turn "xanax", "benzos" and
"benzodiazepines" into one concept, "cold turkey" and "all at once" into another, stop
words go, a light stemmer joins "stopping"/"stopped"/"stops", and each sentence window of
the message is scored against each claim (and its phrasings) by TF-IDF weighted cosine.
Negated safety words ("not safe", "isn't ok") become "danger", so a post that gives the
correction does not match the claim it corrects.

``Matcher`` is the interface: an embedding matcher (a sentence-embedding model shipped
inside a PyPI package, installed as an optional extra, loaded offline) can be plugged in
by implementing ``match``; ``build_matcher`` is where it would be chosen, with this lexical
method as the fallback. None is installed or fetched today.
"""

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Protocol

# Measured on tests/moderation/data/context_notes_labelled.json (see that test's output).
DEFAULT_THRESHOLD = 0.42


@dataclass(frozen=True)
class NoteClaim:
    """What the matcher needs of a note: its id, its claim and other ways people say it."""

    note_id: int | str
    claim: str
    phrasings: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoteMatch:
    note_id: int | str
    score: float


class Matcher(Protocol):
    """Anything that scores a text against the library: best match first, above threshold."""

    def match(self, text: str) -> list[NoteMatch]: ...


# --- normalising -----------------------------------------------------------------------------

# Multi-word idioms first, longest first (matched on folded, space-joined tokens).
PHRASES: dict[str, str] = {
    "cold turkey": "abrupt",
    "all at once": "abrupt",
    "all of a sudden": "abrupt",
    "straight away": "abrupt",
    "right away": "abrupt",
    "in one go": "abrupt",
    "overnight": "abrupt",
    "no taper": "abrupt",
    "without tapering": "abrupt",
    "without a taper": "abrupt",
    "without weaning": "abrupt",
    "on your own": "home",
    "on my own": "home",
    "by yourself": "home",
    "by myself": "home",
    "without a doctor": "home",
    "without medical": "home",
    "without supervision": "home",
    "no doctor": "home",
    "no point": "useless",
    "come off": "stop",
    "coming off": "stop",
    "came off": "stop",
    "get off": "stop",
    "getting off": "stop",
    "give up": "stop",
    "giving up": "stop",
    "gave up": "stop",
    "packed in": "stop",
    "pack in": "stop",
    "can kill": "danger",
    "can be fatal": "danger",
    "no big deal": "safe",
    "nothing to worry": "safe",
    "perfectly fine": "safe",
    "one for another": "swap",
    "same tolerance": "tolerance",
    "same amount": "dose",
    "same dose": "dose",
    "usual dose": "dose",
    "usual amount": "dose",
    "sober up": "sober",
    "sobers you up": "sober",
    "sober someone up": "sober",
    "cold shower": "shower",
    "black coffee": "coffee",
}

SYNONYMS: dict[str, str] = {
    # benzodiazepines
    "benzo": "benzodiazepine",
    "benzos": "benzodiazepine",
    "benzodiazepines": "benzodiazepine",
    "xanax": "benzodiazepine",
    "xannies": "benzodiazepine",
    "xans": "benzodiazepine",
    "bars": "benzodiazepine",
    "valium": "benzodiazepine",
    "klonopin": "benzodiazepine",
    "klonopins": "benzodiazepine",
    "ativan": "benzodiazepine",
    "diazepam": "benzodiazepine",
    "alprazolam": "benzodiazepine",
    "clonazepam": "benzodiazepine",
    "lorazepam": "benzodiazepine",
    # alcohol
    "drinking": "alcohol",
    "drink": "alcohol",
    "drinks": "alcohol",
    "drank": "alcohol",
    "booze": "alcohol",
    "boozing": "alcohol",
    "liquor": "alcohol",
    "vodka": "alcohol",
    "whiskey": "alcohol",
    "beer": "alcohol",
    "beers": "alcohol",
    "wine": "alcohol",
    "drunk": "alcohol",
    "alcoholic": "alcohol",
    # stopping (tapering is what the corrections advise, so it is not "stop")
    "quit": "stop",
    "quitting": "stop",
    "stopping": "stop",
    "stopped": "stop",
    "cease": "stop",
    "kick": "stop",
    "ditch": "stop",
    "drop": "stop",
    # abruptness
    "abruptly": "abrupt",
    "suddenly": "abrupt",
    "sudden": "abrupt",
    "instantly": "abrupt",
    "immediately": "abrupt",
    "straight": "abrupt",
    # at home
    "house": "home",
    "alone": "home",
    "myself": "home",
    "yourself": "home",
    # withdrawal and detox
    "detox": "withdrawal",
    "detoxing": "withdrawal",
    "detoxed": "withdrawal",
    "withdrawals": "withdrawal",
    "withdrawing": "withdrawal",
    "wd": "withdrawal",
    "wds": "withdrawal",
    # safety
    "fine": "safe",
    "ok": "safe",
    "okay": "safe",
    "harmless": "safe",
    "safely": "safe",
    "risk": "danger",
    "risky": "danger",
    "dangerous": "danger",
    "deadly": "danger",
    "unsafe": "danger",
    "fatal": "danger",
    "hurt": "danger",
    "harm": "danger",
    "harmful": "danger",
    "useless": "useless",
    "pointless": "useless",
    "seizure": "danger",
    "seizures": "danger",
    # opioids and overdose
    "naloxone": "narcan",
    "opioid": "opiate",
    "opioids": "opiate",
    "opiates": "opiate",
    "heroin": "opiate",
    "dope": "opiate",
    "fentanyl": "fent",
    "od": "overdose",
    "ods": "overdose",
    "overdosing": "overdose",
    "overdosed": "overdose",
    # medication for opioid use disorder
    "methadone": "mat",
    "suboxone": "mat",
    "subs": "mat",
    "sub": "mat",
    "buprenorphine": "mat",
    "subutex": "mat",
    "medication": "mat",
    "replacing": "swap",
    "replace": "swap",
    "swapping": "swap",
    "trading": "swap",
    "substitute": "swap",
    "crutch": "swap",
    "real": "genuine",
    "clean": "genuine",
    "sober": "sober",
    # tolerance and dose
    "amount": "dose",
    "hit": "dose",
    "tolerance": "tolerance",
    "break": "abstinence",
    "relapse": "relapse",
    "relapsing": "relapse",
    "mix": "combine",
    "mixing": "combine",
    "combining": "combine",
    "together": "combine",
    "espresso": "coffee",
    "caffeine": "coffee",
}

_STOP_TEXT = """
a about after again all also am an and any are as at be because been before being but by
can could did do does doing don done down during each even every for from get gets go
going got had has have having he her here him his how i if in into is it its just know
like me more most much my no nor of off on once only or other our out over own really
said say says so some such than that the their them then there these they thing things
this those through to too up us very was we were what when where which while who why
will with would you your yours s t ll ve re d m people person someone anyone everyone
lot lots always totally completely actually honestly literally pretty told tell tells
heard hear think thought believe feel guys friend friends mate mates ever need needs
should shouldn want wants way ways make makes making one please take takes taking took
taken
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
# A negation turns the next content word into its opposite, or into "not_<word>": "not
# safe" means danger, "won't hurt" means safe, so a correction does not match its claim.
NEGATORS = frozenset({"not", "never", "no"})
NEGATED = {
    "safe": "danger",
    "danger": "safe",
    "doctor": "home",
    "medical": "home",
    "work": "useless",
    "point": "useless",
}
_CONTRACTIONS = (
    ("can't", "can not"),
    ("won't", "will not"),
    ("cannot", "can not"),
    ("n't", " not"),
)

_TOKEN = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?;\n])\s+")
_PHRASE_KEYS = sorted(PHRASES, key=lambda p: -len(p.split()))


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()


def _stem(token: str) -> str:
    """Stemming-lite: enough to join the inflections a claim and a post use."""
    for suffix, keep in (("ing", 4), ("edly", 4), ("ed", 4), ("ies", 3), ("es", 4), ("s", 3)):
        if token.endswith(suffix) and len(token) - len(suffix) >= keep:
            token = token[: -len(suffix)]
            if suffix == "ies":
                token += "y"
            break
    return token


def tokens(text: str) -> list[str]:
    """The concepts and stems a text is matched by."""
    folded = fold(text).replace("\u2019", "'")  # a typographic apostrophe
    for contraction, expanded in _CONTRACTIONS:
        folded = folded.replace(contraction, expanded)
    words = _TOKEN.findall(folded)
    joined = " " + " ".join(words) + " "
    for phrase in _PHRASE_KEYS:
        if f" {phrase} " in joined:
            joined = joined.replace(f" {phrase} ", f" {PHRASES[phrase]} ")
    out: list[str] = []
    negated = False
    for word in joined.split():
        if word in NEGATORS:
            negated = True
            continue
        word = SYNONYMS.get(word, word)
        if word in STOP_WORDS or len(word) < 2:
            continue
        stem = _stem(word)
        stem = SYNONYMS.get(stem, stem)
        if negated:
            stem, negated = NEGATED.get(stem, f"not_{stem}"), False
        out.append(stem)
    return out


def windows(text: str) -> list[str]:
    """The text, its sentences and each pair of neighbouring sentences: a claim stated in
    one sentence of a long post is not diluted by the rest of it."""
    sentences = [s for s in _SENTENCE.split(text.strip()) if s.strip()]
    out = [text] if len(sentences) != 1 else []
    out += sentences
    out += [f"{a} {b}" for a, b in pairwise(sentences)]
    return out or [text]


# --- the lexical matcher ---------------------------------------------------------------------


@dataclass
class LexicalMatcher:
    """TF-IDF weighted cosine between each window of a text and each claim or phrasing."""

    claims: Sequence[NoteClaim]
    threshold: float = DEFAULT_THRESHOLD
    _vectors: list[tuple[int | str, dict[str, float]]] = field(init=False, default_factory=list)
    _idf: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        docs: list[tuple[int | str, list[str]]] = []
        for claim in self.claims:
            for text in (claim.claim, *claim.phrasings):
                if terms := tokens(text):
                    docs.append((claim.note_id, terms))
        # Document frequency counts notes, not phrasings: a word every phrasing of one
        # note shares is what makes that note distinctive.
        notes_with: dict[str, set] = {}
        for note_id, terms in docs:
            for term in terms:
                notes_with.setdefault(term, set()).add(note_id)
        n = len({note_id for note_id, _ in docs})
        self._idf = {t: math.log((n + 1) / (len(ids) + 0.5)) + 1.0 for t, ids in notes_with.items()}
        self._vectors = [(note_id, self._vector(terms)) for note_id, terms in docs]

    def _vector(self, terms: Iterable[str]) -> dict[str, float]:
        counts = Counter(terms)
        # Unknown words weigh like the rarest known one: they dilute, as they should.
        unknown = max(self._idf.values(), default=1.0)
        vec = {t: (1 + math.log(c)) * self._idf.get(t, unknown) for t, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {t: w / norm for t, w in vec.items()}

    def scores(self, text: str) -> dict[int | str, float]:
        """Each note's best score over the text's windows and the note's phrasings."""
        best: dict[int | str, float] = {}
        if not self._vectors:
            return best
        for window in windows(text):
            vec = self._vector(tokens(window))
            if not vec:
                continue
            for note_id, claim_vec in self._vectors:
                score = sum(w * claim_vec.get(t, 0.0) for t, w in vec.items())
                if score > best.get(note_id, 0.0):
                    best[note_id] = score
        return best

    def match(self, text: str) -> list[NoteMatch]:
        found = [
            NoteMatch(note_id, round(score, 4))
            for note_id, score in self.scores(text).items()
            if score >= self.threshold
        ]
        return sorted(found, key=lambda m: -m.score)


def build_matcher(claims: Iterable[NoteClaim], *, threshold: float | None = None) -> Matcher:
    """The matcher for a library. An optional embedding matcher would be chosen here when
    its package is installed; the lexical matcher is the fallback and, today, the method."""
    return LexicalMatcher(list(claims), DEFAULT_THRESHOLD if threshold is None else threshold)
