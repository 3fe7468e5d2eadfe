"""The policy step per message with 10 and with 5,000 watched phrases.

Pure Python, no database or Django: ``moderation.policy`` is pure on purpose. Run from
the repository root::

    .venv/bin/python bench/policy_bench.py [--messages 2000] [--sizes 10 5000]
                                           [--regex-share 0.01]

For each list size it builds plausible entries (whole words, two-word phrases, wildcards
and a few regular expressions, 1% by default: their cost grows with their number, so
``--regex-share 0`` shows the rest alone; spread over the four actions, seeded so runs
compare),
times ``compile_rules`` once, then times ``evaluate`` on realistic ~300-character
messages: clean ones (the common case: nothing matches) and ones with a watched word in
disguise near the end. Figures are per message, median of 5 rounds, in CPU time of
this process (on a shared machine, wall time also counts other people's work).
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from moderation.policy import Submission, WatchEntry, compile_rules, evaluate

_SYLLABLE_TEXT = (
    "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ha he hi ho "
    "ka ke ki ko la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po ra re ri ro "
    "sa se si so ta te ti to va ve vi vo za ze zi zo ph th ch sh str pr tr bl gr cl"
)
SYLLABLES = tuple(_SYLLABLE_TEXT.split())
ACTIONS = ("block", "hold", "flag", "censor")
_MESSAGE_TEXT = (
    "today was hard but I went to my meeting and talked with my sponsor about the cravings "
    "that came back after work I am grateful for this group and for everyone who shared "
    "last night it helps to know I am not alone one day at a time I called my sister and "
    "we had dinner I slept better than last week and the morning walk cleared my head"
)
MESSAGE_WORDS = tuple(_MESSAGE_TEXT.split())


def fake_word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def make_entries(count: int, rng: random.Random, regex_share: float = 0.01) -> list[WatchEntry]:
    entries = []
    for n in range(count):
        action = ACTIONS[n % len(ACTIONS)]
        roll = rng.random()
        if roll < 0.70:
            pattern, match = fake_word(rng), "word"
        elif roll < 0.90:
            pattern, match = f"{fake_word(rng)} {fake_word(rng)}", "word"
        elif roll < 1 - regex_share:
            pattern, match = fake_word(rng) + "*", "wildcard"
        else:
            pattern, match = rf"\b{fake_word(rng)}\d{{2,}}\b", "regex"
        entries.append(WatchEntry(pattern, match, action, label=f"#{n}"))
    return entries


def make_message(rng: random.Random, planted: str | None = None) -> str:
    words: list[str] = []
    while len(" ".join(words)) < 290:
        words.append(rng.choice(MESSAGE_WORDS))
    if planted:  # disguised: spaced out and a digit swapped in, near the end
        disguised = " ".join(planted).replace("o", "0").replace("e", "3")
        words.insert(len(words) - 3, disguised)
    return " ".join(words)[:320]


def per_message_us(rules, messages: list[str], rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for text in messages:
            evaluate(Submission("chat", text), rules)
        times.append((time.process_time() - start) / len(messages))
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 5000])
    parser.add_argument(
        "--regex-share",
        type=float,
        default=0.01,
        help="share of regular expressions among the entries (0.01: 50 of 5,000)",
    )
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {args.messages} messages per round, "
        f"{args.regex_share:.0%} regular expressions"
    )
    header = f"{'phrases':>8} {'compile ms':>11} {'clean µs/msg':>13} {'hit µs/msg':>11}"
    print(header)
    for size in args.sizes:
        rng = random.Random(size)  # noqa: S311 - seeded, not secret
        entries = make_entries(size, rng, args.regex_share)
        start = time.process_time()
        rules = compile_rules(entries)
        compile_ms = (time.process_time() - start) * 1e3
        clean = [make_message(rng) for _ in range(args.messages)]
        words = [e.pattern for e in entries if e.match == "word" and " " not in e.pattern]
        hits = [make_message(rng, rng.choice(words)) for _ in range(args.messages)]
        assert all(evaluate(Submission("chat", t), rules).outcome != "publish" for t in hits[:50])
        print(
            f"{size:>8} {compile_ms:>11.1f} {per_message_us(rules, clean):>13.1f} "
            f"{per_message_us(rules, hits):>11.1f}"
        )
    plain = random.Random(0)  # noqa: S311
    baseline = [make_message(plain) for _ in range(args.messages)]
    print(f"{'none':>8} {'-':>11} {per_message_us(compile_rules([]), baseline):>13.1f} {'-':>11}")


if __name__ == "__main__":
    main()
