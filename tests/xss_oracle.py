"""A reusable oracle for "this HTML cannot run anything", and the XSS payload corpus.

The oracle parses HTML with html5lib, the WHATWG parsing algorithm browsers use, and
inspects the resulting tree, so it sees what a browser would build, including the
"mis-nested" and entity-encoded tricks that a text search would miss.

Use it on fragments of member-written content (a rendered post, a chat message, a
bio): a whole page legitimately contains the site's own <script src>, <form>,
<input> and <link> elements.

    from tests.xss_oracle import assert_no_executable_html, load_payloads

    for payload in load_payloads():
        assert_no_executable_html(render(payload), context=f"payload {payload!r}")
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import html5lib
import pytest

CORPUS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "xss"
CORPUS_FILE = CORPUS_DIR / "payloadbox-xss-payload-list.txt"
CORPUS_SIZE = 6_613

FORBIDDEN_ELEMENTS = frozenset(
    {
        "script",
        "iframe",
        "object",
        "embed",
        "style",
        "svg",
        "math",
        "base",
        "form",
        "frame",
        "frameset",
        "meta",
        "link",
        "img",
        "video",
        "audio",
        "template",
        "input",
        "button",
        "textarea",
        "select",
    }
)
FORBIDDEN_ATTRIBUTES = frozenset({"style", "srcdoc", "formaction"})
# Attributes whose value a browser follows or loads as a URL. The brief names href,
# src, action and xlink:href; the others are just as dangerous and cost nothing.
URL_ATTRIBUTES = frozenset(
    {
        "href",
        "src",
        "action",
        "xlink:href",
        "formaction",
        "poster",
        "background",
        "data",
        "codebase",
        "cite",
    }
)
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})

_NAMESPACE_PREFIXES = {
    "http://www.w3.org/1999/xlink": "xlink",
    "http://www.w3.org/XML/1998/namespace": "xml",
    "http://www.w3.org/2000/xmlns/": "xmlns",
}
# Browsers drop tab and newline anywhere in a URL and trim C0 controls and spaces
# at its ends; removing every whitespace and control character is stricter still.
_URL_NOISE = re.compile(r"[\x00-\x20\x7f-\x9f\s\u200b-\u200d\ufeff]+")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):")


def _local_name(qualified: str) -> str:
    """'{http://www.w3.org/2000/svg}svg' -> 'svg'."""
    return qualified.rsplit("}", 1)[-1].lower()


def _attribute_name(qualified: str) -> str:
    """'{http://www.w3.org/1999/xlink}href' -> 'xlink:href'; 'onClick' -> 'onclick'."""
    if qualified.startswith("{"):
        namespace, _, local = qualified[1:].partition("}")
        prefix = _NAMESPACE_PREFIXES.get(namespace)
        return f"{prefix}:{local}".lower() if prefix else local.lower()
    return qualified.lower()


def url_scheme(value: str) -> str | None:
    """The scheme a browser would see in an attribute value, lower-cased, or None
    for a relative URL (``/u/river/``, ``#top``, ``//host/path``, ``page?x=1``)."""
    cleaned = _URL_NOISE.sub("", value).lower()
    match = _SCHEME.match(cleaned)
    return match.group(1) if match else None


def find_executable_html(html: str) -> list[str]:
    """Every reason this HTML could run script or load something it should not."""
    problems: list[str] = []
    fragment = html5lib.parseFragment(html, treebuilder="etree", namespaceHTMLElements=False)
    for element in fragment.iter():
        if not isinstance(element.tag, str):  # comments, processing instructions
            continue
        name = _local_name(element.tag)
        if name in FORBIDDEN_ELEMENTS:
            problems.append(f"<{name}> element")
        for raw_name, value in element.attrib.items():
            attribute = _attribute_name(raw_name)
            local = attribute.rsplit(":", 1)[-1]
            if local.startswith("on"):
                problems.append(f"event-handler attribute {attribute}={value!r} on <{name}>")
            if attribute in FORBIDDEN_ATTRIBUTES or local in FORBIDDEN_ATTRIBUTES:
                problems.append(f"{attribute}={value!r} attribute on <{name}>")
            if attribute in URL_ATTRIBUTES or local in {"href", "src", "action"}:
                scheme = url_scheme(value)
                if scheme is not None and scheme not in SAFE_SCHEMES:
                    problems.append(f"{attribute}={value!r} on <{name}> has scheme {scheme!r}")
    return problems


def assert_no_executable_html(html: str, *, context: str) -> None:
    """Fail with every problem found, naming ``context`` (e.g. the payload)."""
    problems = find_executable_html(html)
    if problems:
        pytest.fail(
            f"executable HTML in {context}:\n  " + "\n  ".join(problems) + f"\noutput: {html!r}",
            pytrace=False,
        )


def corpus_available() -> bool:
    return CORPUS_FILE.is_file()


def load_payloads() -> list[str]:
    """The 6,613 payloads, one per line, in file order (duplicates kept).

    Where the shared corpus folder is absent the calling test is skipped with the
    reason, except on CI (``CI=true``), where a missing corpus is a failure.
    """
    if not corpus_available():
        reason = (
            f"XSS corpus not found at {CORPUS_FILE}: the shared folder ../shared/xss "
            "next to the project root is absent, so the corpus tests cannot run."
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " It must be present on CI.", pytrace=False)
        pytest.skip(reason)
    text = CORPUS_FILE.read_text(encoding="utf-8")
    payloads = [line for line in text.split("\n") if line != ""]
    assert len(payloads) == CORPUS_SIZE, f"corpus has {len(payloads)} payloads, not {CORPUS_SIZE}"
    return payloads


def batched(
    items: list[str], *, size: int, max_chars: int | None = None, separator: str = "\n\n"
) -> Iterator[list[str]]:
    """Consecutive groups of at most ``size`` items whose ``separator``-joined length
    stays within ``max_chars``; an item longer than that on its own is alone."""
    batch: list[str] = []
    length = 0
    for item in items:
        extra = len(item) + (len(separator) if batch else 0)
        if batch and (len(batch) >= size or (max_chars and length + extra > max_chars)):
            yield batch
            batch, length = [], 0
            extra = len(item)
        batch.append(item)
        length += extra
    if batch:
        yield batch


# --- whole pages ---------------------------------------------------------------------------

# Elements no Kinship page has of its own: one in a page can only have come from a payload.
PAGE_FORBIDDEN_ELEMENTS = frozenset(
    {
        "iframe", "frame", "frameset", "object", "embed", "applet", "base", "svg", "math",
        "img", "image", "video", "audio", "source", "track", "picture", "portal", "template",
        "isindex", "xmp", "plaintext", "noembed", "noframes",
    }
)  # fmt: skip
_SITE_LINK_RELS = frozenset({"stylesheet", "icon"})
_STYLE_LOADS = re.compile(r"@import|url\s*\(|expression\s*\(|behavior\s*:", re.IGNORECASE)


def find_executable_page(html: str) -> list[str]:
    """Every reason a whole page could run script a member wrote, or load from elsewhere.

    A page has the site's own ``<script src="/static/...">``, ``json_script`` data,
    stylesheets, forms and meta tags; anything else script-capable, any event-handler,
    style, srcdoc or formaction attribute, any URL with a scheme other than http, https
    and mailto, and any meta refresh, counts."""
    problems: list[str] = []
    document = html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue
        name = _local_name(element.tag)
        attributes = {_attribute_name(k): v for k, v in element.attrib.items()}
        if name in PAGE_FORBIDDEN_ELEMENTS:
            problems.append(f"<{name}> element {attributes!r}")
        elif name == "script":
            src = attributes.get("src", "")
            own_file = src.startswith("/static/") and not (element.text or "").strip()
            data = attributes.get("type") == "application/json" and not src
            if not (own_file or data) or set(attributes) - {"src", "defer", "type", "id"}:
                problems.append(f"<script> {attributes!r}: {(element.text or '')[:80]!r}")
        elif name == "link":
            rel = set(attributes.get("rel", "").lower().split())
            if not rel or rel - _SITE_LINK_RELS or not attributes.get("href", "").startswith("/"):
                problems.append(f"<link> {attributes!r}")
        elif name == "meta" and "http-equiv" in attributes:
            problems.append(f"<meta http-equiv> {attributes!r}")
        elif name == "style" and _STYLE_LOADS.search(element.text or ""):
            problems.append(f"<style> that loads or runs something: {element.text[:80]!r}")
        for attribute, value in attributes.items():
            local = attribute.rsplit(":", 1)[-1]
            if local.startswith("on"):
                problems.append(f"event-handler attribute {attribute}={value!r} on <{name}>")
            if local in FORBIDDEN_ATTRIBUTES:
                problems.append(f"{attribute}={value!r} attribute on <{name}>")
            if attribute in URL_ATTRIBUTES or local in {"href", "src", "action"}:
                scheme = url_scheme(value)
                if scheme is not None and scheme not in SAFE_SCHEMES:
                    problems.append(f"{attribute}={value!r} on <{name}> has scheme {scheme!r}")
    return problems
