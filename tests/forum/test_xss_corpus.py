"""Every payload of the shared XSS corpus, through every service that stores member text.

The oracle (tests/xss_oracle.py) parses the stored HTML with html5lib and fails on
any script-capable element, event-handler/style/srcdoc/formaction attribute or URL
with a scheme other than http, https and mailto. Each test collects every failure
before reporting, so one run shows the whole damage.
"""

import re
import unicodedata

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.test import Client
from django.utils.html import escape

from forum import publishing, sanitize, selectors
from forum.models import Post, Thread, User
from forum.models.accounts import validate_handle
from tests.conftest import join
from tests.xss_oracle import (
    assert_no_executable_html,
    batched,
    find_executable_html,
    find_executable_page,
    load_payloads,
)

# Posts carry about this many payloads each, separated by blank lines, so that the
# 6,613 payloads go through the real write path in a few seconds.
POST_BATCH = 20
UNLIMITED = 10**9
MAX_REPORTED = 25


@pytest.fixture(scope="module")
def payloads() -> list[str]:
    return load_payloads()


@pytest.fixture
def no_limits(settings):
    """Rate limits and the duplicate window out of the way: this is about content."""
    settings.KINSHIP_RATE_LIMITS = {
        action: (UNLIMITED, 60) for action in ("thread", "reply", "edit", "profile")
    }
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    return settings


def _report(failures: list[str], total: int, what: str) -> None:
    if failures:
        shown = "\n".join(failures[:MAX_REPORTED])
        pytest.fail(
            f"{len(failures)} of {total} {what} produced executable HTML:\n{shown}",
            pytrace=False,
        )


def _normalised(text: str, *, multiline: bool) -> str:
    """What publishing.clean_text stores for text it accepts."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.strip() if multiline else " ".join(text.split())


def test_the_oracle_is_not_vacuous(payloads):
    # The raw payloads, unsanitised, must mostly trip the oracle; otherwise a pass
    # below would prove nothing.
    flagged = sum(1 for payload in payloads if find_executable_html(payload))
    assert flagged > 0.8 * len(payloads)
    assert find_executable_html('<a href=" jav&#x09;ascript:alert(1)">x</a>')
    assert find_executable_html('<svg><a xlink:href="data:text/html,x">y</a></svg>')
    assert find_executable_html("<p OnClick=alert(1) STYLE=x>hi</p>")
    assert not find_executable_html('<p><a href="/u/river/" class="mention">@river</a></p>')
    assert not find_executable_html('<a href="mailto:a@b.example">m</a><a href="#top">t</a>')
    assert_no_executable_html("<p><strong>fine</strong></p>", context="a safe fragment")
    with pytest.raises(pytest.fail.Exception, match="payload 7"):
        assert_no_executable_html("<script>alert(1)</script>", context="payload 7")


def test_render_markdown_neutralises_every_payload(payloads):
    failures = []
    for index, payload in enumerate(payloads):
        html = sanitize.render_markdown(payload, mentions={"river", "meadow"})
        problems = find_executable_html(html)
        if problems:
            failures.append(f"#{index} {payload!r} -> {html!r}: {problems}")
    _report(failures, len(payloads), "payloads rendered as Markdown")


def test_every_payload_as_a_reply_is_stored_safe(payloads, public_group, member, no_limits):
    join(member, public_group)
    thread = publishing.publish_thread(
        author=member, group=public_group, title="Corpus", body="Opening post."
    )
    accepted: list[list[str]] = []
    refused_alone: list[str] = []
    for batch in batched(payloads, size=POST_BATCH, max_chars=publishing.POST_MAX):
        try:
            publishing.publish_reply(author=member, thread=thread, body="\n\n".join(batch))
            accepted.append(batch)
        except ValidationError:
            # A batch over a limit: every payload of it goes in on its own.
            for payload in batch:
                try:
                    publishing.publish_reply(author=member, thread=thread, body=payload)
                    accepted.append([payload])
                except ValidationError:
                    refused_alone.append(payload)

    # Only a payload that cannot be a post on its own may be refused.
    for payload in refused_alone:
        text = _normalised(payload, multiline=True)
        assert not text or len(text) > publishing.POST_MAX, f"refused: {payload!r}"
    assert sum(len(batch) for batch in accepted) + len(refused_alone) == len(payloads)

    stored = list(
        Post.objects.filter(thread=thread, parent__isnull=False)
        .order_by("path")
        .values_list("source", "html")
    )
    assert len(stored) == len(accepted)
    failures = []
    for (source, html), batch in zip(stored, accepted, strict=True):
        assert source == _normalised("\n\n".join(batch), multiline=True)
        problems = find_executable_html(html)
        if problems:
            failures.append(f"{batch!r} -> {html!r}: {problems}")
    _report(failures, len(stored), "stored replies")

    # ...and so are the thread's pages, parsed whole, as a reader sees them.
    client = Client()
    client.force_login(member)
    shown = 0
    for page in range(1, len(stored) // selectors.POSTS_PER_PAGE + 2):
        response = client.get(thread.get_absolute_url(), {"page": page})
        assert response.status_code == 200
        html = response.content.decode()
        shown += html.count('<div class="post-body">')
        failures += [f"page {page}: {problem}" for problem in find_executable_page(html)]
    assert shown == len(stored) + 1  # every reply, and the opening post
    _report(failures, len(stored), "thread pages")


def test_every_payload_alone_is_a_valid_title_or_refused_as_too_long(payloads):
    # Payload by payload, the exact check publish_thread applies to a title.
    for payload in payloads:
        title = _normalised(payload, multiline=False)
        try:
            cleaned = publishing.clean_text(
                payload, field="title", label="The title", max_length=publishing.TITLE_MAX,
                multiline=False,
            )  # fmt: skip
        except ValidationError as error:
            assert list(error.message_dict) == ["title"], payload
            assert len(title) > publishing.TITLE_MAX, (payload, error.message_dict)
            continue
        assert cleaned == title, payload


def test_every_payload_as_a_thread_title_is_plain_text(payloads, public_group, member, no_limits):
    # 6,613 publish_thread calls take over a minute on PostgreSQL, so short payloads
    # share a title (joined by a space, within the 200-character limit); a payload
    # too long for a title goes alone and must be refused.
    join(member, public_group)
    template = Template("{{ t.title }}")
    expected_titles: dict[int, str] = {}
    refused = 0
    for index, batch in enumerate(
        batched(payloads, size=POST_BATCH, max_chars=publishing.TITLE_MAX, separator=" ")
    ):
        title = _normalised(" ".join(batch), multiline=False)
        try:
            thread = publishing.publish_thread(
                author=member, group=public_group, title=" ".join(batch), body=f"Body {index}"
            )
        except ValidationError as error:
            assert len(batch) == 1, batch
            assert list(error.message_dict) == ["title"], (batch, error.message_dict)
            assert len(title) > publishing.TITLE_MAX, (batch, error.message_dict)
            refused += 1
            continue
        expected_titles[thread.pk] = title
    assert refused == sum(
        1 for p in payloads if len(_normalised(p, multiline=False)) > publishing.TITLE_MAX
    )

    failures = []
    stored = Thread.objects.filter(pk__in=expected_titles).in_bulk()
    assert len(stored) == len(expected_titles)
    for pk, title in expected_titles.items():
        thread = stored[pk]
        assert thread.title == title  # stored as typed: plain text, not HTML
        rendered = template.render(Context({"t": thread}))
        assert rendered == escape(title)
        problems = find_executable_html(rendered)
        if problems:
            failures.append(f"{title!r} -> {rendered!r}: {problems}")
    _report(failures, len(expected_titles), "thread titles")


def test_every_payload_as_a_bio_is_stored_safe(payloads, member, no_limits):
    failures = []
    accepted = refused = 0
    for batch in batched(payloads, size=POST_BATCH, max_chars=publishing.BIO_MAX):
        bio = "\n\n".join(batch)
        try:
            publishing.update_profile(
                user=member, bio=bio, recovery_date=None, recovery_date_visibility="only_me"
            )
        except ValidationError as error:
            # batched() only overfills with a single payload that is too long alone.
            assert len(batch) == 1, batch
            assert "bio" in error.message_dict, (batch, error.message_dict)
            assert len(_normalised(bio, multiline=True)) > publishing.BIO_MAX, batch
            refused += 1
            continue
        accepted += len(batch)
        source, html = User.objects.values_list("bio_source", "bio_html").get(pk=member.pk)
        assert source == _normalised(bio, multiline=True)
        problems = find_executable_html(html)
        if problems:
            failures.append(f"{batch!r} -> {html!r}: {problems}")
    assert accepted + refused == len(payloads)
    assert accepted > 0.99 * len(payloads)
    _report(failures, accepted, "bios")


def test_every_payload_as_a_handle_is_rejected_unless_plain(payloads):
    plain = re.compile(r"[A-Za-z0-9_-]+")
    validate_handle("river_2-x")  # the control: a plain handle passes
    # Cut to the longest handle too, so that length alone is not what rejects them.
    candidates = [*payloads, *(payload[:30] for payload in payloads)]
    passed = []
    for candidate in candidates:
        try:
            validate_handle(candidate)
        except ValidationError:
            continue
        passed.append(candidate)
    impostors = [c for c in passed if not plain.fullmatch(c)]
    assert impostors == [], f"handles accepted with markup characters: {impostors[:MAX_REPORTED]}"
