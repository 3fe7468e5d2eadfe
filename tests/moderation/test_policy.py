"""moderation.policy.evaluate: a pure function, tested without a database."""

from pathlib import Path

import pytest

from moderation import policy
from moderation.policy import PUBLISH, Outcome, Submission, Verdict, evaluate


def test_fresh_text_is_published():
    verdict = evaluate(Submission("reply", "Day 30 today.", ("Day 29 today.", "Hello")))
    assert verdict == PUBLISH
    assert verdict.outcome is Outcome.PUBLISH
    assert not verdict.rejected


def test_no_recent_texts_publishes():
    assert evaluate(Submission("thread", "anything")) == PUBLISH


@pytest.mark.parametrize("kind", ["thread", "reply"])
@pytest.mark.parametrize(
    "again",
    [
        "Thank you all",
        "thank you all",
        "THANK YOU ALL",
        "  Thank   you\tall \n",
        "Thank\nyou\n\nall",
        "Thank\u00a0you all",  # no-break space folds to a space
        "\uff34hank you all",  # full-width T folds to T under NFKC
        "THANK YOU ALL".casefold(),
    ],
)
def test_duplicate_is_case_and_whitespace_insensitive(kind, again):
    verdict = evaluate(Submission(kind, again, ("Something else", "Thank you all")))
    assert verdict.rejected
    assert verdict.outcome is Outcome.REJECT
    assert verdict.field == "body"
    assert verdict.reason == "You posted this same text a moment ago. It is already there."


def test_german_sharp_s_is_case_folded():
    assert evaluate(Submission("reply", "STRASSE", ("straße",))).rejected


@pytest.mark.parametrize(
    "different",
    ["Thank you all!", "Thank you al", "Thankyou all", "Thank you all too", ""],
)
def test_different_text_is_not_a_duplicate(different):
    assert evaluate(Submission("reply", different, ("Thank you all",))) == PUBLISH


@pytest.mark.parametrize("kind", ["edit", "bio", "group", "chat", "unknown"])
def test_duplicates_only_matter_for_threads_and_replies(kind):
    assert evaluate(Submission(kind, "Thank you all", ("Thank you all",))) == PUBLISH


def test_any_recent_text_can_match():
    recent = tuple(f"message {n}" for n in range(20))
    assert evaluate(Submission("reply", "MESSAGE 17", recent)).rejected
    assert evaluate(Submission("reply", "message 20", recent)) == PUBLISH


def test_verdict_is_immutable_and_rejected_reflects_the_outcome():
    verdict = Verdict(Outcome.REJECT, reason="no", field="title")
    assert verdict.rejected
    assert not Verdict(Outcome.PUBLISH).rejected
    with pytest.raises(AttributeError):
        verdict.reason = "yes"  # type: ignore[misc]


def test_policy_imports_nothing_from_forum():
    # The dependency rule of the architecture: policy decides, it does not look things up.
    source = Path(policy.__file__).read_text(encoding="utf-8")
    assert "forum" not in {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
