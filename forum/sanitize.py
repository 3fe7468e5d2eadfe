"""The only module that turns member text into HTML.

Markdown is parsed by markdown-it-py with raw HTML switched off (the
``js-default`` preset), so a member's ``<script>`` arrives as visible text. The
rendered HTML then passes through nh3, an allowlist sanitiser, as a second,
independent line of defence. Remote images are never embedded: an image becomes
a plain link, so no page makes a request to another origin on a reader's behalf.

Rendering happens once, at write time; callers store both the source and the
result of :func:`render_markdown`.
"""

import re
from collections.abc import Collection

import nh3
from markdown_it import MarkdownIt
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


def _build_parser() -> MarkdownIt:
    md = MarkdownIt("js-default", {"breaks": True, "linkify": True, "maxNesting": 20})
    md.enable("linkify")
    md.add_render_rule("image", _image_as_link)
    md.core.ruler.after("linkify", "mentions", _link_mentions)
    return md


_PARSER = _build_parser()


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
    )


def render_markdown(source: str, *, mentions: Collection[str] = ()) -> str:
    """Render member Markdown to safe HTML.

    ``mentions`` holds the lower-cased handles that exist; only those become links.
    """
    return clean_html(_PARSER.render(source, {"mentions": frozenset(mentions)}))


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
