"""forum.sanitize: what member Markdown may and may not become.

Assertions about structure parse the output with html5lib (as a browser would) rather
than comparing strings, except where the exact text is the behaviour under test.
"""

import random

import html5lib
import pytest

from forum.sanitize import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    LINK_REL,
    MAX_DEPTH,
    MAX_LINKIFY,
    MAX_LINKS,
    MAX_MARKUP,
    clean_html,
    linked_mentions,
    mentioned_handles,
    render_markdown,
)
from tests.xss_oracle import find_executable_html, url_scheme

KNOWN = frozenset({"river", "meadow"})


def parse(html: str):
    return html5lib.parseFragment(html, treebuilder="etree", namespaceHTMLElements=False)


def elements(html: str, tag: str | None = None) -> list:
    found = [el for el in parse(html).iter() if isinstance(el.tag, str)]
    found = [el for el in found if el.tag != "DOCUMENT_FRAGMENT"]
    return [el for el in found if tag is None or el.tag == tag]


def text_of(html: str) -> str:
    return "".join(parse(html).itertext())


def links(html: str) -> list:
    return elements(html, "a")


def max_depth(html: str) -> int:
    def depth(node) -> int:
        children = [child for child in node if isinstance(child.tag, str)]
        return 1 + max((depth(child) for child in children), default=0)

    return depth(parse(html)) - 1  # not counting the fragment itself


# --- raw HTML ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "<b>bold</b> and <i>italic</i>",
        '<a href="/groups/">x</a>',
        '<img src="x" onerror="alert(1)">',
        "<div><p>block</p></div>",
        "<!-- comment --> after",
        '<iframe src="/frame"></iframe>',
    ],
)
def test_raw_html_is_shown_as_text(source):
    html = render_markdown(source)
    # The member sees exactly what they typed, as characters...
    assert text_of(html).strip() == source
    # ...and the only element is the paragraph around it.
    assert [el.tag for el in elements(html)] == ["p"]


def test_raw_html_block_is_text_too():
    source = "<details>\n<summary>x</summary>\n\n<script>alert(1)</script>\n</details>"
    html = render_markdown(source)
    assert {el.tag for el in elements(html)} == {"p", "br"}  # breaks: True
    assert "<script>alert(1)</script>" in text_of(html)


# --- links ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "href"),
    [
        ("[a link](https://example.com/page)", "https://example.com/page"),
        ("see https://example.com/x?y=1", "https://example.com/x?y=1"),
        ("go to www.example.com", "http://www.example.com"),
        ("<https://example.com/auto>", "https://example.com/auto"),
        ("[write](mailto:help@example.com)", "mailto:help@example.com"),
        ("[home](/groups/open-circle/)", "/groups/open-circle/"),
        ("hello @river", "/u/river/"),
    ],
)
def test_every_link_gets_the_rel_attribute(source, href):
    html = render_markdown(source, mentions=KNOWN)
    [link] = links(html)
    assert link.get("href") == href
    assert link.get("rel") == LINK_REL
    assert LINK_REL == "nofollow ugc noopener noreferrer"


def test_link_title_is_kept_but_cannot_smuggle_attributes():
    html = render_markdown('[x](https://a.example "t onclick=alert(1)")')
    [link] = links(html)
    assert link.get("title") == "t onclick=alert(1)"
    assert set(link.keys()) == {"href", "title", "rel"}


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](java&#09;script:alert(1))",
        "[x](<javascript:alert(1)>)",
        "[x]( javascript:alert(1) )",
        "<javascript:alert(1)>",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](DATA:image/png;base64,AAAA)",
        "<data:text/html,<script>alert(1)</script>>",
        "[x](vbscript:msgbox(1))",
        "[x](VBScript:msgbox(1))",
        "[x](file:///etc/passwd)",
        "<ftp://files.example/x>",
        "![x](javascript:alert(1))",
        "![x](data:image/svg+xml;base64,PHN2Zz4=)",
    ],
)
def test_dangerous_schemes_never_become_links(source):
    html = render_markdown(source)
    for element in elements(html):
        for name in ("href", "src"):
            if element.get(name) is not None:
                assert url_scheme(element.get(name)) in {None, "http", "https", "mailto"}, html
    assert "javascript:" not in "".join(el.get("href", "") for el in links(html)).lower()
    assert find_executable_html(html) == []


# --- images --------------------------------------------------------------------------


def test_image_becomes_a_plain_link_labelled_with_its_alt_text():
    html = render_markdown("look: ![a sunrise](https://img.example/sun.png)")
    assert elements(html, "img") == []
    [link] = links(html)
    assert link.get("href") == "https://img.example/sun.png"
    assert link.get("rel") == LINK_REL
    assert link.text == "Image: a sunrise"


def test_image_without_alt_text_is_labelled_with_its_address():
    html = render_markdown("![](https://img.example/a.png)")
    [link] = links(html)
    assert link.text == "Image: https://img.example/a.png"
    assert elements(html, "img") == []


def test_image_alt_text_is_escaped():
    html = render_markdown('![<b onmouseover="x">bold</b>](https://img.example/a.png)')
    [link] = links(html)
    assert link.text == 'Image: <b onmouseover="x">bold</b>'
    assert elements(html, "b") == []


def test_reference_style_image_is_a_link_too():
    html = render_markdown("![logo][l]\n\n[l]: https://img.example/logo.png")
    assert elements(html, "img") == []
    assert [(a.get("href"), a.text) for a in links(html)] == [
        ("https://img.example/logo.png", "Image: logo")
    ]


# --- the allowlist -------------------------------------------------------------------

RICH_SAMPLE = """# Heading 1
## Heading 2
###### Heading 6

Some **strong**, *em*, ~~struck~~ and `code` text,
with a line break.

> A quote
> > nested

- one
- two
  - nested

3. three
4. four

| left | right |
|:-----|------:|
| a    | `b`   |

```python
print("hi")
```

    indented code

---

[link](https://example.com "title") @river ![pic](https://img.example/p.png)
"""


def test_rendered_output_uses_only_allowlisted_tags_and_attributes():
    html = render_markdown(RICH_SAMPLE, mentions=KNOWN)
    found = elements(html)
    assert {el.tag for el in found} <= ALLOWED_TAGS
    for el in found:
        allowed = set(ALLOWED_ATTRIBUTES.get(el.tag, ())) | (
            {"rel", "class"} if el.tag == "a" else set()
        )
        assert set(el.keys()) <= allowed, (el.tag, dict(el.attrib))
    # The sample exercises most of the allowlist, so this is not trivially true.
    assert {el.tag for el in found} >= {
        "h1", "h2", "h6", "p", "strong", "em", "s", "code", "br", "blockquote", "ul",
        "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "pre", "hr", "a",
    }  # fmt: skip


def test_clean_html_drops_everything_outside_the_allowlist():
    dirty = (
        '<p onclick="x" style="color:red">t<script>bad()</script><img src=x>'
        '<iframe src="https://e.example"></iframe>'
        '<a href="javascript:x" target="_blank" class="mention evil">l</a>'
        "<div>d</div><span>s</span><style>p{}</style></p>"
    )
    html = clean_html(dirty)
    assert {el.tag for el in elements(html)} <= {"p", "a"}
    [link] = links(html)
    assert link.get("href") is None
    assert link.get("class") == "mention"
    assert link.get("target") is None
    for el in elements(html):
        assert el.get("style") is None
        assert el.get("onclick") is None
    assert "bad()" not in html
    assert "d" in text_of(html)
    assert "s" in text_of(html)


def test_class_is_only_kept_for_mentions():
    html = clean_html('<a href="/x" class="evil">x</a><p class="mention">y</p>')
    [link] = links(html)
    assert not link.get("class")  # nh3 may leave an empty class=""
    assert not elements(html, "p")[0].get("class")


# --- mentions ------------------------------------------------------------------------


def test_mention_of_a_known_handle_links_to_the_profile():
    html = render_markdown("thanks @river and @meadow!", mentions=KNOWN)
    assert [(a.get("href"), a.get("class"), a.text) for a in links(html)] == [
        ("/u/river/", "mention", "@river"),
        ("/u/meadow/", "mention", "@meadow"),
    ]


def test_mention_matching_is_case_insensitive_and_keeps_the_written_case():
    html = render_markdown("hi @River", mentions=KNOWN)
    [link] = links(html)
    assert link.get("href") == "/u/River/"
    assert link.text == "@River"


@pytest.mark.parametrize(
    "source",
    [
        "hello @stranger",  # not an existing handle
        "hello @ri",  # too short to be a handle
        "hello @river_x",  # a different, longer handle
        "write to river@example.com",  # e-mail address
        "river@river",  # handle-looking e-mail local part
        "`@river` in code",
        "```\n@river\n```",
    ],
)
def test_no_mention_link_where_there_is_no_known_handle(source):
    html = render_markdown(source, mentions=KNOWN)
    assert [a for a in links(html) if a.get("class") == "mention"] == []
    assert "@" in text_of(html)


def test_no_mentions_without_known_handles():
    html = render_markdown("hello @river")
    assert links(html) == []
    assert text_of(html).strip() == "hello @river"


@pytest.mark.parametrize(
    ("source", "href"),
    [
        ("[talk to @river](https://example.com/chat)", "https://example.com/chat"),
        ("https://example.com/@river", "https://example.com/@river"),
        ("<https://example.com/@river/posts>", "https://example.com/@river/posts"),
        ("mail me: river@river.com", "mailto:river@river.com"),
    ],
)
def test_no_mention_inside_a_link_or_address(source, href):
    html = render_markdown(source, mentions=KNOWN)
    [link] = links(html)  # exactly one link: no nested mention link
    assert link.get("href") == href
    assert link.get("class") is None


def test_mentioned_handles_finds_candidates_lower_cased_in_order():
    assert mentioned_handles("hi @River, @meadow and me@mail.example, @x, @river") == [
        "river",
        "meadow",
    ]
    assert mentioned_handles("no mentions here") == []
    many = " ".join(f"@user{i:03d}" for i in range(80))
    assert mentioned_handles(many, limit=50) == [f"user{i:03d}" for i in range(50)]


def test_linked_mentions_counts_only_rendered_links():
    html = render_markdown("`@river` [@meadow](https://x.example) @Meadow @river", mentions=KNOWN)
    assert linked_mentions(html) == ["meadow", "river"]


# --- structure -----------------------------------------------------------------------


def test_table_renders_with_header_and_body_and_no_inline_style():
    html = render_markdown("| a | b |\n|:--|--:|\n| <x> | `c` |")
    assert [el.text for el in elements(html, "th")] == ["a", "b"]
    cells = elements(html, "td")
    assert [cell.text for cell in cells] == ["<x>", None]
    assert cells[1][0].tag == "code"
    assert cells[1][0].text == "c"
    assert all(el.get("style") is None for el in elements(html))


def test_lists_render_nested_and_numbered():
    html = render_markdown("- a\n- b\n  - c\n\n3. x\n4. y")
    [outer, inner] = elements(html, "ul")
    assert [li.text.strip() for li in outer.findall("li")] == ["a", "b"]
    assert [li.text for li in inner.findall("li")] == ["c"]
    [ordered] = elements(html, "ol")
    assert ordered.get("start") == "3"
    assert [li.text for li in ordered.findall("li")] == ["x", "y"]


def test_code_blocks_keep_their_text_literally():
    html = render_markdown("```python\nif a < b and c > d: print('<b>')\n```")
    [pre] = elements(html, "pre")
    [code] = list(pre)
    assert code.tag == "code"
    assert code.text == "if a < b and c > d: print('<b>')\n"
    assert code.get("class") is None  # language classes are not allowlisted


def test_inline_formatting_and_line_breaks():
    html = render_markdown("**b** *i* ~~s~~ `c`\nnext line")
    assert [el.tag for el in elements(html)] == ["p", "strong", "em", "s", "code", "br"]


# --- hostile sizes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        ">" * 10_000,
        "> " * 10_000,
        "[" * 10_000,
        "[" * 10_000 + "]" * 10_000,
        "[a](" * 3_000,
        "*" * 10_000,
        "*a" * 5_000,
        "_" * 10_000,
        "<" * 10_000,
        "`" * 10_000,
        "".join("  " * level + "- x\n" for level in range(500)),
        "".join(">" * level + " x\n" for level in range(1, 300)),
    ],
    ids=[
        "gt", "gt-space", "brackets", "balanced-brackets", "open-links", "stars",
        "star-a", "underscores", "lt", "backticks", "nested-list", "nested-quotes",
    ],
)  # fmt: skip
def test_deep_nesting_renders_and_stays_bounded(source):
    html = render_markdown(source)
    assert isinstance(html, str)
    # markdown-it's maxNesting (20) bounds the tree whatever the input.
    assert max_depth(html) <= 25
    assert clean_html(html) == html
    assert find_executable_html(html) == []


def test_ten_thousand_quote_markers_are_shown_not_lost():
    html = render_markdown(">" * 10_000 + " hello")
    assert text_of(html).strip() == ">" * 10_000 + " hello"


def test_quotes_deeper_than_the_limit_are_text_at_the_limit():
    html = render_markdown("> " * 200 + "deepest words")
    assert len(elements(html, "blockquote")) == MAX_DEPTH
    assert max_depth(html) == MAX_DEPTH + 1  # the paragraph inside the deepest quote
    # The markers past the limit and the words after them are shown, not dropped.
    assert text_of(html).strip() == "> " * (200 - MAX_DEPTH) + "deepest words"


def test_lists_deeper_than_the_limit_keep_every_item():
    source = "".join("  " * level + f"- item {level}\n" for level in range(200))
    html = render_markdown(source)
    assert 1 < len(elements(html, "ul")) <= MAX_DEPTH
    text = text_of(html)
    assert all(f"item {level}" in text for level in range(200))


def test_nesting_within_the_limit_renders_as_markdown():
    html = render_markdown("> " * 5 + "five deep")
    assert len(elements(html, "blockquote")) == 5
    assert text_of(html).strip() == "five deep"


def test_text_with_more_markup_than_the_limit_is_shown_as_plain_text():
    source = "a *b* [c](https://c.example)\nline two\n\n" + "[" * MAX_MARKUP
    html = render_markdown(source)
    assert elements(html, "em") == [] and links(html) == []
    assert [p.tag for p in elements(html) if p.tag != "br"] == ["p", "p"]
    assert len(elements(html, "br")) == 1
    assert text_of(html).split() == source.split()
    assert clean_html(html) == html


def test_markup_up_to_the_limit_is_still_markdown():
    source = "a *b*" + "[" * (MAX_MARKUP - 2)
    assert [el.text for el in elements(render_markdown(source), "em")] == ["b"]


def test_plain_text_fallback_escapes_html():
    html = render_markdown("<script>alert(1)</script> &amp; " + "*" * (MAX_MARKUP + 1))
    assert elements(html, "script") == []
    assert text_of(html).startswith("<script>alert(1)</script> &amp; ")


def test_more_written_links_than_the_limit_are_shown_as_plain_text():
    link = "[a](https://a.example/) "
    assert len(links(render_markdown(link * MAX_LINKS))) == MAX_LINKS
    html = render_markdown(link * (MAX_LINKS + 1))
    assert links(html) == []
    assert text_of(html).split() == (link * (MAX_LINKS + 1)).split()


def test_bare_addresses_are_links_up_to_the_limit():
    few = " ".join(f"https://a{n}.example/" for n in range(10))
    assert len(links(render_markdown(few))) == 10


def test_past_the_limit_bare_addresses_stay_text_but_written_links_work():
    many = " ".join(f"https://a{n}.example/" for n in range(MAX_LINKIFY))
    html = render_markdown("[written](https://w.example/) <https://auto.example/> " + many)
    assert [a.get("href") for a in links(html)] == [
        "https://w.example/",
        "https://auto.example/",
    ]
    assert "https://a199.example/" in text_of(html)


# --- idempotence ---------------------------------------------------------------------

ATOMS = [
    "a", "word", " ", "  ", "\n", "\n\n", "\t", "    ", "*", "_", "**", "__", "~~", "`",
    "```", ">", "> ", "- ", "* ", "1. ", "3) ", "# ", "### ", "|", "| a | b |\n|---|---|\n",
    "---", "===", "[", "]", "(", ")", "![", "](", '"', "'", "<", ">", "&", "&amp;", "&#60;",
    "&#x3c;", "&lt;", "\\", "@river", "@meadow", "@nobody", "a@b.example", "http://e.example",
    "https://x.example/p?q=1&r=2", "www.example.com", "mailto:a@b.example", "javascript:",
    "data:", "<b>", "</b>", "<script>", "<a href='x'>", "<img src=x onerror=alert(1)>",
    "é", "e\u0301", "\u00a0", "😀", "{", "}", "%", "%22", "=", ":", "/", "#", "\u200b",
]  # fmt: skip

IDEMPOTENCE_CASES = [
    "",
    RICH_SAMPLE,
    "[![alt](https://img.example/a.png)](https://example.com)",
    "[x](DATA:image/png;base64,AAAA)",
    '<a href="x">y</a> & < > " \'',
    "@river@meadow river@meadow.example",
    "| a |\n|---|\n| [l](https://e.example) @river |",
]


def _random_sources(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 40))) for _ in range(count)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_render_markdown_output_is_a_fixed_point_of_clean_html(seed):
    sources = IDEMPOTENCE_CASES + _random_sources(600, seed)
    broken = []
    for source in sources:
        html = render_markdown(source, mentions=KNOWN)
        if clean_html(html) != html:
            broken.append((source, html, clean_html(html)))
    assert broken == []


def test_clean_html_is_idempotent_on_hostile_html():
    samples = [
        "<p><a href=x><a href=y>nested</a></a></p>",
        "<table><tr><td><p>x</table>",
        "<ul><li><blockquote><li>y</ul>",
        "<svg><a xlink:href='javascript:x'>s</a></svg>",
        "<math><mi><a href='#'>m</a></mi></math>",
        "<p>unclosed <strong>bold <em>both</p>",
        "<noscript><p title='</noscript><img src=x onerror=alert(1)>'></noscript>",
    ]
    for sample in samples:
        once = clean_html(sample)
        assert clean_html(once) == once, sample
        assert find_executable_html(once) == [], sample


LINKIFY_SAMPLES = [
    "http://a.example", "HTTPS://A.EXAMPLE/x", "ftp://f.example", "//cdn.example/x",
    "mailto:a@b.example", "a@b.example", "localhost:8000", "www.example.com", "10.0.0.1",
    "example.com", "example.org/path", "пример.рф", "xn--p1ai.example", "see x.io)",
    "e.g. this", "no address here", "3.14 and 2.5", "end.", "a.b", "<http://x.example>",
]  # fmt: skip


def test_the_linkify_screen_never_hides_what_linkify_would_find():
    from forum.sanitize import _LINKIFY_SCREEN_RE, _PARSER

    pretest = _PARSER.linkify._linkify.pretest
    rng = random.Random(11)
    mixed = ["".join(rng.choice(ATOMS) for _ in range(8)) for _ in range(3000)]
    for text in LINKIFY_SAMPLES + mixed:
        assert _LINKIFY_SCREEN_RE.search(text) or not pretest(text), text
