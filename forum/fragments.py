"""Rendered posts, shared between readers through the cache, and blank forms.

A thread page spent most of its time rendering ``partials/post.html`` thirty times
(bench/README.md, "Pages"). Each post's HTML is cached under a key computed from every
input the template reads: the post's fields, its author's handle, its context note, and
the few facts about the viewer that change it (signed in, author, supporter, blocker,
content-warning display, permissions). Nothing is invalidated: a change to any input is a
new key, so no write path can leave a stale post behind, and the old entry ages out.

Two parts of a post differ for every reader and stay out of the cache as holes, filled
for each page: the CSRF token of its forms, and "3 hours ago".

A member's whole page body (the thread's tools, its posts, the reply box) is kept the same
way (``bodies``): under the versions its rows were read with (forum.page_cache) and every
fact of its reader that the body template reads (``body_key``). Most members of a group
read a page in the same position, so one rendering serves them all.
"""

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.forms import Form
from django.template import Context
from django.template.loader import get_template
from django.utils import timezone

from . import content_warnings
from .cache import LocalFirstCache
from .templatetags.kinship import AGO_HOLE, ago

TEMPLATE = "partials/post.html"
FORM_TEMPLATE = "partials/form.html"
# What a thread page's body renders, the post template aside: part of every body's key.
BODY_TEMPLATES = (
    "forum/thread_body.html",
    "partials/pagination.html",
    "partials/slow_mode_form.html",
    TEMPLATE,
)
# Long enough that busy threads stay warm; short, because an old key's words (an edited
# or erased post) stay in the cache's memory, unreachable, until it expires.
TIMEOUT = 10 * 60
# Each process keeps the posts it served last (about 2 to 5 KiB each) in front of Redis.
cache = LocalFirstCache(size=2048, ttl=60)
# Page bodies (about 60 KiB for 30 posts) live as long as the pages they belong to.
BODY_TIMEOUT = 60
bodies = LocalFirstCache(size=128, ttl=10)
# NUL cannot reach a post from a member (forms refuse it, the sanitiser drops it), so the
# holes (this one and the template's ``ago_hole``) cannot be forged by what someone writes.
CSRF_HOLE = "\x00csrf\x00"


def _template_version(name: str) -> str:
    """Part of every key, so a deploy that changes the template changes every post."""
    version = _versions.get(name)
    if version is None:
        source = get_template(name).template.source
        version = _versions[name] = hashlib.blake2b(source.encode(), digest_size=8).hexdigest()
    return version


_versions: dict[str, str] = {}
_blank_forms: dict[tuple, str] = {}


def blank_form(form: Form) -> str:
    """An unbound form's fields as ``partials/form.html`` shows them: the same for every
    reader, so rendered once per process (widgets render through templates, slowly)."""
    fields = tuple((name, str(field.label)) for name, field in form.fields.items())
    key = (type(form), fields, _template_version(FORM_TEMPLATE))
    html = _blank_forms.get(key)
    if html is None:
        html = _blank_forms[key] = get_template(FORM_TEMPLATE).render({"form": form})
    return html


def row_digest(post) -> str:
    """What a post's key takes from its row, the same for every reader. forum.selectors
    keeps it with the rows it shares (``post.row_digest``), so a page hashes only what is
    its reader's; a post without one (read otherwise, or cached by an older release) is
    digested here."""
    inputs = (
        post.pk,
        post.is_opening,
        post.author_id,
        post.author.handle if post.author_id else None,
        post.created_at,
        post.edited_at,
        post.removed_by_author_at,
        post.hidden_at,
        post.hidden_pending_review,
        post.hidden_reason,
        post.content_warning,
        post.html,
        post.moderator_note,
        post.support_count,
        post.reply_count,
    )
    return hashlib.blake2b(repr(inputs).encode(), digest_size=16).hexdigest()


def _key(post, viewer: dict) -> str:
    note = post.context_note
    inputs = (
        _template_version(TEMPLATE),
        getattr(post, "row_digest", None) or row_digest(post),
        getattr(post, "display_depth", 0),
        (note.id, note.correction_html, note.sources) if note else None,
        post.continues_elsewhere,
        post.viewer_supports,
        post.author_blocked,
        content_warnings.display_for(post, viewer["user"]),
        viewer["user"].is_authenticated and post.author_id == viewer["user"].pk,
        # Asked only of a post held for review, as the template does (it costs a query).
        bool(viewer["may_approve"]) if post.is_hidden and post.hidden_pending_review else None,
        viewer["facts"],
    )
    return "post:" + hashlib.blake2b(repr(inputs).encode(), digest_size=16).hexdigest()


def render_posts(request, posts: Iterable, context: dict) -> None:
    """Set ``post.rendered`` on each post: its HTML for this viewer, from the cache where
    another reader (or this one) already rendered the same thing.

    ``context`` is the thread page's: group, thread and the viewer's permissions. The
    posts keep their holes, filled with the page's body (``Body``).
    """
    posts = [post for post in posts if post is not None]
    if not posts:
        return
    user = request.user
    viewer = {
        "user": user,
        "may_approve": context["may_approve"],
        "facts": (
            user.is_authenticated,
            context["group"].slug,
            context["thread"].pk,
            context["can_reply"],
            context["can_post"],
            context["can_lead"],
            context["can_hide"],
        ),
    }
    keys = {post.pk: _key(post, viewer) for post in posts}
    found = cache.get_many(list(keys.values()))
    missing = {}
    template = get_template(TEMPLATE).template
    for post in posts:
        html = found.get(keys[post.pk])
        if html is None:
            html = template.render(
                Context({**context, "post": post, "user": user, "csrf_token": CSRF_HOLE})
            )
            missing[keys[post.pk]] = html
        post.rendered = html
    if missing:
        cache.set_many(missing, TIMEOUT)


def body_key(thread, page: int, facts: tuple) -> str | None:
    """The key of a thread page's body for a reader whose every input of the body is in
    ``facts``; None when the thread's versions are unknown (the cache is not answering)."""
    if thread.page_versions is None:
        return None
    inputs = (
        BODY_FORM,
        tuple(_template_version(name) for name in BODY_TEMPLATES),
        thread.page_versions,
        thread.pk,
        page,
        facts,
    )
    return "body:" + hashlib.blake2b(repr(inputs).encode(), digest_size=16).hexdigest()


# How a Body keeps its texts; part of its key, so entries of another form are not read.
BODY_FORM = "utf-8"


@dataclass(frozen=True)
class Body:
    """A page, or its body, with its holes found once: the texts around them, and for each
    hole the moment its "ago" shows, or None for the reader's CSRF token. Filling it for a
    page is a join, not a search. The texts are kept encoded: a page goes out as bytes, and
    encoding a whole member's page (its few non-ASCII characters take the encoder off its
    fast path) cost more than a tenth of it."""

    texts: tuple[bytes, ...]
    holes: tuple[datetime | None, ...]

    @classmethod
    def of(cls, html: str) -> "Body":
        pieces = _HOLES.split(html)  # text, ago's moment or None, csrf or None, text, ...
        holes = tuple(datetime.fromisoformat(moment) if moment else None for moment in pieces[1::3])
        return cls(texts=tuple(text.encode() for text in pieces[::3]), holes=holes)

    @classmethod
    def text(cls, text: str) -> "Body":
        """Text with no holes (already escaped)."""
        return cls(texts=(text.encode(),), holes=())

    @property
    def has_forms(self) -> bool:
        return None in self.holes

    def fill(self, csrf_token: str | None) -> bytes:
        """This reader's page in UTF-8: "ago" as of now and their CSRF token (text without
        markup, in HTML the templates rendered, so the result is as safe as they are)."""
        if csrf_token is None and self.has_forms:
            raise ValueError("a body with forms needs the reader's CSRF token")
        token = csrf_token.encode() if csrf_token is not None else b""
        now = timezone.now()
        parts = [self.texts[0]]
        for hole, text in zip(self.holes, self.texts[1:], strict=True):
            parts += (token if hole is None else _ago_utf8(hole, (now - hole) // _MINUTE), text)
        return b"".join(parts)


_MINUTE = timedelta(minutes=1)


@functools.lru_cache(maxsize=4096)
def _ago_utf8(moment: datetime, minutes: int) -> bytes:
    # "ago" reads the same through each whole minute after ``moment`` (templatetags.kinship).
    return ago(moment, moment + minutes * _MINUTE).encode()


def joined(*bodies: Body) -> Body:
    """One body that reads as ``bodies`` one after the other, with all their holes. Texts
    between holes are shared, not copied: only those at the seams are new."""
    texts, holes = [b""], []
    for body in bodies:
        texts[-1] += body.texts[0]
        texts += body.texts[1:]
        holes += body.holes
    return Body(texts=tuple(texts), holes=tuple(holes))


def kept_body(key: str) -> Body | None:
    found = bodies.get(key)
    return None if found is None else Body(*found)


def keep_body(key: str, body: Body) -> None:
    # Plain values, not the class: a release that changes Body still reads older entries.
    bodies.set(key, (body.texts, body.holes), BODY_TIMEOUT)


_HOLES = re.compile(f"{AGO_HOLE.pattern}|({re.escape(CSRF_HOLE)})")
