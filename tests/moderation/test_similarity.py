"""The context-note matcher: pure unit tests, and its quality on the labelled set.

Print the figures for the README with:
    DJANGO_DEBUG=true .venv/bin/pytest -q -s -p no:cacheprovider \
        tests/moderation/test_similarity.py -k labelled
"""

import json
from pathlib import Path

from moderation.similarity import (
    DEFAULT_THRESHOLD,
    LexicalMatcher,
    NoteClaim,
    build_matcher,
    tokens,
    windows,
)

DATA = json.loads((Path(__file__).parent / "data" / "context_notes_labelled.json").read_text())
# Measured with DEFAULT_THRESHOLD 0.42: precision 0.958, recall 0.885 (46 of 52, 2 wrong).
MIN_PRECISION = 0.95
MIN_RECALL = 0.85


def library() -> LexicalMatcher:
    return LexicalMatcher(
        [NoteClaim(n["key"], n["claim"], tuple(n["phrasings"])) for n in DATA["notes"]]
    )


def score_labelled_set(matcher) -> tuple[float, float, int, int, int]:
    """Precision and recall of the best match per sentence (a wrong note counts as both a
    false positive and a miss)."""
    examples = DATA["examples"]
    true_pos = false_pos = 0
    for example in examples:
        found = matcher.match(example["text"])
        predicted = found[0].note_id if found else None
        if predicted is None:
            continue
        if predicted == example["note"]:
            true_pos += 1
        else:
            false_pos += 1
    positives = sum(1 for e in examples if e["note"])
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    return precision, true_pos / positives, true_pos, false_pos, positives


def test_labelled_set_is_big_enough():
    keys = {n["key"] for n in DATA["notes"]}
    paraphrases = [e for e in DATA["examples"] if e["note"]]
    unrelated = [e for e in DATA["examples"] if e["note"] is None]
    assert len(paraphrases) >= 50 and len(unrelated) >= 50
    assert {e["note"] for e in paraphrases} == keys
    texts = [e["text"] for e in DATA["examples"]]
    assert len(set(texts)) == len(texts)


def test_labelled_set_precision_and_recall():
    precision, recall, true_pos, false_pos, positives = score_labelled_set(library())
    print(
        f"\ncontext notes, lexical matcher, threshold {DEFAULT_THRESHOLD}: "
        f"precision {precision:.3f}, recall {recall:.3f} "
        f"({true_pos} of {positives} paraphrases matched their note, {false_pos} wrong matches, "
        f"{len(DATA['examples']) - positives} unrelated sentences)"
    )
    assert precision >= MIN_PRECISION
    assert recall >= MIN_RECALL


def test_synonyms_and_idioms_meet():
    assert set(tokens("quit xanax cold turkey")) == set(tokens("stop benzodiazepines abruptly"))
    assert "alcohol" in tokens("too much booze")
    assert tokens("stopping")[0] == tokens("stops")[0]


def test_negation_turns_safety_around():
    assert "danger" in tokens("it is not safe")
    assert "safe" in tokens("a couple won't hurt")
    assert "safe" not in tokens("it isn't safe")


def test_rewording_matches_and_correction_does_not():
    matcher = library()
    assert [m.note_id for m in matcher.match("Just quit your valium overnight at home, it's fine")][
        :1
    ] == ["benzo-abrupt"]
    assert matcher.match("Please don't stop benzos cold turkey, it is not safe.") == []
    assert matcher.match("Went to a meeting and felt better.") == []


def test_a_claim_in_one_sentence_of_a_long_post_still_matches():
    filler = "We had a lovely walk by the river and talked about the week. " * 8
    text = filler + "Anyway, quitting benzos cold turkey at home is totally safe."
    assert [m.note_id for m in library().match(text)][:1] == ["benzo-abrupt"]
    assert len(windows("One. Two. Three.")) == 1 + 3 + 2


def test_empty_library_and_empty_text_match_nothing():
    assert build_matcher([]).match("quit benzos cold turkey") == []
    assert library().match("") == []
    assert library().match("   ") == []
