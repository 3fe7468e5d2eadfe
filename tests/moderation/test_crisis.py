"""The crisis list (moderation.crisis): words that suggest risk of suicide, self-harm or
overdose, matched on whole words, and the everyday phrases that must not match."""

import re

import pytest

from moderation import crisis
from moderation.crisis import OVERDOSE, SELF_HARM, SUICIDE

TRUE_POSITIVES = [
    ("I want to kill myself", {SUICIDE}),
    ("sometimes I think about killing myself", {SUICIDE}),
    ("I just want to end it all", {SUICIDE}),
    ("I want to die", {SUICIDE}),
    ("i wanna die", {SUICIDE}),
    ("I'm going to end my life tonight", {SUICIDE}),
    ("there's no reason to live anymore", {SUICIDE}),
    ("I have nothing left to live for", {SUICIDE}),
    ("everyone would be better off without me", {SUICIDE}),
    ("my kids are better off if I wasn't here", {SUICIDE}),
    ("I can't go on like this", {SUICIDE}),
    ("I cant go on", {SUICIDE}),
    ("I can't do this any more", {SUICIDE}),
    ("i cant take it anymore", {SUICIDE}),
    ("I can\u2019t go on", {SUICIDE}),  # curly apostrophe
    ("I cannot go on", {SUICIDE}),
    ("I can not keep going", {SUICIDE}),
    ("feeling suicidal again today", {SUICIDE}),
    ("I wish I was dead", {SUICIDE}),
    ("I don't want to wake up tomorrow", {SUICIDE}),
    ("I don't want to be here anymore", {SUICIDE}),
    ("I dont want to live anymore", {SUICIDE}),
    ("hoping I don\u2019t wake up", {SUICIDE}),
    ("I wrote a suicide note", {SUICIDE}),
    ("I see no way out", {SUICIDE}),
    ("KILL MYSELF", {SUICIDE}),
    ("kill\n   myself", {SUICIDE}),  # spacing and line breaks
    ("end-it-all", {SUICIDE}),  # punctuation between words
    ("I wänt to díe", {SUICIDE}),  # accents
    ("I cut myself again last night", {SELF_HARM}),
    ("the urge to cut myself is strong", {SELF_HARM}),
    ("I've been self-harming", {SELF_HARM}),
    ("self harm", {SELF_HARM}),
    ("selfharm", {SELF_HARM}),
    ("I want to hurt myself", {SELF_HARM}),
    ("I keep burning myself", {SELF_HARM}),
    ("I think I overdosed", {OVERDOSE}),
    ("I'm going to overdose", {OVERDOSE}),
    ("gonna od tonight", {OVERDOSE}),
    ("I took too many pills", {OVERDOSE}),
    ("I think I took too many", {OVERDOSE}),
    ("I swallowed the whole bottle", {OVERDOSE}),
    ("I'll drink myself to death", {OVERDOSE}),
    ("I have enough pills to not wake up", {OVERDOSE}),
    ("I took too many pills because I want to die", {SUICIDE, OVERDOSE}),
    ("I cut myself shaving, and honestly I want to die", {SUICIDE}),
]

# Everyday English, and how a recovery forum talks, that must NOT raise an alarm.
FALSE_POSITIVES = [
    "She's a skilled nurse",
    "I'm killing it at work this week",
    # An idiom about traffic, not about the writer: only "kill myself"-type phrases match.
    "this traffic is killing me",
    "my mum will kill me if I'm late",
    "the library book is overdue",
    "I'm a die-hard fan of the Cubs",
    "I could die laughing at that video",
    "I'm dying to know how it went",
    "I nearly died of embarrassment",
    # Talking about overdose and suicide as topics is part of recovery, not a personal risk.
    "International Overdose Awareness Day is on the 31st",
    "my brother died of an overdose two years ago",
    "naloxone reverses an opioid overdose",
    "September is suicide prevention month",
    "took too many photos at the meeting",
    "I took all my meds this morning like the doctor said",
    "I cut myself off from my old using friends",
    "cut myself some slack today",
    "I cut myself shaving",
    "I burned myself out at work",
    "I hurt myself at the gym",
    "I was killing myself laughing",
    "I don't want to die from withdrawal, so I'm seeing a doctor",
    "we want to live a sober life",
    "I thought I was going to die during detox",
    "I don't want to live like this anymore, so I called a meeting",
    "I don't want to be here, this meeting is so boring",
    "kill the lights and go to sleep",
    "end it politely",
    "I can't do this job anymore, I'm handing in my notice",
    "the diet is over",
    "",
]


@pytest.mark.parametrize(("text", "expected"), TRUE_POSITIVES)
def test_true_positives(text, expected):
    assert crisis.detect(text) == frozenset(expected)


@pytest.mark.parametrize("text", FALSE_POSITIVES)
def test_false_positives(text):
    assert crisis.detect(text) == frozenset()


def test_whole_words_only():
    assert crisis.detect("suicidal") == {SUICIDE}
    assert crisis.detect("nonsuicidal") == frozenset()
    assert crisis.detect("cut myselfie") == frozenset()
    assert crisis.detect("selfharmonica") == frozenset()


def test_fold_spells_out_contractions_and_apostrophes():
    assert crisis.fold("I CAN\u2019T  go-on\u2026") == "i cant go on"
    assert crisis.fold("I can`t, I cannot") == "i cant i cant"
    assert crisis.fold("Éire — naïve") == "eire naive"


def test_every_category_has_phrases_and_a_known_name():
    assert set(crisis.PHRASES) == set(crisis.CATEGORIES)
    assert all(crisis.PHRASES[category] for category in crisis.CATEGORIES)


def test_entries_use_only_the_documented_syntax():
    """Folded words, single spaces, (a|b) groups and ? after them: what a maintainer reads."""
    allowed = re.compile(r"[a-z0-9 ()|?]+|.*\\w.*")
    for entries in (*crisis.PHRASES.values(), crisis._NOT_CRISIS):
        for entry in entries:
            assert allowed.fullmatch(entry), entry
            assert "  " not in entry, entry
            re.compile(entry)


def test_each_entry_matches_something_it_should():
    """No dead entries: every phrase fires on a sample built from its first alternatives."""

    def sample(entry: str) -> str:
        entry = entry.replace("( \\w+)?", "")
        while "(" in entry:
            entry = re.sub(r"\(([^()|]*)(\|[^()]*)?\)\??", r"\1", entry)
        return entry

    for category, entries in crisis.PHRASES.items():
        for entry in entries:
            assert category in crisis.detect(sample(entry)), (entry, sample(entry))
