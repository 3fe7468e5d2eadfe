"""Render + sanitise + policy per post and per chat message, typical and worst case.

The same calls the write path makes for a reply or a chat message, without the database:
``publishing.clean_text`` (validation), ``sanitize.render_markdown`` (markdown-it-py, then
nh3) with the mentions it finds, and ``policy.evaluate`` against a list of watched phrases
(``--phrases``, built like ``policy_bench.py`` builds them). Run from the repository
root::

    .venv/bin/python bench/text_pipeline.py [--rounds 7] [--phrases 500] [--budget-ms 250]

Typical: an ~800-character post with paragraphs, a list, emphasis, a link and a mention,
and an ~80-character chat message; the median of ``--rounds`` rounds of 200 calls, per
call. Worst case: pathological inputs at the maximum allowed length (20,000 characters for
a post, 2,000 for a chat message): deep nesting, thousands of brackets, backticks,
delimiters, links, bare addresses, entities and lines; each figure is the median of
``--rounds`` calls, and the bench fails (exit 1) if any median is over
``--budget-ms``. Times are CPU time of this process (``time.process_time``): on a shared
machine wall time also counts other people's work.
"""

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forum.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")

import django

django.setup()

from policy_bench import make_entries  # noqa: E402

from forum import publishing, sanitize  # noqa: E402
from moderation import policy  # noqa: E402

TYPICAL_POST = """Thank you all for last night's meeting. I wanted to share how this week went,
because a few of you asked.

Monday was the hardest day. I woke up with **strong cravings** and almost called in sick,
but I remembered what @river said about *one hour at a time* and went for a walk first.

What helped me this week:

- calling my sponsor before work, even for two minutes
- writing down three things I was grateful for
- going to the Thursday meeting instead of staying home

I also read [this piece on sleep and recovery](https://example.org/sleep-and-recovery) that
someone linked here. It made me realise how much my sleep matters. I'm not perfect, and
Wednesday evening was rough, but I got through it without using.

> Progress, not perfection.

That's been on my fridge for a month now. Day 47 today. Thank you for being here."""

TYPICAL_CHAT = "Thanks @river, that really helps. Going to my meeting tonight, 47 days today!"


def pathological(limit: int) -> dict[str, str]:
    """Inputs of exactly ``limit`` characters, each aimed at one part of the parser."""
    cases = {
        "nested quotes '> > >'": "> " * limit,
        "nested quotes '>>>'": ">" * limit,
        "quote ladder": "".join(">" * i + " x\n" for i in range(1, limit)),
        "nested lists": "".join("  " * i + "- x\n" for i in range(limit)),
        "list markers '- - -'": "- " * limit,
        "emphasis '*_*_'": "*_" * limit,
        "emphasis '*a _b'": "*a _b " * limit,
        "strong '**__'": "**__" * limit,
        "brackets '[[['": "[" * limit,
        "brackets '[]('": "[](" * limit,
        "brackets ']('": "](" * limit,
        "link destinations '[](xxx'": ("[](" + "x" * 30) * limit,
        "nested links": "[" * (limit // 10) + "a" + "](b)" * limit,
        "backticks '````'": "`" * limit,
        "backticks '` ``'": "` `` " * limit,
        "links [a](url)": "[a](https://a.example/) " * limit,
        "autolinks <url>": "<https://a.example/> " * limit,
        "bare URLs": "https://a.example/ " * limit,
        "www. addresses": "www.example.com " * limit,
        "e-mail addresses": "a@b.example " * limit,
        "mentions": "@river " * limit,
        "entities '&amp;'": "&amp;" * limit,
        "numeric entities": "&#128512;" * limit,
        "tags '<a '": "<a " * limit,
        "table rows": "|a|b|\n|-|-|\n" + "|x|y|\n" * limit,
        "wide table": "|" * (limit // 2) + "\n" + "|-" * limit,
        "headings": "# x\n" * limit,
        "lines": "x\n" * limit,
        "reference definitions": "[a]: https://a.example\n" * limit,
        "escapes '\\*'": "\\*" * limit,
        "brackets up to the markup cap": "[" * sanitize.MAX_MARKUP + "a" * limit,
        "'[](' up to the markup cap": "[](" * (sanitize.MAX_MARKUP // 2) + "a" * limit,
        "plain words": "recovery " * limit,
    }
    return {name: text[:limit] for name, text in cases.items()}


def pipeline(kind: str, rules: policy.CompiledRules, limit: int) -> Callable[[str], None]:
    label = "Your message" if kind == "chat" else "Your reply"

    def run(text: str) -> None:
        body = publishing.clean_text(text, field="body", label=label, max_length=limit)
        handles = sanitize.mentioned_handles(body)
        sanitize.render_markdown(body, mentions=handles)
        policy.evaluate(policy.Submission(kind, body), rules)

    return run


def cpu_ms(run: Callable[[str], None], text: str, *, calls: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            run(text)
        times.append((time.process_time() - start) / calls)
    return statistics.median(times) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--phrases", type=int, default=500, help="watched phrases in force")
    parser.add_argument("--budget-ms", type=float, default=250.0)
    args = parser.parse_args()
    rules = policy.compile_rules(make_entries(args.phrases, random.Random(args.phrases)))  # noqa: S311
    print(
        f"python {sys.version.split()[0]}, {args.phrases} watched phrases, "
        f"median of {args.rounds} rounds, CPU time; load average {os.getloadavg()[0]:.2f}"
    )
    post = pipeline("reply", rules, publishing.POST_MAX)
    chat = pipeline("chat", rules, publishing.CHAT_MAX)
    for name, run, text in (("post", post, TYPICAL_POST), ("chat", chat, TYPICAL_CHAT)):
        ms = cpu_ms(run, text, calls=200, rounds=args.rounds)
        print(f"typical {name} ({len(text):,} chars): {ms * 1e3:7.0f} µs")
    over = []
    for name, run, limit in (
        ("post", post, publishing.POST_MAX),
        ("chat", chat, publishing.CHAT_MAX),
    ):
        print(f"\nworst cases, {name} ({limit:,} characters), ms:")
        results = []
        for case, text in pathological(limit).items():
            ms = cpu_ms(run, text, calls=1, rounds=args.rounds)
            results.append((ms, case))
            if ms > args.budget_ms:
                over.append(f"{name}: {case}")
        for ms, case in sorted(results, reverse=True):
            print(f"  {ms:8.1f}  {case}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if over:
        print(f"over {args.budget_ms:.0f} ms: {', '.join(over)}")
        return 1
    print(f"every input under {args.budget_ms:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
