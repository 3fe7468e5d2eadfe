"""Properties of forum.sanitize checked on generated input (Hypothesis).

Two promises the rest of the code relies on: sanitising is a fixed point (what the
sanitiser lets through passes it unchanged, so stored HTML never drifts however often it
is cleaned), and a stored post is exactly what its stored source renders to (HTML is made
once, at write time, from nothing but the source and the handles that exist).
"""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forum import publishing
from forum.models import Post
from forum.sanitize import clean_html, render_markdown
from tests.conftest import join
from tests.xss_oracle import find_executable_html

# Fragments that make the parsers work: Markdown syntax, raw and broken HTML, entities,
# URL schemes, mentions and awkward Unicode, mixed with arbitrary text.
FRAGMENTS = [
    "*", "**", "_", "`", "```\n", "~~", "> ", "- ", "1. ", "# ", "\n", "\n\n", "    ", "|",
    "| a | b |\n|---|---|\n", "[", "](", ")", "![", "<", ">", "</", "/>", "=", '"', "'", "&",
    "&amp;", "&#60;", "&#x3c;", "&lt;", "&#0;", "<a href=", "<a href='javascript:x'>",
    "<img src=x onerror=alert(1)>", "<script>", "</script>", "<svg><a xlink:href=", "<math>",
    "<p>", "</p>", "<table><tr><td>", "<!--", "-->", "<![CDATA[", "<noscript>", "<style>",
    "<template>", "<select><option>", "<textarea>", "<iframe srcdoc=", "<base href=",
    "javascript:", "JaVa\tScRiPt:", "data:text/html,", "vbscript:", "mailto:a@b.example",
    "https://e.example/p?q=1&r=2", "www.example.com", "@river", "@meadow", "@nobody",
    "a@b.example", "é", "e\u0301", "\u00a0", "\u200b", "😀", "\ufeff",
]  # fmt: skip
PIECES = st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8))
MARKUP = st.lists(PIECES, max_size=30).map("".join)
KNOWN = frozenset({"river", "meadow"})
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)


@PROPERTY_SETTINGS
@given(MARKUP)
def test_clean_html_is_idempotent(html):
    once = clean_html(html)
    assert clean_html(once) == once
    assert find_executable_html(once) == []


@PROPERTY_SETTINGS
@given(MARKUP)
def test_rendered_markdown_is_a_fixed_point_of_clean_html(source):
    html = render_markdown(source, mentions=KNOWN)
    assert clean_html(html) == html
    assert find_executable_html(html) == []


@pytest.fixture
def writing_place(public_group, member, other_member, settings):
    settings.KINSHIP_RATE_LIMITS = {"thread": (10**9, 60), "reply": (10**9, 60)}
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    join(member, public_group)  # river; meadow exists too, so both handles are mentions
    thread = publishing.publish_thread(
        author=member, group=public_group, title="Properties", body="Opening post."
    )
    return member, thread


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=MARKUP)
def test_a_stored_post_is_a_fresh_render_of_its_stored_source(writing_place, body):
    author, thread = writing_place
    try:
        post = publishing.publish_reply(author=author, thread=thread, body=body)
    except ValidationError:
        return  # blank, control characters or over the limit: nothing stored to compare
    stored = Post.objects.values_list("source", "html").get(pk=post.pk)
    source, html = stored
    assert html == render_markdown(source, mentions=KNOWN)
    assert find_executable_html(html) == []
