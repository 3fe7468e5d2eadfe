"""Reads: what a given user may see, with a constant number of queries per page.

Pages fetch the viewer's role in a group together with the group (or thread) it
belongs to, so moderation.permissions can answer without asking the database
again; a page of posts is one range scan of the thread's materialised paths.
"""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.http import Http404
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from moderation import context_notes, permissions
from moderation.models import Flag, FlagReason, NoteAttachment

from . import backends, fragments, page_cache, sql
from .backends import UNREAD_ATTRIBUTE
from .models import (
    Block,
    ChatMessage,
    ChatRoom,
    CrisisResource,
    JoinRequest,
    LiveSession,
    Membership,
    Mute,
    Notification,
    Post,
    Reaction,
    RoomReadState,
    SessionRSVP,
    Subscription,
    SupportGroup,
    Thread,
    User,
)
from .models.site import DEFAULT_CRISIS_RESOURCES
from .realtime import message_payload
from .sql import names

# Where viewer_with_member leaves the viewer's part on the member: (thread id, group id,
# ThreadViewer).
VIEWER_ATTRIBUTE = "thread_viewer"
THREADS_PER_PAGE = 25
POSTS_PER_PAGE = 50
# Deeper replies are reached through "continue this thread", which re-roots the tree.
VISIBLE_DEPTH = 6


@dataclass
class Window:
    """One page of an ordered list, without a COUNT query."""

    items: list
    page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def window_of(queryset: QuerySet, page: int, size: int) -> Window:
    start = (page - 1) * size
    rows = list(queryset[start : start + size + 1])
    return Window(items=rows[:size], page=page, has_next=len(rows) > size)


def viewer_role(user, group_ref: str) -> Subquery | None:
    if not user.is_authenticated:
        return None
    return Subquery(
        Membership.objects.filter(user=user, group=OuterRef(group_ref)).values("role")[:1]
    )


def with_viewer_role(groups: QuerySet[SupportGroup], user) -> QuerySet[SupportGroup]:
    """Groups annotated with ``user``'s role, and whose role it is: permission checks for
    that user need no query, and checks for anyone else do not mistake it for theirs."""
    role = viewer_role(user, "pk")
    if role is None:
        return groups
    return groups.annotate(viewer_role=role, viewer_pk=Value(user.pk))


def _set_viewer_role(group: SupportGroup, user, role) -> None:
    """Copy a role annotated on a thread, post or room onto its group (see with_viewer_role)."""
    group.viewer_role = role
    group.viewer_pk = user.pk if user.is_authenticated else None


def groups_visible_to(user) -> QuerySet[SupportGroup]:
    groups = SupportGroup.objects.all()
    if permissions.is_site_moderator(user):
        return groups
    if not user.is_authenticated:
        return groups.filter(visibility=SupportGroup.Visibility.PUBLIC)
    # A subquery on the member's own memberships (an index scan), not a join with every
    # membership made DISTINCT: the directory's query no longer grows with the site.
    mine = Membership.objects.filter(user=user).values("group_id")
    return groups.filter(Q(visibility=SupportGroup.Visibility.PUBLIC) | Q(pk__in=mine))


def group_directory(user, *, query: str = "", kind: str = "") -> QuerySet[SupportGroup]:
    groups = groups_visible_to(user)
    if query:
        groups = groups.filter(name__icontains=query)
    if kind in SupportGroup.Kind.values:
        groups = groups.filter(kind=kind)
    return with_viewer_role(groups, user).order_by("name")


def groups_of(user: User) -> QuerySet[SupportGroup]:
    return with_viewer_role(SupportGroup.objects.filter(memberships__user=user), user).order_by(
        "name"
    )


def _role_column(member: str, group: str) -> str:
    """The member's role in the group (NULL for none), as a column of a statement written
    by hand: ``member`` and ``group`` are SQL naming their ids (columns or parameters)."""
    membership, m_user, m_group, m_role = names(Membership, "user", "group", "role")
    return (
        f"(SELECT m.{m_role} FROM {membership} m "  # noqa: S608 (names come from the models)
        f"WHERE m.{m_user} = {member} AND m.{m_group} = {group})"
    )


GROUP_ATTRIBUTE = "group_to_show"


def _group_columns(member: str) -> tuple[str, ...]:
    """get_group_for's columns over the group ``gg``: each of its own, then the role there
    of the member whose id ``member`` names (a column, or a parameter)."""
    _, g_id = names(SupportGroup, "id")
    return (
        *(f"gg.{field.column}" for field in SupportGroup._meta.concrete_fields),
        _role_column(member, f"gg.{g_id}"),
    )


def group_with_member(slug: str) -> backends.Rider:
    """For a member's group page: what get_group_for reads, read in the statement that
    loads the member (forum.backends), one round trip where it was two."""
    group, g_slug = names(SupportGroup, "slug")
    _, u_id = names(User, "id")

    def attach(user, values: tuple) -> None:
        setattr(user, GROUP_ATTRIBUTE, (slug, values))

    joins = f"LEFT JOIN {group} gg ON gg.{g_slug} = %(group_slug)s"
    return backends.Rider(_group_columns(f"u.{u_id}"), {"group_slug": slug}, attach, joins)


@functools.cache
def _group_sql() -> str:
    group, g_slug = names(SupportGroup, "slug")
    return f"""
        SELECT {", ".join(_group_columns("%(member)s"))}
        FROM {group} gg WHERE gg.{g_slug} = %(slug)s
    """  # noqa: S608 (names come from the models, values are parameters)


def get_group_for(user, slug: str) -> SupportGroup:
    """The group at ``slug`` with ``viewer_role`` set; 404 if the user may not see it.
    Read with the member where the page asked for it (group_with_member), otherwise in a
    statement of its own, written by hand (forum.sql; through the ORM, building the role's
    subquery cost more than the database's answer)."""
    ridden = getattr(user, GROUP_ATTRIBUTE, None)
    if ridden is not None:
        delattr(user, GROUP_ATTRIBUTE)  # once: a later read reads afresh
    if ridden is not None and ridden[0] == slug:
        row = ridden[1]
    else:
        member = user.pk if user.is_authenticated else None
        with connection.cursor() as cursor:
            cursor.execute(_group_sql(), {"slug": slug, "member": member})
            row = cursor.fetchone()
    if row is None or row[0] is None:  # no such group
        raise Http404("No such group.")
    group = sql.load(SupportGroup, row[:-1])
    _set_viewer_role(group, user, row[-1])
    permissions.check_can_view_group(user, group)
    return group


def _opening_categories(thread: str) -> str:
    """Each thread's content-warning categories (its opening post's), as a column of a
    statement written by hand over the threads aliased ``thread``, so listings can honour
    each reader's choices (forum.content_warnings.display_for)."""
    post, p_thread, p_parent, p_categories = names(Post, "thread", "parent", "cw_categories")
    _, t_id = names(Thread, "id")
    return (
        f"(SELECT p.{p_categories} FROM {post} p "  # noqa: S608 (names come from the models)
        f"WHERE p.{p_thread} = {thread}.{t_id} AND p.{p_parent} IS NULL LIMIT 1)"
    )


def group_threads(group: SupportGroup, *, page: int, user=None) -> Window:
    """A page of the group's threads, pinned first, then the latest active, each with its
    opening post's content-warning categories and its author's and last poster's handles
    (only those: the listing shows no more of them). Threads hidden by moderation are
    listed for the group's moderators and their own authors only. Written by hand
    (forum.sql): through the ORM, building and compiling it and loading whole members was
    a third of a group page's time (bench/README.md)."""
    viewer = user.pk if user is not None and user.is_authenticated else None
    everyone = user is not None and permissions.can_moderate(user, "hide_content", group)
    with connection.cursor() as cursor:
        cursor.execute(
            _group_threads_sql(),
            {
                "group": group.pk,
                "all": everyone,
                "viewer": viewer,
                "limit": THREADS_PER_PAGE + 1,
                "offset": (page - 1) * THREADS_PER_PAGE,
            },
        )
        rows = cursor.fetchall()
    split = len(Thread._meta.concrete_fields)
    threads = []
    for row in rows[:THREADS_PER_PAGE]:
        thread = sql.load(Thread, row[:split])
        thread.cw_categories = sql.value(Post, "cw_categories", row[split])
        thread.author = _handle_only(thread.author_id, row[split + 1])
        thread.last_poster = _handle_only(thread.last_poster_id, row[split + 2])
        threads.append(thread)
    return Window(items=threads, page=page, has_next=len(rows) > THREADS_PER_PAGE)


@functools.cache
def _group_threads_sql() -> str:
    thread, t_id, t_group, t_author, t_last, t_hidden, t_pinned, t_active = names(
        Thread, "id", "group", "author", "last_poster", "hidden_at", "is_pinned",
        "last_activity_at",
    )  # fmt: skip
    user, u_id, u_handle = names(User, "id", "handle")
    # Threads hidden by moderation stay listed for their author (and, with "all", for the
    # group's moderators).
    return f"""
        SELECT {sql.columns(Thread, "t")}, {_opening_categories("t")},
            a.{u_handle}, lp.{u_handle}
        FROM {thread} t
        LEFT JOIN {user} a ON a.{u_id} = t.{t_author}
        LEFT JOIN {user} lp ON lp.{u_id} = t.{t_last}
        WHERE t.{t_group} = %(group)s
            AND (%(all)s OR t.{t_hidden} IS NULL OR t.{t_author} = %(viewer)s)
        ORDER BY t.{t_pinned} DESC, t.{t_active} DESC, t.{t_id} DESC
        LIMIT %(limit)s OFFSET %(offset)s
    """  # noqa: S608 (names come from the models, values are parameters)


def _handle_only(member_id: int | None, handle: str | None) -> User | None:
    """A member read for their handle alone (the rest deferred, as ``only()`` would)."""
    if member_id is None:
        return None
    return User.from_db(connection.alias, ["id", "handle"], [member_id, handle])


# Groups read per statement by recent_threads_in: SQLite refuses a statement joining more
# than 500 SELECTs, and a member of more groups than this is rare.
RECENT_GROUPS_PER_STATEMENT = 50


def recent_threads_in(user, groups: list[SupportGroup], *, limit: int = 10) -> list[Thread]:
    """The latest active threads in these groups, leaving out what moderation hid (but
    for the viewer's own), each with its opening post's content-warning categories and its
    group (one of ``groups``). Each group gives at most ``limit`` threads, read from the
    start of its ``thread_recent`` index, so the cost grows with the number of groups, not
    with their threads (reading them all and sorting was a sequential scan; bench/README.md)."""
    by_id = {group.pk: group for group in groups}
    ids = list(by_id)
    viewer = user.pk if user is not None and user.is_authenticated else None
    rows = []
    with connection.cursor() as cursor:
        for start in range(0, len(ids), RECENT_GROUPS_PER_STATEMENT):
            chunk = ids[start : start + RECENT_GROUPS_PER_STATEMENT]
            cursor.execute(
                _recent_threads_sql(len(chunk)),
                [value for group in chunk for value in (group, viewer, limit)] + [limit],
            )
            rows.extend(cursor.fetchall())
    split = len(Thread._meta.concrete_fields)
    threads = []
    for row in rows:
        thread = sql.load(Thread, row[:split])
        thread.cw_categories = sql.value(Post, "cw_categories", row[split])
        thread.group = by_id[thread.group_id]
        threads.append(thread)
    threads.sort(key=lambda thread: (thread.last_activity_at, thread.pk), reverse=True)
    return threads[:limit]


@functools.cache
def _recent_threads_sql(groups: int) -> str:
    thread, t_id, t_group, t_author, t_hidden, t_active = names(
        Thread, "id", "group", "author", "hidden_at", "last_activity_at"
    )
    # One branch per group, each the head of that group's thread_recent index, hidden
    # threads kept for their author only; the inner SELECT lets SQLite take ORDER BY and
    # LIMIT within a UNION ALL.
    branch = f"""
        SELECT {t_id} FROM (
            SELECT r.{t_id} FROM {thread} r
            WHERE r.{t_group} = %s AND (r.{t_hidden} IS NULL OR r.{t_author} = %s)
            ORDER BY r.{t_active} DESC, r.{t_id} DESC LIMIT %s
        ) latest"""  # noqa: S608 (names come from the models, values are parameters)
    return f"""
        SELECT {sql.columns(Thread, "t")}, {_opening_categories("t")}
        FROM {thread} t
        WHERE t.{t_id} IN ({" UNION ALL ".join([branch] * groups)})
        ORDER BY t.{t_active} DESC, t.{t_id} DESC
        LIMIT %s
    """  # noqa: S608 (names come from the models, values are parameters)


def get_thread_for(user, *, slug: str, thread_id: int) -> Thread:
    """The thread with its group and the viewer's role and following state."""
    threads = Thread.objects.filter(pk=thread_id, group__slug=slug).select_related(
        "group", "author"
    )
    role = viewer_role(user, "group_id")
    if role is not None:
        threads = threads.annotate(
            viewer_role=role,
            viewer_follows=Exists(Subscription.objects.filter(thread=OuterRef("pk"), user=user)),
            viewer_muted=Exists(Mute.objects.filter(thread=OuterRef("pk"), user=user)),
        )
    thread = threads.first()
    if thread is None:
        raise Http404("No such thread.")
    return _viewable(user, thread, getattr(thread, "viewer_role", None))


def _viewable(user, thread: Thread, role: str | None) -> Thread:
    """``thread`` with the viewer's ``role`` on its group; 404 if they may not see it."""
    _set_viewer_role(thread.group, user, role)
    permissions.check_can_view_group(user, thread.group)
    permissions.check_can_view_thread(user, thread)
    return thread


@dataclass(frozen=True)
class ThreadViewer:
    """What the thread page needs to know of its viewer, beyond what everyone sees."""

    role: str | None = None
    follows: bool = False
    muted: bool = False
    supports: frozenset[int] = frozenset()  # posts of this thread they support
    blocked: frozenset[int] = frozenset()  # members they blocked


@functools.cache
def _viewer_columns(group: str) -> tuple[str, ...]:
    """The thread viewer's part as columns over their row ``u``: their role in the group
    ``group`` names (SQL), whether they follow and mute the thread, the posts of it they
    support and the members they blocked; parameters: ``group``'s and ``%(thread)s``."""
    _, u_id = names(User, "id")
    subscription, s_user, s_thread = names(Subscription, "user", "thread")
    mute, u_user, u_thread = names(Mute, "user", "thread")
    reaction, r_user, r_post = names(Reaction, "user", "post")
    post, p_id, p_thread = names(Post, "id", "thread")
    block, b_blocker, b_blocked = names(Block, "blocker", "blocked")
    me = f"u.{u_id}"
    # Names come from the models, values are parameters.
    follows = f"SELECT 1 FROM {subscription} WHERE {s_user} = {me} AND {s_thread} = %(thread)s"  # noqa: S608
    muted = f"SELECT 1 FROM {mute} WHERE {u_user} = {me} AND {u_thread} = %(thread)s"  # noqa: S608
    supports = (
        f"FROM {reaction} r JOIN {post} p ON p.{p_id} = r.{r_post} "
        f"WHERE r.{r_user} = {me} AND p.{p_thread} = %(thread)s"
    )
    return (
        _role_column(me, group),
        f"EXISTS({follows})",
        f"EXISTS({muted})",
        sql.id_list(f"r.{r_post}", supports),
        sql.id_list(b_blocked, f"FROM {block} WHERE {b_blocker} = {me}"),
    )


def _viewer_from(values: tuple) -> ThreadViewer:
    role, follows, muted, supports, blocked = values
    return ThreadViewer(
        role=role,
        follows=bool(follows),
        muted=bool(muted),
        supports=sql.ids(supports),
        blocked=sql.ids(blocked),
    )


@functools.cache
def _rider_columns() -> tuple[str, ...]:
    thread, t_group, t_id = names(Thread, "group", "id")
    group = f"(SELECT {t_group} FROM {thread} WHERE {t_id} = %(thread)s)"  # noqa: S608 (names)
    return (group, *_viewer_columns(group))


def viewer_with_member(thread_id: int) -> backends.Rider:
    """For the thread page: the viewer's part of thread ``thread_id`` read in the
    statement that loads the member (forum.backends), one round trip where it was two.
    thread_to_read takes it from there if the thread's group is still the one the
    page's rows name."""

    def attach(user, values: tuple) -> None:
        setattr(user, VIEWER_ATTRIBUTE, (thread_id, values[0], _viewer_from(values[1:])))

    return backends.Rider(_rider_columns(), {"thread": thread_id}, attach)


def _thread_viewer(user, thread: Thread) -> ThreadViewer:
    """The viewer's role, following, muting, supports and blocks: read with the member
    where the page asked for it (viewer_with_member) and the thread is still in the group
    the page's rows name, otherwise in one statement (written by hand: forum.sql)."""
    if not user.is_authenticated:
        return ThreadViewer()
    ridden = getattr(user, VIEWER_ATTRIBUTE, None)
    if ridden is not None and ridden[:2] == (thread.pk, thread.group_id):
        return ridden[2]
    with connection.cursor() as cursor:
        cursor.execute(
            _thread_viewer_sql(), {"group": thread.group_id, "thread": thread.pk, "member": user.pk}
        )
        row = cursor.fetchone()
    return ThreadViewer() if row is None else _viewer_from(row)


@functools.cache
def _thread_viewer_sql() -> str:
    user, u_id = names(User, "id")
    columns = ", ".join(_viewer_columns("%(group)s"))
    return f"SELECT {columns} FROM {user} u WHERE u.{u_id} = %(member)s"  # noqa: S608 (names)


def thread_to_read(
    user, *, slug: str, thread_id: int, versions: tuple[str, str] | None = None
) -> Thread:
    """get_thread_for, for the thread page: the thread and its group come from the cache
    (forum.page_cache), under ``versions`` where the page read them already, and the
    viewer's part (``thread.viewer``) from the statement that loaded them
    (viewer_with_member) or one of its own."""
    if versions is None:
        versions = page_cache.versions(thread_id)
    thread = page_cache.shared(
        f"thread:{slug}:{thread_id}",
        versions,
        lambda: (
            Thread.objects.filter(pk=thread_id, group__slug=slug)
            .select_related("group", "author")
            .first()
        ),
    )
    if thread is None:
        raise Http404("No such thread.")
    thread.page_versions = versions  # for thread_page: one read of the versions per page
    thread.viewer = _thread_viewer(user, thread)
    thread.viewer_follows = thread.viewer.follows
    thread.viewer_muted = thread.viewer.muted
    return _viewable(user, thread, thread.viewer.role)


def get_post_for(user, post_id: int) -> Post:
    """A post with its thread and group; 404 if the user may not see the group."""
    posts = Post.objects.filter(pk=post_id).select_related("thread__group", "author")
    role = viewer_role(user, "thread__group_id")
    if role is not None:
        posts = posts.annotate(viewer_role=role)
    post = posts.first()
    if post is None:
        raise Http404("No such post.")
    _set_viewer_role(post.thread.group, user, getattr(post, "viewer_role", None))
    if not (user.is_authenticated and post.author_id == user.pk):
        # Authors keep hold of their own words, e.g. to remove them after leaving.
        permissions.check_can_view_group(user, post.thread.group)
        permissions.check_can_view_thread(user, post.thread)
    return post


def thread_page(
    thread: Thread, *, page: int, root: Post | None = None
) -> tuple[Post | None, Window]:
    """The opening post (on the first page of a whole thread, else None) and a page of the
    reply tree, depth-first, below the opening post or below ``root``.

    Replies deeper than VISIBLE_DEPTH under the root are left for their own page. The
    rows are shared between readers (forum.page_cache) under the versions ``thread`` was
    read with; it comes from thread_to_read, whose ``viewer`` says what they support and
    whom they blocked.
    """
    with_opening = root is None and page == 1
    rows = _page_rows(thread, page=page, root=root)
    _resolve_context_notes(rows)
    _set_viewer_state(rows, thread.viewer)
    opening = rows.pop(0) if with_opening else None
    window = Window(items=rows[:POSTS_PER_PAGE], page=page, has_next=len(rows) > POSTS_PER_PAGE)
    base_depth = 1 if root is None else root.depth + 1
    for post in window.items:
        post.display_depth = post.depth - base_depth
        post.continues_elsewhere = post.display_depth == VISIBLE_DEPTH - 1 and post.reply_count > 0
    if opening is not None:
        opening.continues_elsewhere = False
    return opening, window


def _page_rows(thread: Thread, *, page: int, root: Post | None = None) -> list[Post]:
    """The rows of a thread page, shared between readers under ``thread.page_versions``:
    the opening post first on the first page of a whole thread, then up to a page of
    replies and one more (which says whether a next page exists)."""
    with_opening = root is None and page == 1

    def read() -> list[Post]:
        if root is None:
            # The opening post's path begins every other path in its thread: it sorts first.
            posts = Post.objects.filter(thread=thread, depth__lte=VISIBLE_DEPTH)
        else:
            posts = Post.objects.filter(
                thread=thread,
                path__startswith=root.path,
                depth__gt=root.depth,
                depth__lte=root.depth + VISIBLE_DEPTH,
            )
        posts = _with_context_note(posts.select_related("author").order_by("path"))
        start = (page - 1) * POSTS_PER_PAGE + (root is None and page > 1)
        rows = list(posts[start : start + POSTS_PER_PAGE + 1 + with_opening])
        for post in rows:
            # Once, for every reader of these rows: nothing below changes what it digests.
            post.row_digest = fragments.row_digest(post)
        return rows

    name = f"posts:{thread.pk}:{page}:{root.pk if root else ''}"
    return page_cache.shared(name, thread.page_versions, read)


@dataclass(frozen=True)
class PageSummary:
    """What a member's thread page body takes from its rows beyond the thread's versions
    (forum.fragments.body_key): who wrote them (an author sees their own controls) and
    whether one waits for review (trusted members may approve it)."""

    authors: frozenset[int]
    pending_review: bool


def page_summary(thread: Thread, *, page: int) -> PageSummary:
    """The summary of a page of a whole thread (``thread`` from thread_to_read), shared
    as its rows are: read without copying thirty posts."""

    def summarise() -> tuple[frozenset[int], bool]:
        # Plain values in the cache, not the class: a release that changes it still reads them.
        rows = _page_rows(thread, page=page)
        return (
            frozenset(post.author_id for post in rows if post.author_id),
            any(post.is_hidden and post.hidden_pending_review for post in rows),
        )

    authors, pending_review = page_cache.shared(
        f"summary:{thread.pk}:{page}", thread.page_versions, summarise
    )
    return PageSummary(authors=authors, pending_review=pending_review)


def _set_viewer_state(posts, viewer: ThreadViewer) -> None:
    for post in posts:
        post.viewer_supports = post.pk in viewer.supports
        post.author_blocked = post.author_id in viewer.blocked


def blocked_by(user: User) -> list[User]:
    return list(User.objects.filter(pk__in=Block.objects.filter(blocker=user).values("blocked_id")))


def blocked_handles(user) -> list[str]:
    """Handles the viewer blocked, for the chat panel to fold their messages away."""
    if not user.is_authenticated:
        return []
    return list(Block.objects.filter(blocker=user).values_list("blocked__handle", flat=True))


def subthread_root(thread: Thread, post_id: int) -> Post:
    """The post a "Continue this thread" page is rooted at, read as its thread page reads
    posts (``thread`` from thread_to_read); 404 if it is not in this thread."""
    posts = Post.objects.filter(pk=post_id, thread=thread).select_related("author", "parent")
    post = _with_context_note(posts).first()
    if post is None:
        raise Http404("No such post in this thread.")
    _resolve_context_notes([post])
    _set_viewer_state([post], thread.viewer)
    post.continues_elsewhere = False
    return post


def _with_context_note(posts: QuerySet, *, model: str = "post") -> QuerySet:
    """The id of a context note shown under each post (or chat message), in the same query."""
    # By name, not get_for_model: a cold content-type cache would cost the page a query.
    shown = NoteAttachment.objects.filter(
        content_type__app_label="forum",
        content_type__model=model,
        object_id=OuterRef("pk"),
        note__is_active=True,  # a retired note must not hide an active one on the same post
    ).exclude(state=NoteAttachment.State.DETACHED)
    return posts.annotate(context_note_id=Subquery(shown.order_by("pk").values("note_id")[:1]))


def _resolve_context_notes(posts) -> None:
    """The notes themselves come from the in-memory library: no query. A retired note is
    no longer shown."""
    if not any(post.context_note_id for post in posts):
        for post in posts:
            post.context_note = None  # set, so templates find it without a failed lookup
        return
    notes = context_notes.library().notes
    for post in posts:
        post.context_note = notes.get(post.context_note_id)


def pending_join_requests(group: SupportGroup) -> QuerySet[JoinRequest]:
    return group.join_requests.filter(status=JoinRequest.Status.PENDING).select_related("user")


def notifications_for(user: User, *, page: int) -> Window:
    notes = Notification.objects.filter(recipient=user).select_related("actor", "group", "thread")
    return window_of(notes, page, 30)


def unread_notification_count(user) -> int:
    """The header's badge: counted with the signed-in member when the request loaded them
    (forum.backends), else here."""
    if not user.is_authenticated:
        return 0
    counted = getattr(user, UNREAD_ATTRIBUTE, None)
    if counted is not None:
        return counted
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def crisis_resources() -> list[CrisisResource]:
    """The resources behind "Need help now?"; the defaults when admins have set none, so
    the list is never empty."""
    return list(CrisisResource.objects.filter(is_active=True)) or [
        CrisisResource(**resource) for resource in DEFAULT_CRISIS_RESOURCES
    ]


def crisis_resource_payloads() -> list[dict]:
    """The same resources as plain data, for a chat frame (docs/chat-protocol.md)."""
    return [
        {
            "name": resource.name,
            "region": resource.region,
            "contact": resource.contact,
            "description": resource.description,
            "url": resource.url,
        }
        for resource in crisis_resources()
    ]


def flagged_frame(flag: Flag) -> dict:
    """The chat panel's answer to its member's flag; a crisis concern ("I'm worried about
    this person") also carries the crisis resources, to pass on or to use oneself."""
    frame = {"type": "flagged", "id": flag.object_id}
    if flag.reason == FlagReason.CRISIS:
        frame["resources"] = crisis_resource_payloads()
    return frame


def shares_a_group(viewer, member: User) -> bool:
    if not viewer.is_authenticated:
        return False
    return Membership.objects.filter(user=member, group__memberships__user=viewer).exists()


def get_member(handle: str) -> User:
    member = User.objects.filter(handle__iexact=handle, is_active=True).first()
    if member is None:
        raise Http404("No such member.")
    return member


def recent_posts_by(viewer, member: User, *, limit: int = 10) -> list[Post]:
    """The member's latest posts in groups the viewer can see."""
    visible = groups_visible_to(viewer).values("pk")
    posts = Post.objects.filter(
        author=member, removed_by_author_at__isnull=True, thread__group__in=visible
    )
    if not (viewer.is_authenticated and viewer.pk == member.pk):
        # What moderation hid stays off the profile for everyone but its author.
        posts = posts.filter(hidden_at__isnull=True, thread__hidden_at__isnull=True)
    return list(posts.select_related("thread__group").order_by("-created_at")[:limit])


def get_room_for(user, *, slug: str, room_slug: str, allow_direct: bool = False) -> ChatRoom:
    """The room with its group and the viewer's role; 404 if the user may not see the group.

    A direct conversation's room is 404 unless ``allow_direct`` (its page and its socket),
    and then only for its two participants: room settings, mutes and slow mode never
    reach it, whoever leads the group."""
    rooms = ChatRoom.objects.filter(group__slug=slug, slug=room_slug).select_related("group")
    role = viewer_role(user, "group_id")
    if role is not None:
        rooms = rooms.annotate(viewer_role=role)
    room = rooms.first()
    if room is None:
        raise Http404("No such room.")
    if room.kind == ChatRoom.Kind.DIRECT:
        if not allow_direct:
            raise Http404("No such room.")
        permissions.check_can_read_room(user, room)
        return room
    _set_viewer_role(room.group, user, getattr(room, "viewer_role", None))
    permissions.check_can_view_group(user, room.group)
    return room


ROOM_ATTRIBUTE = "room_to_write"


@functools.cache
def _room_columns() -> tuple[tuple[str, ...], str]:
    """room_to_write's columns over the member's row ``u`` and the room ``cr`` and its group
    ``cg``, joined as the second part says: every column of the room and of its group, the
    member's role there, then the trust counts (named parameters: ``%(room)s`` and
    moderation.permissions.trust_counts_params)."""
    room, r_id, r_group = names(ChatRoom, "id", "group")
    group, g_id = names(SupportGroup, "id")
    _, u_id = names(User, "id")
    columns = (
        *(f"cr.{field.column}" for field in ChatRoom._meta.concrete_fields),
        *(f"cg.{field.column}" for field in SupportGroup._meta.concrete_fields),
        _role_column(f"u.{u_id}", f"cr.{r_group}"),
        permissions.trust_counts_columns(),
    )
    joins = (
        f"LEFT JOIN {room} cr ON cr.{r_id} = %(room)s "
        f"LEFT JOIN {group} cg ON cg.{g_id} = cr.{r_group}"
    )
    return columns, joins


def room_with_member(member_id: int, room_id: int) -> backends.Rider:
    """For a chat write: what room_to_write reads, read in the statement that loads the
    member (forum.backends), one round trip where it was two."""
    columns, joins = _room_columns()

    def attach(user, values: tuple) -> None:
        setattr(user, ROOM_ATTRIBUTE, (room_id, values))

    params = {"room": room_id, **permissions.trust_counts_params(member_id)}
    width = len(columns) - 1 + permissions.TRUST_COUNTS
    return backends.Rider(columns, params, attach, joins, width)


@functools.cache
def _room_to_write_sql() -> str:
    user, u_id = names(User, "id")
    columns, joins = _room_columns()
    return f"""
        SELECT {", ".join(columns)} FROM {user} u {joins} WHERE u.{u_id} = %(member)s
    """  # noqa: S608 (names come from the models, values are parameters)


def room_to_write(user, room_id: int) -> ChatRoom:
    """A socket's room, read afresh for each change (its state, the member's role may have
    changed), with its group, the member's role there and their trust counts: read with
    the member where the write asked for it (room_with_member), otherwise in a statement
    of its own, written by hand (forum.sql; through the ORM it was a third of a chat
    write's time in Python, and the trust counts were a round trip of their own)."""
    ridden = user.__dict__.pop(ROOM_ATTRIBUTE, None)  # once: a later write reads afresh
    if ridden is not None and ridden[0] == room_id:
        row = ridden[1]
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                _room_to_write_sql(),
                {"room": room_id, **permissions.trust_counts_params(user.pk)},
            )
            row = cursor.fetchone()
    split = len(ChatRoom._meta.concrete_fields)
    if row is None or row[0] is None:  # no such member, or no such room
        raise ChatRoom.DoesNotExist("No such room.")
    role = split + len(SupportGroup._meta.concrete_fields)
    room = sql.load(ChatRoom, row[:split])
    room.group = sql.load(SupportGroup, row[split:role])
    _set_viewer_role(room.group, user, row[role])
    setattr(user, permissions.TRUST_COUNTS_ATTRIBUTE, row[role + 1 :])  # the last columns
    return room


def rooms_with_unread(user, group: SupportGroup) -> list[ChatRoom]:
    """The group's rooms, each with ``unread``: others' messages after the member's last read."""
    read_upto = Subquery(
        RoomReadState.objects.filter(room=OuterRef("pk"), user=user).values("last_read_seq")[:1]
    )
    blocked = Block.objects.filter(blocker=user).values("blocked_id")
    rooms = (
        group.rooms.filter(kind=ChatRoom.Kind.GROUP)
        .annotate(
            read_upto=read_upto,
            viewer_muted=Exists(Mute.objects.filter(room=OuterRef("pk"), user=user)),
        )
        .annotate(
            unread=Count(
                "messages",
                filter=Q(messages__removed_at__isnull=True)
                & ~Q(messages__author=user)
                & ~Q(messages__author__in=blocked)
                & (Q(read_upto__isnull=True) | Q(messages__seq__gt=F("read_upto"))),
            )
        )
    )
    return list(rooms)


def room_changes(room_id: int, *, after: int | None, limit: int) -> tuple[list[dict], bool]:
    """Message payloads for a (re)connecting client, oldest first, and whether more wait.

    ``after=None`` is a first visit: the latest ``limit`` messages. Otherwise every
    message whose latest change is newer than ``after``, in change order.
    """
    messages = _with_context_note(
        ChatMessage.objects.filter(room_id=room_id).select_related("author"), model="chatmessage"
    )
    if after is None:
        rows = list(messages.filter(removed_at__isnull=True).order_by("-seq")[:limit])[::-1]
        more = False
    else:
        rows = list(messages.filter(version__gt=after).order_by("version")[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
    _resolve_context_notes(rows)
    return [message_payload(message) for message in rows], more


def latest_seqs(room_ids: list[int]) -> dict[int, int]:
    return dict(ChatRoom.objects.filter(pk__in=room_ids).values_list("pk", "last_seq"))


def session_expiry(session_key: str | None) -> float | None:
    """When a signed-in session expires (a timestamp), or None if it is gone or expired.

    Loading it, unlike ``exists()``, refuses an expired session that is still stored.
    """
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if SESSION_KEY not in store:
        return None
    return store.get_expiry_date().timestamp()


def socket_refusal(
    *, user_id: int, session_key: str | None, session_hash: str, room_id: int
) -> int | None:
    """Why an open chat socket must close now (a close code), or None if it may stay.

    Re-checks everything its handshake relied on: the account, the session (logged
    out elsewhere, expired, or the password changed since), and the right to read the room.
    """
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return 4403
    if session_expiry(session_key) is None:
        return 4401
    if not constant_time_compare(session_hash or "", user.get_session_auth_hash()):
        return 4401
    room = ChatRoom.objects.select_related("group").filter(pk=room_id).first()
    if room is not None and room.kind == ChatRoom.Kind.DIRECT:
        # A conversation exists for its participants only: 404, never 403.
        return None if permissions.can_read_room(user, room) else 4404
    if room is None or not permissions.can_read_room(user, room):
        return 4403
    if room.kind == ChatRoom.Kind.SESSION and not permissions.can_stay_in_session(user, room):
        return 4403
    return None


# --- live sessions ----------------------------------------------------------------------------


def _session_not_over(now: datetime) -> Q:
    """Sessions not ended by a leader nor past their automatic end."""
    grace = timedelta(minutes=settings.KINSHIP_SESSION_GRACE_MINUTES)
    return Q(ended_at__isnull=True, ends_at__gt=now - grace)


def _listed_sessions(user, group: SupportGroup) -> QuerySet[LiveSession]:
    """The group's sessions with their RSVP count and whether ``user`` is going."""
    sessions = LiveSession.objects.filter(group=group).annotate(rsvp_count=Count("rsvps"))
    if user.is_authenticated:
        sessions = sessions.annotate(
            going=Exists(SessionRSVP.objects.filter(session=OuterRef("pk"), user=user))
        )
    return sessions


def upcoming_sessions(
    user, group: SupportGroup, *, limit: int, now: datetime | None = None
) -> list[LiveSession]:
    """The group's next sessions (the one running now included), soonest first; a cancelled
    one stays listed until its time, marked, so nobody turns up for it. Each with its RSVP
    count and whether ``user`` is going, as _listed_sessions gives them, written by hand
    (forum.sql): every group page asks, and through the ORM building the question cost
    more than the database's answer, even when there is no session."""
    now = now or timezone.now()
    grace = timedelta(minutes=settings.KINSHIP_SESSION_GRACE_MINUTES)
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "group": group.pk,
        "member": user.pk if user.is_authenticated else None,
        "over": adapt(now - grace),
        "now": adapt(now),
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(_upcoming_sessions_sql(), params)
        rows = cursor.fetchall()
    sessions = []
    for row in rows:
        session = sql.load(LiveSession, row[:-2])
        session.rsvp_count, session.going = row[-2], bool(row[-1])
        sessions.append(session)
    return sessions


@functools.cache
def _upcoming_sessions_sql() -> str:
    live, s_id, s_group, s_ended, s_ends, s_cancelled, s_starts = names(
        LiveSession, "id", "group", "ended_at", "ends_at", "cancelled_at", "starts_at"
    )
    rsvp, r_session, r_user = names(SessionRSVP, "session", "user")
    # The same sessions as _session_not_over, and cancelled ones until their time.
    return f"""
        SELECT {sql.columns(LiveSession, "s")},
            (SELECT COUNT(*) FROM {rsvp} r WHERE r.{r_session} = s.{s_id}),
            EXISTS(
                SELECT 1 FROM {rsvp} r WHERE r.{r_session} = s.{s_id} AND r.{r_user} = %(member)s
            )
        FROM {live} s
        WHERE s.{s_group} = %(group)s AND s.{s_ended} IS NULL AND s.{s_ends} > %(over)s
            AND (s.{s_cancelled} IS NULL OR s.{s_starts} > %(now)s)
        ORDER BY s.{s_starts}, s.{s_id} LIMIT %(limit)s
    """  # noqa: S608 (names come from the models, values are parameters)


def past_sessions(
    user, group: SupportGroup, *, limit: int, now: datetime | None = None
) -> list[LiveSession]:
    """The group's sessions that took place, latest first (cancelled ones are not listed)."""
    past = (
        _listed_sessions(user, group)
        .exclude(_session_not_over(now or timezone.now()))
        .filter(cancelled_at__isnull=True)
    )
    return list(past.order_by("-starts_at", "-pk")[:limit])


def calendar_sessions(group: SupportGroup, *, limit: int) -> list[LiveSession]:
    """The group's sessions still to come or running, for its calendar feed."""
    upcoming = LiveSession.objects.filter(group=group, cancelled_at__isnull=True).filter(
        _session_not_over(timezone.now())
    )
    return list(upcoming.select_related("group").order_by("starts_at", "pk")[:limit])
