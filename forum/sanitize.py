"""The only module that turns member text into HTML.

Markdown is parsed by markdown-it-py with raw HTML switched off (the
``js-default`` preset), so a member's ``<script>`` arrives as visible text. The
rendered HTML then passes through nh3, an allowlist sanitiser, as a second,
independent line of defence. Remote images are never embedded: an image becomes
a plain link, so no page makes a request to another origin on a reader's behalf.

Rendering happens once, at write time; callers store both the source and the
result of :func:`render_markdown`.

Every input of allowed length renders in bounded time, by design rather than by luck:
the parser's cost follows the number of tokens it builds, so text with more Markdown
punctuation or lines (``MAX_MARKUP``) or more written links (``MAX_LINKS``) than any
real post has is shown as plain text instead; bare addresses become links only while
there are few of them (``MAX_LINKIFY``); and content nested deeper than ``MAX_DEPTH``
(quotes in quotes, lists in lists) is shown as a paragraph at that depth, never dropped.
"""

import re
from collections.abc import Collection

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

ALLOWED_TAGS = frozenset(
    {
        "a", "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
        "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
ALLOWED_CLASSES = {"a": {"mention"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow ugc noopener noreferrer"

# A handle as accounts.HANDLE_PATTERN allows, after an "@" that does not follow
# a word character (so e-mail addresses are left alone).
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_-]{3,30})(?![\w-])")

# The inline parser's recursion limit (links in emphasis in links ...); it also bounds
# the work each "[" costs.
MAX_NESTING = 20
# Block nesting (quotes, lists) deeper than this is shown as text at this depth.
MAX_DEPTH = 16
# Every character at which the inline parser stops to try its rules (Markdown
# punctuation and line breaks) costs it a rule attempt or a token. A long post has a few
# hundred; past this many the text is shown as plain text, which keeps the worst case
# a small multiple of a typical long post.
MAX_MARKUP = 3_000
# Links written out ("](", "<", "@"): each costs the link parser a scan for its
# destination. A real post has a few dozen; past this many the text is plain text too.
MAX_LINKS = 300
_LINK_SIGN_RE = re.compile(r"\]\(|<|@")
# Bare addresses worth a look for linkify (a scheme, "www.", an e-mail's "@", a dot
# before letters): past this many, only written links ([text](url), <url>) are links.
MAX_LINKIFY = 200
_LINK_CANDIDATE_RE = re.compile(r"://|www\.|@|\.[^\W\d_]{2}")


def _image_as_link(self, tokens: list[Token], idx: int, options, env) -> str:
    token = tokens[idx]
    href = token.attrGet("src") or ""
    label = "".join(child.content for child in token.children or []) or href
    return f'<a href="{_escape(href)}">{_escape("Image: " + label)}</a>' if href else _escape(label)


def _escape(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _link_mentions(state: StateCore) -> None:
    """Turn ``@handle`` into a profile link for handles the caller knows exist."""
    known: Collection[str] = state.env.get("mentions") or ()
    if not known:
        return
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        inside_link = 0
        for token in block.children:
            if token.type == "link_open":
                inside_link += 1
            elif token.type == "link_close":
                inside_link -= 1
            if token.type != "text" or inside_link:
                children.append(token)
                continue
            children.extend(_split_mentions(token, known))
        block.children = children


def _split_mentions(token: Token, known: Collection[str]) -> list[Token]:
    out: list[Token] = []
    text = token.content
    cursor = 0
    for match in MENTION_RE.finditer(text):
        handle = match.group(1)
        if handle.lower() not in known:
            continue
        if match.start() > cursor:
            out.append(_text_token(text[cursor : match.start()], token.level))
        link = Token("link_open", "a", 1, level=token.level)
        link.attrs = {"href": f"/u/{handle}/", "class": "mention"}
        out.extend([link, _text_token("@" + handle, token.level + 1), Token("link_close", "a", -1)])
        cursor = match.end()
    if cursor == 0:
        return [token]
    if cursor < len(text):
        out.append(_text_token(text[cursor:], token.level))
    return out


def _text_token(content: str, level: int) -> Token:
    token = Token("text", "", 0, level=level)
    token.content = content
    return token


def _too_deep(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """At ``MAX_DEPTH``, the rest of the block is one paragraph: its markers stay text."""
    if state.level < MAX_DEPTH:
        return False
    paragraph = state.push("paragraph_open", "p", 1)
    paragraph.map = [start_line, end_line]
    inline = state.push("inline", "", 0)
    inline.content = state.getLines(start_line, end_line, state.blkIndent, False).strip()
    inline.map = [start_line, end_line]
    inline.children = []
    state.push("paragraph_close", "p", -1)
    state.line = end_line
    return True


# Everything linkify-it's own pretest can match starts with one of these (its schemas,
# "localhost", "www.", an IP's ".1", a dot before a top-level domain, an e-mail's "@").
# Its pretest is a large regular expression run on every paragraph; this screen, much
# cheaper, spares it the paragraphs that hold no address at all.
_LINKIFY_SCREEN_RE = re.compile(
    r"https?:|ftp:|//|mailto:|localhost|www\.|\.\d|\.[^\W\d_]{2}|@", re.IGNORECASE
)


class _ScreenedLinkify:
    """linkify-it behind a cheap screen: the same answers, fewer expensive pretests."""

    def __init__(self, linkify) -> None:
        self._linkify = linkify

    def pretest(self, text: str) -> bool:
        return bool(_LINKIFY_SCREEN_RE.search(text)) and self._linkify.pretest(text)

    def __getattr__(self, name: str):
        return getattr(self._linkify, name)


def _build_parser(*, linkify: bool) -> MarkdownIt:
    md = MarkdownIt("js-default", {"breaks": True, "linkify": linkify, "maxNesting": MAX_NESTING})
    md.enable("linkify")
    md.add_render_rule("image", _image_as_link)
    md.core.ruler.after("linkify", "mentions", _link_mentions)
    md.block.ruler.before("table", "too_deep", _too_deep)
    md.linkify = _ScreenedLinkify(md.linkify)
    return md


_PARSER = _build_parser(linkify=True)
_PARSER_NO_LINKIFY = _build_parser(linkify=False)
_MARKUP_RE = _PARSER.inline.terminator_re
_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t]*\n\s*")


def _render_plain(source: str) -> str:
    """Text as written, in paragraphs with line breaks, no Markdown: linear in its length."""
    paragraphs = (_escape(part) for part in _PARAGRAPH_BREAK_RE.split(source.strip()) if part)
    return "".join("<p>" + part.replace("\n", "<br>\n") + "</p>\n" for part in paragraphs)


def clean_html(html: str) -> str:
    """Sanitise HTML with the allowlist. Idempotent: clean(clean(x)) == clean(x)."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        allowed_classes={tag: set(classes) for tag, classes in ALLOWED_CLASSES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    ).lstrip("\ufeff")  # the parser drops a leading BOM: gone now, a second pass is a no-op


def render_markdown(source: str, *, mentions: Collection[str] = ()) -> str:
    """Render member Markdown to safe HTML.

    ``mentions`` holds the lower-cased handles that exist; only those become links.
    """
    if len(_MARKUP_RE.findall(source)) > MAX_MARKUP or (
        len(_LINK_SIGN_RE.findall(source)) > MAX_LINKS
    ):
        return clean_html(_render_plain(source))
    many_links = len(_LINK_CANDIDATE_RE.findall(source)) > MAX_LINKIFY
    parser = _PARSER_NO_LINKIFY if many_links else _PARSER
    return clean_html(parser.render(source, {"mentions": frozenset(mentions)}))


def mentioned_handles(source: str, *, limit: int = 50) -> list[str]:
    """Lower-cased ``@handle`` candidates in order of first appearance (existing or not)."""
    seen: dict[str, None] = {}
    for match in MENTION_RE.finditer(source):
        seen.setdefault(match.group(1).lower(), None)
        if len(seen) >= limit:
            break
    return list(seen)


_MENTION_LINK_RE = re.compile(r'<a href="/u/([A-Za-z0-9_-]{3,30})/" class="mention"')


def linked_mentions(html: str) -> list[str]:
    """Lower-cased handles that ``render_markdown`` turned into mention links, in order.

    Only these count as mentions: an ``@handle`` in code or inside a link is not one.
    """
    seen: dict[str, None] = {}
    for match in _MENTION_LINK_RE.finditer(html):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)
