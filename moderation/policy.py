"""Pure moderation decisions: a submission in, a verdict out.

Nothing here touches the database or imports from ``forum``: the write path
gathers the facts (the author's recent texts, the watched phrases in force, ...)
and this module decides.

Watched phrases are compiled once (``compile_rules``). Whole-word and wildcard entries go
into a lexicon keyed by the "skeleton" of their first word (digits and symbols that may
stand for a letter folded to one letter: "h3r01n" -> "heroin"); a message is folded once
(NFKD, combining marks stripped, casefolded), cut into the words a reader would see, and
each word is looked up, so the cost per message follows the length of the message, not
the number of entries. The words read include simple obfuscation: letters spelt out with
a separator or two between them ("h e r o i n", "h.e.r.o.i.n") and digits or symbols for
letters ("h3r01n", "@$$"), where an ambiguous one is read every way ("1": i, l or 1). The
few candidates a lookup returns are checked letter by letter. Moderators' regular
expressions stay regular expressions, matched on the folded text; each one that must
contain some literal text ("\\bcasino\\d+" must contain "casino") runs only on messages
that contain it (a substring test in C), so a clean message costs a few such tests per
expression; the rest share one alternation per action.
"""

import re
import re._constants as sre
import re._parser as sre_parse
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import accumulate, compress
from operator import itemgetter


class Outcome(StrEnum):
    PUBLISH = "publish"
    REJECT = "reject"
    HOLD = "hold"  # store it, hidden until a moderator looks
    FLAG = "flag"  # publish it, and put it in the queue
    CENSOR = "censor"  # publish it with the matched words masked


class MatchKind(StrEnum):
    WORD = "word"  # a whole word or phrase
    WILDCARD = "wildcard"  # a whole word or phrase where * stands for any letters
    REGEX = "regex"  # a regular expression, matched anywhere in the folded text


class WatchAction(StrEnum):
    BLOCK = "block"
    HOLD = "hold"
    FLAG = "flag"
    CENSOR = "censor"


# Strongest first: when several entries match, the strongest action wins.
ACTION_ORDER = (WatchAction.BLOCK, WatchAction.HOLD, WatchAction.FLAG, WatchAction.CENSOR)
DEFAULT_BLOCK_MESSAGE = (
    "This can't be posted here: it contains a word or phrase this community does not allow."
)
MASK = "\u2217"  # an asterisk operator: looks like "*" but means nothing to Markdown
PATTERN_MAX = 200


@dataclass(frozen=True)
class WatchEntry:
    """One watched phrase as the write path hands it over (no model, no database)."""

    pattern: str
    match: str  # a MatchKind value
    action: str  # a WatchAction value
    message: str = ""  # shown to the author when the entry blocks
    label: str = ""  # names the entry to moderators (never to the author)


@dataclass(frozen=True)
class Submission:
    kind: str  # "thread", "reply", "edit", "bio", "group", "chat"
    text: str
    recent_texts: tuple[str, ...] = field(default=())
    title: str = ""  # a thread's title, screened like the text


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""
    field: str = ""
    # With censoring: the text and title to store instead (None: unchanged).
    text: str | None = None
    title: str | None = None
    # The watched entry behind the outcome, for moderators only.
    rule: str = ""

    @property
    def rejected(self) -> bool:
        return self.outcome == Outcome.REJECT

    @property
    def held(self) -> bool:
        return self.outcome == Outcome.HOLD

    @property
    def needs_review(self) -> bool:
        """Held or flagged: a queue item should be opened."""
        return self.outcome in {Outcome.HOLD, Outcome.FLAG}


PUBLISH = Verdict(Outcome.PUBLISH)


# --- folding ---------------------------------------------------------------------------------


def fold(text: str) -> tuple[str, list[int] | None]:
    """Text as it is matched: NFKD, no combining marks, casefolded. Returns the folded
    text and, for each of its characters, the index of the original character it came
    from (None when they are the same, as for plain ASCII)."""
    if text.isascii():
        return text.lower(), None
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        for part in unicodedata.normalize("NFKD", ch):
            if unicodedata.combining(part):
                continue
            for folded in part.casefold():
                out.append(folded)
                index.append(i)
    return "".join(out), index


def _strip_marks(text: str) -> str:
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )


# --- compiling ---------------------------------------------------------------------------------

# What may stand for a letter (digit-for-letter swaps and look-alike symbols).
_SWAPS = {"a": "4@", "e": "3", "i": "1!|", "l": "1|", "o": "0", "s": "5$", "t": "7"}
_SYMBOLS = "@$!|"  # letters in disguise, or plain punctuation: both readings are tried
# One letter per class of characters that may stand for each other. Patterns and texts are
# looked up by this skeleton (a dict lookup, whatever the number of entries) and the few
# candidates are then checked exactly with _SWAPS: "1" may be "i" or "l", but an "l" in
# the text is never an "i" of the pattern.
_SKELETON = str.maketrans(
    {"4": "a", "@": "a", "3": "e", "1": "i", "!": "i", "|": "i", "l": "i", "0": "o"}
    | {"5": "s", "$": "s", "7": "t"}
)
_UNIT = re.compile(r"([^\W_]+|[@$!|])")  # a run of letters and digits, or one symbol
_UNIT_ASCII = re.compile(r"([a-z0-9]+|[@$!|])")  # the same for folded ASCII, a little faster
_JOIN_GAP = 2  # at most this much spacing or punctuation between letters spelt out singly
_WILD_SLACK = 8  # letters a wildcard may stand for in a word spelt out singly
_SEP_TOKEN, _WILD_TOKEN, _WORD_TOKEN = " ", "*", "+"
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
# The one character of folded text that re's IGNORECASE matches to an ASCII letter ("i");
# the others that would (long s, the Kelvin sign, capital I with a dot) fold to ASCII.
_DOTLESS_I = "\u0131"


def _needles(parsed: sre_parse.SubPattern | list) -> frozenset[str] | None:
    """Lower-cased ASCII strings one of which every match of ``parsed`` contains (so a text
    with none of them cannot match), or None when no such string is known. Prefers the
    set whose shortest string is longest."""
    best: frozenset[str] | None = None
    run = ""

    def keep(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and (best is None or min(map(len, found)) > min(map(len, best))):
            best = found

    for op, arg in parsed:
        if op is sre.LITERAL and arg < 128:
            run += chr(arg).lower()
            continue
        if op is sre.AT:  # \b, ^, $: zero-width, the literal run goes on
            continue
        keep(frozenset({run}) if run else None)
        run = ""
        if op is sre.SUBPATTERN:
            keep(_needles(arg[-1]))
        elif op in _REPEATS and arg[0] >= 1:
            keep(_needles(arg[2]))
        elif op is sre.BRANCH:
            branches = [_needles(branch) for branch in arg[1]]
            if all(branches):
                keep(frozenset().union(*branches))
    keep(frozenset({run}) if run else None)
    return best


def _regex_needles(source: str) -> frozenset[str] | None:
    try:
        return _needles(sre_parse.parse(source, re.IGNORECASE))
    except (re.error, RecursionError, OverflowError):
        return None


def _letter(ch: str) -> str:
    swaps = _SWAPS.get(ch)
    if swaps is None:
        return re.escape(ch)
    return "[" + re.escape(ch + swaps) + "]"


def _tokens(pattern: str, match: str) -> tuple[str, ...]:
    """A word or wildcard pattern as tokens: letters, " " (a separator), "*" (any letters)."""
    folded, _ = fold(pattern.strip())
    tokens: list[str] = []
    for ch in folded:
        if ch == "*" and match == MatchKind.WILDCARD:
            if not tokens or tokens[-1] != _WILD_TOKEN:
                tokens.append(_WILD_TOKEN)
        elif ch.isalnum():
            tokens.append(ch)
        elif tokens and tokens[-1] != _SEP_TOKEN:
            tokens.append(_SEP_TOKEN)
    while tokens and tokens[-1] == _SEP_TOKEN:
        tokens.pop()
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        if (
            token == _WILD_TOKEN
            and (i == 0 or tokens[i - 1] == _SEP_TOKEN)
            and (i == last or tokens[i + 1] == _SEP_TOKEN)
        ):
            tokens[i] = _WORD_TOKEN  # "buy * online": at least one letter in between
    return tuple(tokens)


def validate_pattern(pattern: str, match: str) -> str | None:
    """Why a pattern cannot be watched, or None when it can."""
    pattern = pattern.strip()
    if not pattern:
        return "Write the word, phrase or expression to watch for."
    if len(pattern) > PATTERN_MAX:
        return f"A pattern is at most {PATTERN_MAX} characters."
    if match == MatchKind.REGEX:
        try:
            compiled = re.compile(_strip_marks(pattern), re.IGNORECASE)
        except re.error as error:
            return f"This is not a valid regular expression: {error}."
        if compiled.search("") is not None:
            return "This expression matches empty text, so it would match every message."
        return None
    if match not in (MatchKind.WORD, MatchKind.WILDCARD):
        return "Choose how the pattern is matched."
    tokens = _tokens(pattern, match)
    if not any(token.isalnum() for token in tokens):
        return "The pattern needs at least one letter or digit."
    return None


def _same_letters(text: str, word: str) -> bool:
    """Whether ``text`` spells ``word``, allowing the swaps (the skeletons already agree)."""
    if len(text) != len(word):
        return False
    for seen, wanted in zip(text, word, strict=True):
        if seen != wanted and seen not in _SWAPS.get(wanted, ""):
            return False
    return True


@dataclass(frozen=True)
class _Word:
    """One word of a watched phrase: letters, letters with wildcards, or any word at all."""

    letters: str = ""  # a plain word (folded)
    glob: re.Pattern | None = None  # a word with wildcards, matched whole
    anything: bool = False  # "*" standing alone: any word with a letter or digit

    def matches(self, text: str) -> bool:
        if self.glob is not None:
            return self.glob.fullmatch(text) is not None
        if self.anything:
            return any(ch.isalnum() for ch in text)
        return _same_letters(text, self.letters)


@dataclass(frozen=True)
class _Phrase:
    words: tuple[_Word, ...]
    index: int  # into CompiledRules.entries
    action: str


def _words(tokens: tuple[str, ...]) -> list[str]:
    return "".join(tokens).split(_SEP_TOKEN)


def _word(word: str) -> _Word:
    if word == _WORD_TOKEN:
        return _Word(anything=True)
    if _WILD_TOKEN in word:
        source = "".join(".*" if ch == _WILD_TOKEN else _letter(ch) for ch in word)
        return _Word(glob=re.compile(source, re.DOTALL))
    return _Word(letters=word)


# Wildcard stems ("meth" of "meth*") are screened by at most this many of their letters.
_STEM_CUT = 4


class _Lexicon:
    """Whole-word and wildcard entries, indexed by the skeleton of their first word: a plain
    first word by itself, a wildcard one by its letters before the first "*" or else after
    the last one (one dict per length of those letters). Finding the candidates for a word
    is a dict lookup per index, however many entries there are."""

    def __init__(self) -> None:
        self.exact: dict[str, list[_Phrase]] = {}
        self.prefixes: dict[int, dict[str, list[_Phrase]]] = {}  # length -> letters -> ...
        self.suffixes: dict[int, dict[str, list[_Phrase]]] = {}
        self.loose: list[_Phrase] = []  # first word "*" or "*x*": tried at every word
        self.run_cap = 1

    def add(self, tokens: tuple[str, ...], index: int, action: str) -> None:
        words = _words(tokens)
        phrase = _Phrase(tuple(_word(w) for w in words), index, action)
        # Words are read out of letters spelt out singly (or glued by symbols) up to the
        # length of the longest word to look for, with some slack for a wildcard's letters.
        for word in words:
            stars = word.count(_WILD_TOKEN) + word.count(_WORD_TOKEN)
            self.run_cap = max(self.run_cap, len(word) - stars + (_WILD_SLACK if stars else 0))
        first = words[0]
        if _WILD_TOKEN not in first and first != _WORD_TOKEN:
            self.exact.setdefault(first.translate(_SKELETON), []).append(phrase)
            return
        head, _, rest = first.partition(_WILD_TOKEN)
        tail = rest.rpartition(_WILD_TOKEN)[2]
        if head and head != _WORD_TOKEN:
            by_length = self.prefixes.setdefault(len(head), {})
            by_length.setdefault(head.translate(_SKELETON), []).append(phrase)
        elif tail:
            by_length = self.suffixes.setdefault(len(tail), {})
            by_length.setdefault(tail.translate(_SKELETON), []).append(phrase)
        else:
            self.loose.append(phrase)

    def candidates(self, skeleton: str) -> list[_Phrase]:
        """Phrases whose first word may be read as ``skeleton``."""
        found = list(self.exact.get(skeleton, ()))
        for length, index in self.prefixes.items():
            found += index.get(skeleton[:length], ())
        for length, index in self.suffixes.items():
            if length <= len(skeleton):
                found += index.get(skeleton[-length:], ())
        return found + self.loose

    def freeze(self) -> None:
        """Key sets for ``worth_a_look``, built once (a set operation with a dict's keys
        copies the dict, which would cost the size of the list per message). Wildcard stems
        are screened by at most their first (or last) _STEM_CUT letters, so a message costs
        at most that many cuts each way, however many stems of however many lengths."""
        self.exact_keys = frozenset(self.exact)
        self.cuts: list[tuple[itemgetter, frozenset[str]]] = []
        self.screens: list[tuple[int, bool, frozenset[str]]] = []  # (letters, from the end, keys)
        for stems, from_end in ((self.prefixes, False), (self.suffixes, True)):
            screens: dict[int, set[str]] = {}
            for length, index in stems.items():
                n = min(length, _STEM_CUT)
                screens.setdefault(n, set()).update(s[-n:] if from_end else s[:n] for s in index)
            for n, keys in screens.items():
                cut = slice(-n, None) if from_end else slice(None, n)
                self.cuts.append((itemgetter(cut), frozenset(keys)))
                self.screens.append((n, from_end, frozenset(keys)))
        self.exact_lengths = sorted({len(key) for key in self.exact})

    def may_start(self, skeleton: str) -> bool:
        """Whether some entry may start with this word: the screen of ``worth_a_look`` for
        one word (the words read from letters spelt out singly)."""
        if self.loose or skeleton in self.exact_keys:
            return True
        return any(cut(skeleton) in keys for cut, keys in self.cuts)

    def worth_a_look(self, skels: list[str]) -> set[int] | None:
        """The units whose word may start an entry, or None for every unit (an entry starts
        with a lone "*"). Set operations in C: the cost follows the length of the message and
        the number of different lengths of wildcard stems, not the number of entries."""
        if self.loose:
            return None
        found = set(skels) & self.exact_keys
        todo = {k for k, skel in enumerate(skels) if skel in found} if found else set()
        for cut, keys in self.cuts:
            pieces = list(map(cut, skels))
            found = keys.intersection(pieces)
            if found:
                todo.update(k for k, piece in enumerate(pieces) if piece in found)
        return todo

    def screen_run(self, skeleton: str) -> set[tuple[int, int]]:
        """(offset, length) of the stretches of a run of letters spelt out singly that may
        be a word starting an entry: a slice and a set lookup per letter and length of key,
        never a scan of the entries."""
        size = len(skeleton)
        cap = min(self.run_cap, size)
        if self.loose:
            return {(i, n) for i in range(size) for n in range(1, min(cap, size - i) + 1)}
        found: set[tuple[int, int]] = set()
        exact = self.exact_keys
        for n in self.exact_lengths:
            if n > cap:
                break
            found.update((i, n) for i in range(size - n + 1) if skeleton[i : i + n] in exact)
        for n, from_end, keys in self.screens:
            for i in range(size - n + 1):
                if skeleton[i : i + n] not in keys:
                    continue
                if from_end:  # stretches ending with these letters
                    found.update((i + n - m, m) for m in range(n, min(cap, i + n) + 1))
                else:
                    found.update((i, m) for m in range(n, min(cap, size - i) + 1))
        return found


class _Text:
    """A text folded once and cut into the words a reader would see, for every action.

    The text is cut into units (runs of letters and digits, and single symbols that may
    stand for letters) with their offsets in the folded text. A word is read as:
    touching units ("a$$", "h3r0!n", "ass" out of "ass!"), or letters spelt out one at a
    time with a little spacing or punctuation between them ("h e r o i n", "h.3.r.0.i.n"),
    reading any symbols among them as letters or as punctuation. A word never starts or
    ends next to a letter or digit it does not include: whole words stay whole.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.folded, self.index = fold(text)
        self._hits: list[tuple[int, int, int, str]] | None = None
        self._needles: frozenset[str] | None = None

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if self.index is None:
            return start, end
        return self.index[start], self.index[end - 1] + 1

    def hits(self, lexicon: "_Lexicon | None") -> list[tuple[int, int, int, str]]:
        """(start, end, entry index, action) of every word or wildcard entry found."""
        if self._hits is None:
            self._hits = [] if lexicon is None else self._scan(lexicon)
        return self._hits

    def needles(self, needles: tuple[str, ...]) -> frozenset[str]:
        """Which of the expressions' ``needles`` occur in the text (one pass for every action)."""
        if self._needles is None:
            folded = self.folded
            if _DOTLESS_I in folded:
                folded = folded.replace(_DOTLESS_I, "i")
            self._needles = frozenset([needle for needle in needles if needle in folded])
        return self._needles

    def _scan(self, lexicon: _Lexicon) -> list[tuple[int, int, int, str]]:
        words = _Words(self.folded, lexicon.run_cap)
        texts, skels, seps = words.texts, words.skels, words.seps
        hits: set[tuple[int, int, int, str]] = set()

        def check(segment: _Segment) -> None:
            text, skel, start, end, after = segment
            for phrase in lexicon.candidates(skel):
                if phrase.words[0].matches(text):
                    last = words.rest(phrase.words, 1, after, end)
                    if last is not None:
                        hits.add((start, last, phrase.index, phrase.action))

        # Words between spaces or punctuation, by far the most: screened in bulk first.
        last_unit = len(texts) - 1
        todo = lexicon.worth_a_look(skels)
        for k in range(len(texts)) if todo is None else sorted(todo):
            if (seps[k] or k == 0) and (seps[k + 1] or k == last_unit):
                check((texts[k], skels[k], words.starts[k], words.ends[k], k + 1))
        # Words glued to symbols ("a$$", "h3r0!n", "ass!").
        if words.has_symbols:
            # Where every unit is a single character, the runs below read the same words.
            reach, starts = None, words.starts
            for k in range(last_unit, -1, -1):
                if len(texts[k]) > 1:
                    reach = k  # the nearest unit of several characters, glued on
                elif seps[k + 1] or k == last_unit:
                    reach = None
                glued = (not seps[k] and k > 0) or (not seps[k + 1] and k < last_unit)
                if glued and reach is not None and starts[reach] - starts[k] <= lexicon.run_cap:
                    for segment in words.touching(k):
                        if lexicon.may_start(segment[1]):
                            check(segment)
        # Letters spelt out singly, every stretch of them that may be a word.
        starts, ends = words.starts, words.ends
        for units, letters, skeleton in words.runs():
            for i, n in lexicon.screen_run(skeleton):
                first, last = units[i], units[i + n - 1]
                if words.open_before(first) and words.open_after(last):
                    check((letters[i : i + n], skeleton[i : i + n], starts[first], ends[last],
                           last + 1))  # fmt: skip
        return sorted(hits)


# A word as read in the text: (folded letters, skeleton, start, end, index of the next unit).
_Segment = tuple[str, str, int, int, int]


class _Words:
    """A folded text cut into units, and the words that may be read from them."""

    def __init__(self, folded: str, run_cap: int) -> None:
        # Separators and units alternate: seps[k] comes before unit k, seps[k + 1] after it.
        pieces = (_UNIT_ASCII if folded.isascii() else _UNIT).split(folded)
        self.pieces = pieces
        self.folded = folded
        self.run_cap = run_cap
        self.texts: list[str] = pieces[1::2]
        self.seps: list[str] = pieces[0::2]
        # NUL is spacing, never inside a unit, so it can carry the units through translate.
        self.skels = "\0".join(self.texts).translate(_SKELETON).split("\0")
        self.has_symbols = any(symbol in folded for symbol in _SYMBOLS)
        self._segments: dict[int, list[_Segment]] = {}
        self._rest: dict[tuple[int, int, int, int], int | None] = {}

    def __getattr__(self, name: str) -> list:
        # Offsets and kinds of units are worked out only for the few texts that need them
        # (a word to check, letters spelt out); most messages never get this far.
        if name in ("starts", "ends"):
            offsets = list(accumulate(map(len, self.pieces)))
            self.starts, self.ends = offsets[0:-1:2], offsets[1::2]
            return getattr(self, name)
        if name == "alnum":
            self.alnum = [text[0] not in _SYMBOLS for text in self.texts]
            return self.alnum
        raise AttributeError(name)

    def open_before(self, k: int) -> bool:  # no letter or digit glued to the left
        return k == 0 or self.seps[k] != "" or not self.alnum[k - 1]

    def open_after(self, k: int) -> bool:  # no letter or digit glued to the right
        return k + 1 == len(self.texts) or self.seps[k + 1] != "" or not self.alnum[k + 1]

    def runs(self) -> list[tuple[list[int], str, str]]:
        """Runs of letters spelt out singly, as (units, letters, skeleton): single units a
        little spacing or punctuation apart, symbols among them read as letters, and (when
        there are symbols) again with the symbols read as punctuation."""
        texts, seps = self.texts, self.seps
        lengths = map(len, texts)
        singles = compress(range(len(texts)), map((1).__eq__, lengths))  # in C: few survive
        groups: list[list[int]] = []
        for k in singles:
            if groups and groups[-1][-1] == k - 1 and len(seps[k]) <= _JOIN_GAP:
                groups[-1].append(k)
            else:
                groups.append([k])
        runs = [units for units in groups if len(units) > 1]
        if self.has_symbols:
            for units in runs[:]:
                for dropped in self._readings(units):
                    runs += self._without(units, dropped)
        skels = self.skels
        return [
            (units, "".join(texts[k] for k in units), "".join(skels[k] for k in units))
            for units in runs
        ]

    def _readings(self, units: list[int]) -> list[str]:
        """The symbols to read as punctuation, besides reading them all as letters: all of
        them, and each kind on its own ("k!i!|!l": the "!" apart, the "|" an l)."""
        kinds = {self.texts[k] for k in units if not self.alnum[k]}
        return [_SYMBOLS, *kinds] if len(kinds) > 1 else [_SYMBOLS] if kinds else []

    def _without(self, units: list[int], dropped: str) -> list[list[int]]:
        """``units`` with the symbols in ``dropped`` read as punctuation, cut where the
        letters left are too far apart."""
        texts, starts, ends = self.texts, self.starts, self.ends
        parts: list[list[int]] = []
        for k in units:
            if texts[k] in dropped:
                continue
            if parts and starts[k] - ends[parts[-1][-1]] <= _JOIN_GAP:
                parts[-1].append(k)
            else:
                parts.append([k])
        return [part for part in parts if 1 < len(part) < len(units)]

    def _letters_follow(self, k: int) -> bool:
        """Whether letters or digits come glued one or two units after unit ``k``."""
        texts, seps, alnum = self.texts, self.seps, self.alnum
        for j in (k + 1, k + 2):
            if j == len(texts) or seps[j]:
                return False
            if alnum[j]:
                return True
        return False

    def segments(self, k: int) -> list[_Segment]:
        """The words that may be read starting at unit ``k``."""
        found = self._segments.get(k)
        if found is None:
            found = self._segments[k] = self._read(k)
        return found

    def touching(self, k: int) -> list[_Segment]:
        """Words of touching units starting at unit ``k``: "a$$", "h3r0!n", "ass" in "ass!"."""
        texts, skels, seps, ends = self.texts, self.skels, self.seps, self.ends
        count, start, alnum = len(texts), self.starts[k], self.alnum
        found: list[_Segment] = []
        if seps[k] == "" and k > 0 and alnum[k - 1]:
            return found  # inside a word, never the start of one
        # Touching units: a word, perhaps with symbols for letters. A symbol starts one only
        # at the start of its cluster or just before letters (so "!!!!..." costs little).
        if alnum[k] or seps[k] or k == 0 or self._letters_follow(k):
            letters, skeleton, m = texts[k], skels[k], k
            limit = max(self.run_cap, len(letters))
            while True:
                if m + 1 == count or seps[m + 1] or not alnum[m + 1]:  # nothing glued after
                    found.append((letters, skeleton, start, ends[m], m + 1))
                if m + 1 == count or seps[m + 1] or len(letters) + len(texts[m + 1]) > limit:
                    break
                m += 1
                letters, skeleton = letters + texts[m], skeleton + skels[m]
        return found

    def _read(self, k: int) -> list[_Segment]:
        """Every word that may be read starting at unit ``k`` (for the rest of a phrase)."""
        found = self.touching(k)
        if len(self.texts[k]) > 1 or not self.open_before(k):
            return found
        found = list(found)
        texts, skels, seps, ends = self.texts, self.skels, self.seps, self.ends
        count, start, alnum = len(texts), self.starts[k], self.alnum
        # Letters spelt out singly, symbols read as letters ...
        letters, skeleton, spaced, m = texts[k], skels[k], False, k
        while m + 1 < count and len(letters) < self.run_cap:
            gap = len(seps[m + 1])
            if len(texts[m + 1]) > 1 or gap > _JOIN_GAP:
                break
            spaced = spaced or gap > 0
            m += 1
            letters, skeleton = letters + texts[m], skeleton + skels[m]
            if spaced and (m + 1 == count or seps[m + 1] or not alnum[m + 1]):
                found.append((letters, skeleton, start, ends[m], m + 1))
        # ... and as punctuation ("h!e!r!o!i!n"), all of them or one kind of them.
        if not alnum[k] or not self.has_symbols:
            return found
        for dropped in self._readings(list(range(k, m + 1))):
            letters, skeleton, skipped, m, j = texts[k], skels[k], False, k, k + 1
            while j < count and len(letters) < self.run_cap:
                if texts[j] in dropped:
                    skipped, j = True, j + 1
                    continue
                if len(texts[j]) > 1 or self.starts[j] - ends[m] > _JOIN_GAP:
                    break
                m, j = j, j + 1
                letters, skeleton = letters + texts[m], skeleton + skels[m]
                if skipped and (m + 1 == count or seps[m + 1] or not alnum[m + 1]):
                    found.append((letters, skeleton, start, ends[m], m + 1))
        return found

    def rest(self, words: tuple[_Word, ...], i: int, k: int, end: int) -> int | None:
        """Where the phrase ends when its words from ``i`` on follow in the text from unit
        ``k`` on (symbols between words are punctuation), or None."""
        if i == len(words):
            return end
        # Remembered, so that "* * * x" over letters spelt out costs polynomial time.
        key = (id(words), i, k, end)
        if key in self._rest:
            return self._rest[key]
        found = None
        while found is None and k < len(self.texts):
            for text, _skel, start, stop, after in self.segments(k):
                if start > end and words[i].matches(text):
                    found = self.rest(words, i + 1, after, stop)
                    if found is not None:
                        break
            if self.alnum[k]:
                break
            k += 1
        self._rest[key] = found
        return found


@dataclass(frozen=True)
class _ActionMatcher:
    """One action's share of the entries: its regular expressions (word and wildcard
    entries live in the shared lexicon, searched once per text for all actions)."""

    words: bool  # whether any word or wildcard entry has this action
    combined: re.Pattern | None
    solos: tuple[tuple[re.Pattern, int], ...]  # expressions that cannot share a regex
    # Expressions that must contain one of their needles: run only where one is present.
    screened: tuple[tuple[re.Pattern, int, frozenset[str]], ...] = ()

    def _patterns(self, present: frozenset[str]) -> list[tuple[re.Pattern, int]]:
        """The expressions to run on a text containing the needles ``present``."""
        if not present:
            return list(self.solos)
        screened = self.screened
        return [*self.solos, *((p, i) for p, i, needles in screened if needles & present)]

    def first(self, folded: str, present: frozenset[str]) -> tuple[int, int, int] | None:
        """(start, end, entry index) of the earliest expression match, or None."""
        best = None
        if self.combined is not None:
            found = self.combined.search(folded)
            if found is not None:
                best = (found.start(), found.end(), int(found.lastgroup[1:]))
        for pattern, index in self._patterns(present):
            found = pattern.search(folded)
            if found is not None and (best is None or found.start() < best[0]):
                best = (found.start(), found.end(), index)
        return best

    def spans(self, folded: str, present: frozenset[str]) -> list[tuple[int, int]]:
        spans = []
        if self.combined is not None:
            spans += [m.span() for m in self.combined.finditer(folded) if m.end() > m.start()]
        for pattern, _index in self._patterns(present):
            spans += [m.span() for m in pattern.finditer(folded) if m.end() > m.start()]
        return spans


@dataclass(frozen=True)
class CompiledRules:
    """Watched entries compiled for matching; build with ``compile_rules``."""

    entries: tuple[WatchEntry, ...] = ()
    matchers: dict[str, _ActionMatcher] = field(default_factory=dict)
    skipped: tuple[WatchEntry, ...] = ()  # invalid entries, ignored
    lexicon: _Lexicon | None = None
    needles: tuple[str, ...] = ()  # every screened expression's needles, for _Text.needles

    def __bool__(self) -> bool:
        return bool(self.matchers)

    def find(self, action: str, text: "str | _Text") -> WatchEntry | None:
        """The entry of this action that matches ``text`` first, if any."""
        matcher = self.matchers.get(action)
        if matcher is None or not text:
            return None
        seen = text if isinstance(text, _Text) else _Text(text)
        best = None
        if matcher.words:
            best = next(((s, i) for s, _e, i, a in seen.hits(self.lexicon) if a == action), None)
        found = matcher.first(seen.folded, seen.needles(self.needles))
        if found is not None and (best is None or found[0] < best[0]):
            best = (found[0], found[2])
        return None if best is None else self.entries[best[1]]

    def censor(self, text: "str | _Text") -> str:
        """``text`` with every span a censoring entry matches masked."""
        matcher = self.matchers.get(WatchAction.CENSOR)
        if matcher is None or not text:
            return text if isinstance(text, str) else text.text
        seen = text if isinstance(text, _Text) else _Text(text)
        spans = matcher.spans(seen.folded, seen.needles(self.needles))
        if matcher.words:
            spans += [(s, e) for s, e, _i, a in seen.hits(self.lexicon) if a == WatchAction.CENSOR]
        if not spans:
            return seen.text
        chars = list(seen.text)
        for start, end in spans:
            start, end = seen.original_span(start, end)
            for i in range(start, end):
                if not chars[i].isspace():
                    chars[i] = MASK
        return "".join(chars)


NO_RULES = CompiledRules()
_ACTIONS = frozenset(action.value for action in WatchAction)


def compile_rules(entries: Iterable[WatchEntry]) -> CompiledRules:
    """Compile watched entries: word and wildcard entries into one lexicon looked up word by
    word, regular expressions into one alternation per action. Invalid entries are skipped
    (and listed in ``skipped``) rather than breaking the write path."""
    kept: list[WatchEntry] = []
    skipped: list[WatchEntry] = []
    lexicon = _Lexicon()
    with_words: set[str] = set()
    expressions: dict[str, list[tuple[str, int]]] = {}
    seen_phrases: set[tuple[str, tuple[str, ...]]] = set()
    for entry in entries:
        if entry.action not in _ACTIONS or validate_pattern(entry.pattern, entry.match):
            skipped.append(entry)
            continue
        index = len(kept)
        kept.append(entry)
        if entry.match == MatchKind.REGEX:
            expressions.setdefault(entry.action, []).append((_strip_marks(entry.pattern), index))
            continue
        tokens = _tokens(entry.pattern, entry.match)
        if (entry.action, tokens) in seen_phrases:  # the same phrase twice: the first speaks
            continue
        seen_phrases.add((entry.action, tokens))
        lexicon.add(tokens, index, entry.action)
        with_words.add(entry.action)
    matchers = {}
    for action in ACTION_ORDER:
        parts, solos, screened, shared = [], [], [], []
        for source, index in expressions.get(action, []):
            needles = _regex_needles(source)
            if needles is not None:
                screened.append((re.compile(source, re.IGNORECASE), index, needles))
            elif _BACKREF.search(source):  # group numbers would shift inside a combined regex
                solos.append((re.compile(source, re.IGNORECASE), index))
            else:
                parts.append(f"(?:{source})(?P<e{index}>)")
                shared.append((source, index))
        combined = None
        if parts:
            try:
                combined = re.compile("|".join(parts), re.IGNORECASE)
            except re.error:  # e.g. two expressions naming the same group: keep them apart
                solos += [(re.compile(source, re.IGNORECASE), index) for source, index in shared]
        if action in with_words or combined is not None or solos or screened:
            matchers[action] = _ActionMatcher(
                action in with_words, combined, tuple(solos), tuple(screened)
            )
    lexicon.freeze()
    needles = {n for m in matchers.values() for _p, _i, found in m.screened for n in found}
    return CompiledRules(
        tuple(kept),
        matchers,
        skipped=tuple(skipped),
        lexicon=lexicon if with_words else None,
        needles=tuple(sorted(needles)),
    )


# --- deciding ----------------------------------------------------------------------------------


def _fingerprint(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split())


def _is_duplicate(submission: Submission) -> bool:
    if not submission.recent_texts or submission.kind not in {"thread", "reply"}:
        return False
    mine = _fingerprint(submission.text)
    return any(_fingerprint(text) == mine for text in submission.recent_texts)


_OUTCOMES = {
    WatchAction.HOLD: Outcome.HOLD,
    WatchAction.FLAG: Outcome.FLAG,
    WatchAction.CENSOR: Outcome.CENSOR,
}


def evaluate(submission: Submission, rules: CompiledRules = NO_RULES) -> Verdict:
    """Decide what happens to a submission that has already passed validation.

    Block beats hold beats flag beats censor. Censoring also applies when a stronger
    action (hold, flag) wins, so masked words are never stored.
    """
    texts = [(name, text) for name, text in (("title", submission.title), ("body", submission.text))
             if text]  # fmt: skip
    # Each text is folded and cut into words once, whatever the number of entries and actions.
    seen = [(name, _Text(text)) for name, text in texts] if rules else []
    for name, text in seen:
        entry = rules.find(WatchAction.BLOCK, text)
        if entry is not None:
            return Verdict(
                Outcome.REJECT,
                reason=entry.message or DEFAULT_BLOCK_MESSAGE,
                field=name,
                rule=entry.label,
            )
    if _is_duplicate(submission):
        return Verdict(
            Outcome.REJECT,
            reason="You posted this same text a moment ago. It is already there.",
            field="body",
        )
    if not rules or not texts:
        return PUBLISH
    for action in (WatchAction.HOLD, WatchAction.FLAG, WatchAction.CENSOR):
        entry = next(
            (found for _, text in seen if (found := rules.find(action, text)) is not None), None
        )
        if entry is None:
            continue
        prepared = dict(seen)
        body = rules.censor(prepared.get("body", submission.text))
        title = rules.censor(prepared.get("title", submission.title))
        return Verdict(
            _OUTCOMES[action],
            text=body if body != submission.text else None,
            title=title if title != submission.title else None,
            rule=entry.label,
        )
    return PUBLISH
