"""Words that suggest someone may be at risk of suicide, self-harm or overdose.

Pure: text in, the categories it touches out. Nothing here reads the database or
imports from ``forum``. The write path (forum.publishing) asks after content is
saved; a match NEVER blocks, holds or hides anything. It only shows the author
crisis resources and gives moderators an urgent queue item, so a kind person looks.

How matching works: the text is folded (accents and case removed, apostrophes
dropped so "can't", "cant" and "can\u2019t" (curly) read alike, every run of punctuation and
spacing turned into one space, a few spoken forms such as "wanna" and "cannot"
spelled out), spans on the ``_NOT_CRISIS`` list are blanked, then each category's
phrases are matched on whole words.

Maintaining the lists:

- Write each entry as it reads after folding: lower case, no apostrophes ("cant",
  "dont", "im", "ive"), words separated by one space. "cannot", "can not", "do not",
  "wanna", "gonna", "i am" and "i have" are folded to "cant", "dont", "want to",
  "going to", "im" and "ive" before matching, so write only the folded form.
- An entry is a regular expression over that folded text: use ``(a|b)`` for
  alternatives and ``( word)?`` for an optional word. Nothing else is needed; a test
  refuses any other syntax.
- Prefer phrases about the writer ("kill myself", "i overdosed") over bare topic words:
  a recovery forum talks about overdose and suicide prevention all the time, and an
  urgent queue that cries wolf stops being read. When a phrase has a common harmless
  use ("cut myself off from everyone", "burn myself out"), add that use to
  ``_NOT_CRISIS`` rather than dropping the phrase.
- Err toward a human glance: a false alarm costs a moderator a minute; a missed one
  may cost much more. Every change comes with a true and a false positive in
  tests/moderation/test_crisis.py.
"""

import re
import unicodedata

SUICIDE = "suicide"
SELF_HARM = "self-harm"
OVERDOSE = "overdose"
CATEGORIES = (SUICIDE, SELF_HARM, OVERDOSE)

_INTENT = (
    "(want|wanted|wanting|going|plan|planning|trying|tried|ready|about|decided|urge|urges|tempted)"
)

_DRUGS = (
    "(pills|tablets|meds|medication|medications|sleeping pills|painkillers|benzos|xanax|oxy|oxys"
    "|opioids|prescription)"
)

PHRASES: dict[str, tuple[str, ...]] = {
    SUICIDE: (
        # Saying it directly.
        "kill(ing)? myself",
        # Not "going to die": that is how panic in withdrawal sounds, not intent.
        "(want|wanted|wanting|ready|deserve|trying|plan|planning) to die",
        "(going|want|wanted|plan|planning|ready|decided) to end "
        "(it|it all|things|everything|my life)",
        "end(ing)? it all",
        "end(ing)? my (own )?life",
        "(take|taking) my (own )?life",
        "end it (tonight|today|now|soon)",
        "suicidal",
        "(commit|committing) suicide",
        "suicide (note|plan|letter)",
        "(think|thinking|thought|thoughts) (about|of) "
        "(suicide|killing myself|ending it|ending my life|dying)",
        "(hang|hanging|shoot|shooting|drown|drowning|poison|poisoning|gas|gassing) myself",
        "(jump|jumping) (off|from) (a|the|this) (bridge|building|roof|cliff|balcony)",
        "(step|stepping|jump|jumping|walk|walking) in front of (a|the) (train|bus|car|truck|lorry)",
        # Wishing not to be alive.
        "wish(ed)? i (was|were) dead",
        "wish(ed)? i (wasnt|werent|hadnt been|was never|were never) (alive|born|here)",
        "rather be dead",
        "dont want to (live|be alive|exist|wake up)( anymore)?",
        "dont want to be (here|around) anymore",
        "(hope|hoping) i dont wake up",
        "(tired|sick) of (living|being alive)",
        # Hopelessness and burden, the classic warning signs.
        "better off (dead|without me)",
        "better off if i (was|were|wasnt|werent) (here|around|alive|gone|dead)",
        "no (reason|point|reasons) (to|in) (live|living|go on|going on|keep going|be alive"
        "|being alive|carry on|carrying on)",
        "nothing (left )?to live for",
        "whats the point (of|in) (living|going on|being alive|anything anymore)",
        "cant (go on|keep going|carry on)",
        "cant (do this|take (it|this)|cope) anymore",
        "(see|there is|theres) no way out",
        "(this is|saying) goodbye forever",
        "goodbye forever",
        "my (final|last) goodbye",
    ),
    SELF_HARM: (
        "cut(ting)? myself",
        "(cutting|self harming|harming myself|burning myself) again",
        "self (harm|harming|harmed|injury|injure|injuring)",
        "selfharm(ing)?",
        "harm(ing)? myself",
        f"{_INTENT} to (hurt|harm|cut|burn) myself",
        "(keep|kept|stop|started|start) (hurting|cutting|burning) myself",
        "hurting myself again",
        "burn(ing)? myself",
        "(slit|slitting|cut|cutting) my (wrist|wrists|arm|arms|thigh|thighs|legs|skin)",
        "(make|making) myself bleed",
        "want to bleed",
    ),
    OVERDOSE: (
        "(i|ive|i just|i think i|i might have|i may have|might have|may have|nearly|almost) "
        "(overdosed|odd|oded)",
        f"{_INTENT} to (overdose|od)",
        "(overdose|overdosing|od) on purpose",
        "(took|taken|take|taking|swallowed|swallow|popped|pop) too many " + _DRUGS,
        "(took|taken|swallowed|popped) (a bunch of|the whole bottle of|a whole bottle of) "
        + _DRUGS,
        "i think i (took|have taken|ive taken|had) too (many|much)",
        "(might|may) have (taken|had) too (many|much)",
        "(took|taken|swallowed|drank|downed) (a|the) whole bottle",
        "(drink|drinking|use|using) myself to death",
        "(use|using|drink|drinking) (until|till|til) i (die|dont wake up)",
        "enough( \\w+)? to (kill me|not wake up|end it)",
    ),
}

# Harmless uses of the phrases above, blanked before matching.
_NOT_CRISIS = (
    "cut(ting)? myself (off|out|short|loose|free|some slack|a (slice|piece|break)|shaving"
    "|cooking|chopping|on|while|by accident|accidentally)",
    "(hurt|hurting|harm|harming) myself (at the gym|lifting|playing|running|working out|on"
    "|by accident|accidentally)",
    "burn(ing)? myself (out|on|cooking|by accident|accidentally)",
    "kill(ing)? myself (laughing|at work|at the gym|working|trying to)",
    "(dont|didnt|never) (want|wanted) to die",
    # Wanting a different life is the start of recovery, not a wish to die.
    "dont want to live (like this|this way)",
)

# Spoken and split forms, folded to the spelling the lists use.
_FOLDS = (
    (re.compile(r"\b(cannot|can not)\b"), "cant"),
    (re.compile(r"\bdo not\b"), "dont"),
    (re.compile(r"\bdid not\b"), "didnt"),
    (re.compile(r"\bwas not\b"), "wasnt"),
    (re.compile(r"\bwere not\b"), "werent"),
    (re.compile(r"\bhad not\b"), "hadnt"),
    (re.compile(r"\bany more\b"), "anymore"),
    (re.compile(r"\bwanna\b"), "want to"),
    (re.compile(r"\bgonna\b"), "going to"),
    (re.compile(r"\bi am\b"), "im"),
    (re.compile(r"\bi have\b"), "ive"),
    (re.compile(r"\bwhat is\b"), "whats"),
    (re.compile(r"\bthere is\b"), "theres"),
)
_APOSTROPHES = re.compile("['\u2018\u2019\u201b\u02bc\u02b9\u0060\u00b4\u2032\uff07]")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _compile(entries: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(entries) + r")(?![a-z0-9])")


_PATTERNS = {category: _compile(entries) for category, entries in PHRASES.items()}
_HARMLESS = _compile(_NOT_CRISIS)


def fold(text: str) -> str:
    """Text as the lists read it: no accents, lower case, no apostrophes, one space
    between words, spoken forms spelled out."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    plain = _NOT_WORD.sub(" ", _APOSTROPHES.sub("", plain)).strip()
    for pattern, replacement in _FOLDS:
        plain = pattern.sub(replacement, plain)
    return plain


def detect(text: str) -> frozenset[str]:
    """The crisis categories (SUICIDE, SELF_HARM, OVERDOSE) the text touches; empty if none."""
    if not text:
        return frozenset()
    folded = _HARMLESS.sub(" ", fold(text))
    return frozenset(category for category, pattern in _PATTERNS.items() if pattern.search(folded))
