"""Full-text search over the threads, posts and chat messages a member may read.

Who reads which group and which rooms is moderation.permissions' answer; on top of it,
search never shows what moderation hid or held for review, what an author removed, or
what someone the searcher blocked wrote. A member barred from a private group (a ban, a
suspension) searches it no more. Chat is searched only in rooms of the kinds named in
CHAT_KINDS, so any other kind (direct conversations) stays out unless added here.

PostgreSQL: websearch_to_tsquery against to_tsvector('english', ...), exactly the
expressions of the GIN indexes in migration 0014_search_indexes. Elsewhere (SQLite in
development): every term by icontains, ranked by how often the terms occur, then by date.

Excerpts come from the stored source text, never from the stored HTML: the text is
HTML-escaped first and only then are the matches wrapped in <mark>.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.postgres.search import (
    SearchHeadline,
    SearchQuery,
    SearchRank,
    SearchVectorField,
)
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import F, Func, IntegerField, Q, QuerySet, Value
from django.db.models.functions import Length, Lower, Replace
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString

from moderation import permissions

from . import content_warnings
from .models import (
    Block,
    ChatMessage,
    ChatRoom,
    LiveSession,
    Membership,
    Post,
    SessionParticipant,
    SupportGroup,
    Thread,
    User,
)

QUERY_MIN = 2
QUERY_MAX = 200
PER_PAGE = 20
EXCERPT_CHARS = 240
KINDS = {"posts": "Posts", "threads": "Thread titles", "chat": "Chat messages"}
CHAT_KINDS = (ChatRoom.Kind.GROUP, ChatRoom.Kind.SESSION)
HANDLE = re.compile(r"[A-Za-z0-9_-]{1,30}")
# Dates outside these are typing slips (and would overflow near year 1 or 9999).
DATES = (date(1900, 1, 1), date(2999, 12, 31))

# ts_headline marks matches with these; member text cannot hold them (the write path
# refuses control characters), and _from_headline copes if some old text does.
_START, _STOP = "\x02", "\x03"
_TOKENS = re.compile(r'(-?)"([^"]*)"|(\S+)')
_EDGE_PUNCTUATION = "\"'.,;:!?()[]{}<>*_~`#\u201c\u201d\u2018\u2019\u00ab\u00bb"


class EnglishVector(Func):
    """to_tsvector('english', column): the GIN indexes' expression, config inline so the
    planner matches it whatever the driver does with parameters."""

    template = "to_tsvector('english'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


@dataclass(frozen=True)
class Terms:
    """The query as words for the fallback search and its highlighting."""

    wanted: list[str]
    unwanted: list[str]


_NO_WARNING = content_warnings.Display(content_warnings.SHOW, (), ())


@dataclass
class Hit:
    kind: str  # "post", "thread" or "chat"
    group: SupportGroup
    title: str  # the thread's title, or the room's or session's name
    title_html: SafeString  # escaped, with matches marked for a thread hit
    author: str | None  # handle; None for a closed account
    created_at: datetime
    excerpt: SafeString
    url: str
    # Content warnings (forum.content_warnings), read as the thread page reads them: the
    # excerpt's, and the thread title's; ``cw_text`` is the free-text warning.
    cw: content_warnings.Display = _NO_WARNING
    cw_text: str = ""
    title_cw: content_warnings.Display = _NO_WARNING


@dataclass
class Results:
    query: str
    hits: list[Hit] = field(default_factory=list)
    page: int = 1
    has_next: bool = False

    @property
    def has_previous(self) -> bool:
        return self.page > 1


# --- input ------------------------------------------------------------------------------


def clean_query(value: str | None) -> str:
    """The query as searched: invisible and control characters stripped, whitespace
    collapsed, 2 to 200 characters; ValidationError({"q": ...}) otherwise."""
    text = unicodedata.normalize("NFC", " ".join((value or "").split()))
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    text = " ".join(text.split())
    if not text:
        raise ValidationError({"q": "Type a word or two to search for."})
    if len(text) > QUERY_MAX:
        raise ValidationError(
            {"q": f"A search is at most {QUERY_MAX} characters; this one is {len(text)}."}
        )
    terms = parse_terms(text)
    if not terms.wanted and terms.unwanted:
        raise ValidationError({"q": "Say what to look for, not only what to leave out."})
    if not any(len(term) >= QUERY_MIN for term in terms.wanted):
        raise ValidationError({"q": f"Type at least {QUERY_MIN} letters to search for."})
    return text


def parse_terms(text: str) -> Terms:
    """Words and "quoted phrases"; a leading minus leaves a word out (as websearch does)."""
    wanted, unwanted = [], []
    for match in _TOKENS.finditer(text):
        negated, phrase, word = match.group(1), match.group(2), match.group(3)
        if phrase is not None:
            term = " ".join(phrase.split())
        else:
            negated = "-" if word.startswith("-") else ""
            term = word.lstrip("-").strip(_EDGE_PUNCTUATION)
            if term.lower() == "or" and not negated:
                continue  # websearch's OR; the fallback simply wants the other words
        if term:
            (unwanted if negated else wanted).append(term)
    return Terms(wanted=wanted, unwanted=unwanted)


def _clean_author(author: str | None) -> str | None:
    handle = (author or "").strip().removeprefix("@")
    if not handle:
        return None
    if not HANDLE.fullmatch(handle):
        raise ValidationError(
            {"author": "A handle is letters, digits, hyphens and underscores, up to 30."}
        )
    return handle


def _day_bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, ...]:
    """Whole days in the current time zone, both ends included."""
    for name, day in (("date_from", date_from), ("date_to", date_to)):
        if day and not DATES[0] <= day <= DATES[1]:
            raise ValidationError(
                {name: f"Choose a date between {DATES[0].year} and {DATES[1].year}."}
            )
    if date_from and date_to and date_from > date_to:
        raise ValidationError({"date_to": "The end date is before the start date."})
    zone = timezone.get_current_timezone()
    start = datetime.combine(date_from, time.min, zone) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), time.min, zone) if date_to else None
    return start, end


# --- what the searcher may read -------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    threads: Q  # on Thread
    room_group_ids: list[int] | None  # None: every group's rooms (site moderators)
    blocked: Any  # a subquery of the authors the searcher blocked, or None


def _scope(user, group: SupportGroup | None) -> _Scope:
    """Public groups for everyone; private groups for their members (not while barred)
    and site moderators; rooms where moderation.permissions lets the searcher read."""
    public = Q(group__visibility=SupportGroup.Visibility.PUBLIC)
    if permissions.is_site_moderator(user):
        threads, room_groups = Q(), None
    elif not user.is_authenticated:
        threads, room_groups = public, []
    else:
        mine = []
        for membership in Membership.objects.filter(user=user).select_related("group"):
            member_of = membership.group
            # No further query per group (see forum.selectors.with_viewer_role).
            member_of.viewer_role, member_of.viewer_pk = membership.role, user.pk
            mine.append(member_of)
        private = [
            g.pk
            for g in mine
            if g.is_private
            and permissions.can_view_group(user, g)
            and permissions.barred_by(user, g) is None
        ]
        threads = public | Q(group_id__in=private)
        room_groups = [g.pk for g in mine if permissions.can_read_rooms(user, g)]
    if group is not None:
        threads &= Q(group_id=group.pk)
        room_groups = (
            [group.pk] if room_groups is None else [pk for pk in room_groups if pk == group.pk]
        )
    blocked = (
        Block.objects.filter(blocker=user).values("blocked_id") if user.is_authenticated else None
    )
    return _Scope(threads=threads, room_group_ids=room_groups, blocked=blocked)


def _prefixed(q: Q, prefix: str) -> Q:
    """The same conditions seen from a related model (``thread__`` from a post)."""
    clone = Q(*[_prefixed_child(child, prefix) for child in q.children], _connector=q.connector)
    clone.negated = q.negated
    return clone


def _prefixed_child(child, prefix: str):
    if isinstance(child, Q):
        return _prefixed(child, prefix)
    lookup, value = child
    return (f"{prefix}{lookup}", value)


def _erased_transcripts(room_group_ids: list[int] | None) -> list[int]:
    """Session rooms whose transcript is due for erasure but not swept yet: their pages
    no longer show the chat, so neither does search."""
    now = timezone.now()
    grace = timedelta(minutes=settings.KINSHIP_SESSION_GRACE_MINUTES)
    sessions = LiveSession.objects.filter(
        transcript__in=(LiveSession.Transcript.DELETE, LiveSession.Transcript.KEEP_DAYS),
        transcript_purged_at__isnull=True,
    ).filter(Q(ended_at__isnull=False) | Q(ends_at__lte=now - grace))
    if room_group_ids is not None:
        sessions = sessions.filter(group_id__in=room_group_ids)
    sessions = sessions.only(
        "room_id", "transcript", "transcript_days", "transcript_purged_at", "ended_at", "ends_at"
    )
    return [s.room_id for s in sessions if s.purge_due_at() <= now]


def _readable_rooms(user, scope: _Scope) -> Q | None:
    """Conditions on ChatMessage for the rooms the searcher may read; None for none.

    A session's room: while its transcript exists, and not for someone the session's
    leaders removed from it."""
    if scope.room_group_ids == []:
        return None
    rooms = Q(room__kind__in=CHAT_KINDS)
    if scope.room_group_ids is not None:
        rooms &= Q(room__group_id__in=scope.room_group_ids)
    removed_from = SessionParticipant.objects.filter(
        user_id=user.pk, removed_at__isnull=False
    ).values("session__room_id")
    session_readable = Q(
        room__live_session__cancelled_at__isnull=True,
        room__live_session__transcript_purged_at__isnull=True,
    ) & ~Q(room_id__in=removed_from)
    rooms &= ~Q(room__kind=ChatRoom.Kind.SESSION) | session_readable
    erased = _erased_transcripts(scope.room_group_ids)
    if erased:
        rooms &= ~Q(room_id__in=erased)
    return rooms


# --- the search -------------------------------------------------------------------------


def _uses_postgres() -> bool:
    return connection.vendor == "postgresql"


def _matching(qs: QuerySet, column: str, query: str, terms: Terms) -> QuerySet:
    """``qs`` narrowed to rows whose ``column`` matches, with a ``rank``."""
    if _uses_postgres():
        ts_query = SearchQuery(query, config="english", search_type="websearch")
        return (
            qs.annotate(document=EnglishVector(column))
            .filter(document=ts_query)
            .annotate(rank=SearchRank(F("document"), ts_query))
        )
    for term in terms.wanted:
        qs = qs.filter(**{f"{column}__icontains": term})
    for term in terms.unwanted:
        qs = qs.exclude(**{f"{column}__icontains": term})
    occurrences = Value(0, output_field=IntegerField())
    for term in terms.wanted:
        # (len(text) - len(text without the term)) / len(term): how often it occurs.
        lowered = Lower(column)
        without = Replace(lowered, Value(term.lower()), Value(""))
        occurrences = occurrences + (Length(lowered) - Length(without)) / len(term)
    return qs.annotate(rank=occurrences)


def search(
    user,
    *,
    query: str,
    group: SupportGroup | None = None,
    author: str | None = None,
    kind: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    page: int = 1,
) -> Results:
    """One page of what ``user`` may read that matches ``query``, best first.

    ``group`` must be one the user may see (the view 404s otherwise); ``kind`` is one of
    KINDS or None for all. Raises ValidationError({field: message}) for bad input.
    """
    query = clean_query(query)
    handle = _clean_author(author)
    if kind and kind not in KINDS:
        raise ValidationError({"kind": "Choose posts, thread titles or chat messages."})
    start, end = _day_bounds(date_from, date_to)
    page = max(1, page)
    terms = parse_terms(query)
    scope = _scope(user, group)

    def narrowed(qs: QuerySet, author_field: str = "author") -> QuerySet:
        if handle:
            qs = qs.filter(**{f"{author_field}__handle__iexact": handle})
        if scope.blocked is not None:
            qs = qs.exclude(**{f"{author_field}__in": scope.blocked})
        if start:
            qs = qs.filter(created_at__gte=start)
        if end:
            qs = qs.filter(created_at__lt=end)
        return qs

    parts = []
    if kind in (None, "", "posts"):
        posts = Post.objects.filter(
            _prefixed(scope.threads, "thread__"),
            hidden_at__isnull=True,
            removed_by_author_at__isnull=True,
            thread__hidden_at__isnull=True,
        )
        parts.append(("post", _matching(narrowed(posts), "source", query, terms)))
    if kind in (None, "", "threads"):
        threads = Thread.objects.filter(scope.threads, hidden_at__isnull=True)
        parts.append(("thread", _matching(narrowed(threads), "title", query, terms)))
    if kind in (None, "", "chat") and user.is_authenticated:
        rooms = _readable_rooms(user, scope)
        if rooms is not None:
            messages = ChatMessage.objects.filter(rooms, removed_at__isnull=True)
            parts.append(("chat", _matching(narrowed(messages), "source", query, terms)))

    rows = _ranked_page(parts, page)
    hits = _hits(user, rows[:PER_PAGE], query, terms)
    return Results(query=query, hits=hits, page=page, has_next=len(rows) > PER_PAGE)


def _ranked_page(parts: list[tuple[str, QuerySet]], page: int) -> list[tuple[str, int]]:
    """(kind, pk) for one page and one more row, from one UNION query ordered by rank."""
    if not parts:
        return []
    selects = [
        qs.annotate(kind=Value(name)).values("pk", "created_at", "rank", "kind").order_by()
        for name, qs in parts
    ]
    union = selects[0].union(*selects[1:], all=True) if len(selects) > 1 else selects[0]
    start = (page - 1) * PER_PAGE
    ordered = union.order_by("-rank", "-created_at", "kind", "-pk")
    return [(row["kind"], row["pk"]) for row in ordered[start : start + PER_PAGE + 1]]


# --- the page's hits, with excerpts -----------------------------------------------------


def _with_headline(qs: QuerySet, column: str, query: str) -> QuerySet:
    """On PostgreSQL, ``headline``: the whole text with every match (by stem, as the
    search matched) between markers. Only HighlightAll keeps the text whole: ts_headline
    otherwise drops anything that looks like a tag. The excerpt is cut in Python."""
    if not _uses_postgres():
        return qs
    ts_query = SearchQuery(query, config="english", search_type="websearch")
    return qs.annotate(
        headline=SearchHeadline(
            column,
            ts_query,
            config="english",
            start_sel=_START,
            stop_sel=_STOP,
            highlight_all=True,
        )
    )


def _marked(obj, text: str, terms: Terms, *, length: int | None = EXCERPT_CHARS) -> SafeString:
    """``text`` (or ``obj``'s PostgreSQL headline of it) as an escaped, marked excerpt."""
    headline = getattr(obj, "headline", None)
    if headline is not None:
        plain, ranges = _from_headline(headline)
    else:
        plain, ranges = _from_terms(text, terms.wanted)
    return excerpt_html(plain, ranges, length=length)


def _hits(user, rows: list[tuple[str, int]], query: str, terms: Terms) -> list[Hit]:
    """The page's rows as Hits, in rank order: one query per kind on the page."""
    ids = {name: [pk for kind, pk in rows if kind == name] for name in ("post", "thread", "chat")}
    found: dict[tuple[str, int], Hit] = {}
    if ids["post"]:
        posts = Post.objects.filter(pk__in=ids["post"]).select_related("thread__group", "author")
        for post in _with_headline(posts, "source", query):
            found["post", post.pk] = _post_hit(user, post, terms)
    if ids["thread"]:
        threads = Thread.objects.filter(pk__in=ids["thread"]).select_related("group", "author")
        openings = Post.objects.filter(
            thread_id__in=ids["thread"],
            parent__isnull=True,
            hidden_at__isnull=True,
            removed_by_author_at__isnull=True,
        )
        opening_by_thread = {
            p.thread_id: p
            for p in _with_headline(
                openings.only(
                    "thread_id", "author_id", "source", "content_warning", "cw_categories"
                ),
                "source",
                query,
            )
        }
        for thread in _with_headline(threads, "title", query):
            found["thread", thread.pk] = _thread_hit(
                user, thread, opening_by_thread.get(thread.pk), terms
            )
    if ids["chat"]:
        messages = ChatMessage.objects.filter(pk__in=ids["chat"]).select_related(
            "room__group", "room__live_session", "author"
        )
        for message in _with_headline(messages, "source", query):
            found["chat", message.pk] = _chat_hit(message, terms)
    return [found[row] for row in rows if row in found]


def _handle(author: User | None) -> str | None:
    return author.handle if author is not None else None


def _post_hit(user, post: Post, terms: Terms) -> Hit:
    thread = post.thread
    if post.parent_id is None:
        url = f"{thread.get_absolute_url()}#post-{post.pk}"
    else:  # the reply with its own replies below it, wherever it sits in the thread
        url = reverse(
            "subthread",
            kwargs={"slug": thread.group.slug, "thread_id": thread.pk, "post_id": post.pk},
        )
        url = f"{url}#post-{post.pk}"
    return Hit(
        kind="post",
        group=thread.group,
        title=thread.title,
        title_html=escape(thread.title),
        author=_handle(post.author),
        created_at=post.created_at,
        excerpt=_marked(post, post.source, terms),
        url=url,
        cw=content_warnings.display_for(post, user),
        cw_text=post.content_warning,
        title_cw=content_warnings.display_for(thread, user),
    )


def _thread_hit(user, thread: Thread, opening: Post | None, terms: Terms) -> Hit:
    return Hit(
        kind="thread",
        group=thread.group,
        title=thread.title,
        title_html=_marked(thread, thread.title, terms, length=None),
        author=_handle(thread.author),
        created_at=thread.created_at,
        excerpt=_marked(opening, opening.source, terms) if opening else excerpt_html("", []),
        url=thread.get_absolute_url(),
        cw=content_warnings.display_for(opening, user) if opening else _NO_WARNING,
        cw_text=opening.content_warning if opening else "",
        title_cw=content_warnings.display_for(thread, user),
    )


def _chat_hit(message: ChatMessage, terms: Terms) -> Hit:
    room = message.room
    if room.kind == ChatRoom.Kind.SESSION:
        session = room.live_session
        title, base = f"Live session: {session.title}", session.get_absolute_url()
    else:
        title, base = f"Chat: {room.name}", room.get_absolute_url()
    return Hit(
        kind="chat",
        group=room.group,
        title=title,
        title_html=escape(title),
        author=_handle(message.author),
        created_at=message.created_at,
        excerpt=_marked(message, message.source, terms),
        url=f"{base}#msg-{message.pk}",
    )


def _from_headline(headline: str) -> tuple[str, list[tuple[int, int]]]:
    """ts_headline's output as plain text and the spans its markers enclose. A stray
    marker (should old text hold one) only toggles marking: the HTML stays whole."""
    plain, ranges, at, opened = [], [], 0, None
    for piece in re.split(f"([{_START}{_STOP}])", " ".join(headline.split())):
        if piece == _START:
            opened = at if opened is None else opened
        elif piece == _STOP:
            if opened is not None and at > opened:
                ranges.append((opened, at))
            opened = None
        else:
            plain.append(piece)
            at += len(piece)
    if opened is not None and at > opened:
        ranges.append((opened, at))
    return "".join(plain), ranges


def _from_terms(text: str, terms: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with whitespace collapsed, and where ``terms`` occur in it (any case)."""
    plain = " ".join(text.split())
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    if not words:
        return plain, []
    pattern = re.compile("|".join(re.escape(word) for word in words), re.IGNORECASE)
    return plain, [match.span() for match in pattern.finditer(plain)]


def excerpt_html(
    plain: str, ranges: list[tuple[int, int]], *, length: int | None = EXCERPT_CHARS
) -> SafeString:
    """About ``length`` characters of ``plain`` from a little before its first marked
    span (all of it when ``length`` is None): HTML-escaped, the spans in <mark>."""
    start, end = 0, len(plain)
    if length is not None:
        first = ranges[0][0] if ranges else 0
        if first > length // 3:
            start = plain.rfind(" ", 0, first - length // 3) + 1
        if start + length < len(plain):
            space = plain.rfind(" ", start, start + length)
            end = space if space > start else start + length
    spans, at = [], start
    for a, b in ranges:
        a, b = max(a, at), min(b, end)
        if a < b:
            spans += [(plain[at:a], False), (plain[a:b], True)]
            at = b
    spans.append((plain[at:end], False))
    html = format_html_join(
        "", "{}", ((format_html("<mark>{}</mark>", t) if m else t,) for t, m in spans if t)
    )
    lead = "… " if start > 0 else ""
    tail = " …" if end < len(plain) else ""
    return format_html("{}{}{}", lead, html, tail)
