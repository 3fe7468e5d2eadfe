"""Fill an empty database with a large community for benchmarks (bench/pages.py).

At ``--scale 1``: 5,000 members, 50 groups, 10,000 threads, 300,000 posts in nested reply
trees, chat history, flags with open and resolved review items, and moderation log
entries. Rows go in with bulk_create and ids chosen here (so a reply's materialised path
is known before it is written), bypassing the write path and its signals; the stored
fields are the ones the write path keeps (paths, depths, reply and member counts, last
poster, room sequence numbers, flag weights), and post HTML is real: a small set of
Markdown sources rendered once through forum.sanitize. Accounts get unusable passwords:
the benchmark signs in by creating sessions.
"""

import random
from collections.abc import Iterator
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from forum import sanitize
from forum.models import (
    ChatMessage,
    ChatRoom,
    Membership,
    Notification,
    Post,
    Reaction,
    Subscription,
    SupportGroup,
    Thread,
    User,
)
from forum.models.threads import path_segment
from moderation.models import FLAG_WEIGHTS, Flag, FlagReason, ModerationLogEntry, QueueItem

# Sizes at --scale 1.
MEMBERS = 5_000
GROUPS = 50
THREADS = 10_000
POSTS = 300_000
CHAT_MESSAGES = 60_000
OPEN_ITEMS = 400
RESOLVED_ITEMS = 2_000
LOG_ENTRIES = 10_000
NOTIFICATIONS = 50_000
SITE_MODERATORS = 5
GROUPS_PER_MEMBER = 3
# Replies nest this deep at most: deeper than the thread page shows (selectors.VISIBLE_DEPTH),
# so "continue this thread" links appear as they do in real trees.
MAX_DEPTH = 10
BATCH = 2_000

MARKDOWN_SOURCES = [
    "Day 14 today. The evenings are still the hardest part, but I made it through "
    "another one by going for a long walk and calling my sponsor.",
    "Thank you for sharing this. **You are not alone** in feeling that way: I felt the "
    "same at two weeks, and it did get easier.\n\nWhat helped me:\n\n"
    "- a plan for 6 to 9 pm\n- telling one person each day how I was doing\n"
    "- eating something before the cravings hit",
    "> I don't know if I can keep going with meetings\n\nIt's okay to try a different "
    "format. Some of us found SMART meetings a better fit; some found an online group "
    "easier to start with. Keep *whatever* keeps you safe.",
    "I relapsed last weekend after 90 days. I'm back at day 3 and honestly feel ashamed. "
    "Trying to remember that the 90 days still happened.",
    "The 90 days still happened. Relapse is part of a lot of our stories, and coming back "
    "here and writing it down is exactly the right move. Proud of you.",
    "Resources that helped me early on:\n\n1. The local helpline (24/7)\n"
    "2. [SMART Recovery tools](https://www.smartrecovery.org/)\n"
    "3. Writing a short list every morning of three things I'm grateful for",
    "Does anyone else get really vivid using dreams? I wake up convinced I used and it "
    "ruins the whole morning.",
    "Yes! Completely normal, especially in the first months. For me they faded after "
    "about four months. Now when it happens I tell myself it's my brain processing, "
    "not a sign of anything.",
    "Family member here. My brother is in his second week of treatment and I don't "
    "know what to say when he calls. Any advice from people who've been on his side?",
    "Mostly just listen. Don't ask about the programme like a test; ask how *he* is. "
    "Hearing that someone was glad to talk to me meant more than anything else.",
    "Checking in: one year today. 🎉 A year ago I could not imagine a single week. "
    "Thank you all for the late-night replies.",
    "Congratulations!! One year is huge. Thank you for staying and for showing the rest "
    "of us it's possible. `365` days, one at a time.",
]
THREAD_TITLES = [
    "Evenings are the hardest",
    "Two weeks in and struggling",
    "Meetings: which format works for you?",
    "Back at day 3 after a relapse",
    "Using dreams",
    "What to say to my brother",
    "One year today",
    "Cravings at work",
    "Telling my partner",
    "First sober holiday",
    "Sleep in early recovery",
    "Gratitude lists",
]
CHAT_LINES = [
    "Morning all, day 40 here.",
    "Anyone around? Rough night.",
    "I'm here. Want to talk about it?",
    "Made it to my meeting tonight!",
    "Proud of you 💙",
    "Just checking in before bed.",
]
GROUP_KINDS = [kind for kind, _label in SupportGroup.Kind.choices]


def scaled(value: int, scale: float, minimum: int) -> int:
    return max(minimum, round(value * scale))


def batched(rows: list, size: int = BATCH) -> Iterator[list]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Command(BaseCommand):
    help = "Fill an EMPTY database with a large benchmark community (see bench/pages.py)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--scale",
            type=float,
            default=1.0,
            help="Size factor: 1 is 5,000 members and 300,000 posts; 0.01 suits tests.",
        )
        parser.add_argument("--seed", type=int, default=2026, help="Random seed (repeatable).")

    def handle(self, *args, scale: float, seed: int, **options) -> None:
        if not 0 < scale <= 10:
            raise CommandError("--scale must be above 0 and at most 10.")
        if User.objects.exists() or SupportGroup.objects.exists():
            raise CommandError(
                f"The database is not empty ({User.objects.count()} members, "
                f"{SupportGroup.objects.count()} groups): seed_bench fills a fresh, migrated "
                "database only."
            )
        self.rng = random.Random(seed)  # noqa: S311 - repeatable sample data, no secrets
        self.now = timezone.now()
        self.html = [sanitize.render_markdown(source) for source in MARKDOWN_SOURCES]
        started = timezone.now()
        with transaction.atomic():
            self.seed_members(scaled(MEMBERS, scale, 30))
            self.seed_groups(scaled(GROUPS, scale, 3))
            self.seed_threads(scaled(THREADS, scale, 6), posts=scaled(POSTS, scale, 180))
            self.seed_chat(scaled(CHAT_MESSAGES, scale, 30))
            self.seed_moderation(
                open_items=scaled(OPEN_ITEMS, scale, 8),
                resolved=scaled(RESOLVED_ITEMS, scale, 5),
                log_entries=scaled(LOG_ENTRIES, scale, 10),
            )
            self.seed_notifications(scaled(NOTIFICATIONS, scale, 30))
            self.reset_sequences()
        elapsed = (timezone.now() - started).total_seconds()
        self.stdout.write(
            f"Seeded {len(self.members)} members, {len(self.groups)} groups, "
            f"{self.thread_count} threads, {self.post_count} posts, {self.chat_count} chat "
            f"messages, {self.flag_count} flags, {self.log_count} log entries in {elapsed:.0f} s."
        )

    # Members and groups

    def seed_members(self, count: int) -> None:
        password = make_password(None)  # unusable: nobody signs in to a bench community
        users = []
        for index in range(1, count + 1):
            if index == 1:
                handle, extra = "bench-admin", {"is_staff": True, "is_superuser": True}
            elif index <= 1 + SITE_MODERATORS:
                handle, extra = f"bench-moderator-{index - 1}", {"is_site_moderator": True}
            else:
                handle, extra = f"bench-member-{index:05d}", {}
            users.append(
                User(
                    pk=index,
                    handle=handle,
                    email=f"{handle}@kinship.invalid",
                    password=password,
                    date_joined=self.now - timedelta(days=400 + self.rng.randint(0, 300)),
                    **extra,
                )
            )
        User.objects.bulk_create(users, batch_size=BATCH)
        self.members = users
        self.by_pk = {user.pk: user for user in users}
        self.moderators = users[1 : 1 + SITE_MODERATORS]
        self.people = users[1 + SITE_MODERATORS :]

    def seed_groups(self, count: int) -> None:
        description = sanitize.render_markdown(MARKDOWN_SOURCES[5])
        groups = []
        for index in range(1, count + 1):
            private = index % 10 == 0  # one group in ten is private
            groups.append(
                SupportGroup(
                    pk=index,
                    name=f"Bench group {index:03d}",
                    slug=f"bench-group-{index:03d}",
                    kind=GROUP_KINDS[index % len(GROUP_KINDS)],
                    description_source=MARKDOWN_SOURCES[5],
                    description_html=description,
                    guidelines_source=MARKDOWN_SOURCES[2],
                    guidelines_html=self.html[2],
                    visibility="private" if private else "public",
                    join_policy="request" if private else "open",
                    invite_code=f"bench-invite-{index:04d}",
                    created_at=self.now - timedelta(days=800),
                )
            )
        memberships = []
        self.members_of: dict[int, list[User]] = {group.pk: [] for group in groups}
        for offset, user in enumerate(self.people):
            # Busier groups first: member i joins groups drawn towards the low numbers.
            chosen = {
                min(int(self.rng.paretovariate(1.2)) - 1, count - 1)
                for _ in range(GROUPS_PER_MEMBER)
            }
            if offset < count:
                chosen.add(offset)  # every group has a leader
            for group_index in chosen:
                group = groups[group_index]
                role = "leader" if offset == group_index else "member"
                memberships.append(
                    Membership(user=user, group=group, role=role, joined_at=group.created_at)
                )
                self.members_of[group.pk].append(user)
        for group in groups:
            group.member_count = len(self.members_of[group.pk])
        SupportGroup.objects.bulk_create(groups)
        Membership.objects.bulk_create(memberships, batch_size=BATCH)
        self.groups = groups
        self.rooms = ChatRoom.objects.bulk_create(
            ChatRoom(
                pk=group.pk,
                group=group,
                name="General",
                slug="general",
                is_default=True,
                created_at=group.created_at,
            )
            for group in groups
        )

    # Threads and reply trees

    def reply_counts(self, threads: int, posts: int) -> list[int]:
        """Replies per thread, summing to ``posts - threads``; every third thread has
        exactly the average (30 posts at the default ratio), the others vary around it."""
        replies = posts - threads
        average = replies // threads
        counts = [
            average if index % 3 == 0 else self.rng.randint(0, 2 * average)
            for index in range(threads)
        ]
        # The difference goes to the varying threads, so the exact ones stay exact.
        difference = replies - sum(counts)
        varying = [index for index in range(threads) if index % 3 != 0] or [0]
        step = 1 if difference > 0 else -1
        position = 0
        while difference:
            index = varying[position % len(varying)]
            if counts[index] + step >= 0:
                counts[index] += step
                difference -= step
            position += 1
        return counts

    def seed_threads(self, count: int, *, posts: int) -> None:
        counts = self.reply_counts(count, posts)
        next_post_id = 1
        threads, post_rows, subscriptions, reactions = [], [], [], []
        self.thread_count = self.post_count = 0
        self.some_posts: list[tuple[Post, Thread]] = []
        for index, replies in enumerate(counts):
            group = self.groups[min(int(self.rng.paretovariate(1.0)) - 1, len(self.groups) - 1)]
            writers = self.members_of[group.pk] or self.people
            started = self.now - timedelta(minutes=self.rng.randint(60, 365 * 24 * 60))
            thread = Thread(
                pk=index + 1,
                group=group,
                author=self.rng.choice(writers),
                title=f"{THREAD_TITLES[index % len(THREAD_TITLES)]} ({index + 1})",
                is_pinned=index < len(self.groups) * 2 and index % 2 == 0,
                is_locked=index % 50 == 7,
                created_at=started,
                reply_count=replies,
            )
            tree = self.grow_tree(thread, writers, replies, first_id=next_post_id, at=started)
            next_post_id += len(tree)
            thread.last_activity_at = tree[-1].created_at
            thread.last_poster = tree[-1].author
            threads.append(thread)
            post_rows.extend(tree)
            subscriptions.append(
                Subscription(thread=thread, user=thread.author, created_at=started)
            )
            for post in self.rng.sample(tree, k=min(len(tree), 1 + len(tree) // 5)):
                supporter = self.rng.choice(writers)
                if supporter.pk != post.author_id:
                    reactions.append(Reaction(post=post, user=supporter))
                    post.support_count += 1
            if len(self.some_posts) < 5_000 and index % 2:
                self.some_posts.append((self.rng.choice(tree), thread))
            if len(post_rows) >= 20_000:
                self.flush_threads(threads, post_rows, subscriptions, reactions)
        self.flush_threads(threads, post_rows, subscriptions, reactions)

    def grow_tree(
        self, thread: Thread, writers: list[User], replies: int, *, first_id: int, at
    ) -> list[Post]:
        opening = Post(
            pk=first_id,
            thread=thread,
            author=thread.author,
            parent=None,
            path=path_segment(first_id),
            depth=0,
            source=MARKDOWN_SOURCES[first_id % len(MARKDOWN_SOURCES)],
            html=self.html[first_id % len(self.html)],
            created_at=at,
        )
        tree = [opening]
        moment = at
        for offset in range(1, replies + 1):
            # Answers to the opening post, or to a recent reply (conversations go deep).
            if self.rng.random() < 0.35:
                parent = opening
            else:
                parent = tree[max(0, len(tree) - 1 - int(self.rng.expovariate(0.3)))]
            if parent.depth >= MAX_DEPTH:
                parent = parent.parent
            post_id = first_id + offset
            moment += timedelta(minutes=self.rng.randint(1, 240))
            source_index = (post_id * 7) % len(MARKDOWN_SOURCES)
            post = Post(
                pk=post_id,
                thread=thread,
                author=self.rng.choice(writers),
                parent=parent,
                path=parent.path + path_segment(post_id),
                depth=parent.depth + 1,
                source=MARKDOWN_SOURCES[source_index],
                html=self.html[source_index],
                created_at=min(moment, self.now),
            )
            parent.reply_count += 1
            tree.append(post)
        return tree

    def flush_threads(self, threads, post_rows, subscriptions, reactions) -> None:
        Thread.objects.bulk_create(threads, batch_size=BATCH)
        Post.objects.bulk_create(post_rows, batch_size=BATCH)
        Subscription.objects.bulk_create(subscriptions, batch_size=BATCH)
        Reaction.objects.bulk_create(reactions, batch_size=BATCH, ignore_conflicts=True)
        self.thread_count += len(threads)
        self.post_count += len(post_rows)
        for rows in (threads, post_rows, subscriptions, reactions):
            rows.clear()

    # Chat, moderation, notifications

    def seed_chat(self, count: int) -> None:
        messages = []
        for index in range(count):
            room = self.rooms[min(int(self.rng.paretovariate(1.0)) - 1, len(self.rooms) - 1)]
            room.last_seq += 1
            line = CHAT_LINES[index % len(CHAT_LINES)]
            messages.append(
                ChatMessage(
                    pk=index + 1,
                    room=room,
                    seq=room.last_seq,
                    version=room.last_seq,
                    author=self.rng.choice(self.members_of[room.group_id] or self.people),
                    client_id=f"bench-{room.last_seq}",
                    source=line,
                    html=f"<p>{line}</p>",
                    created_at=self.now - timedelta(seconds=(count - index) * 30),
                )
            )
        for rows in batched(messages):
            ChatMessage.objects.bulk_create(rows)
        ChatRoom.objects.bulk_update(self.rooms, ["last_seq"], batch_size=BATCH)
        self.some_messages = messages[:: max(1, len(messages) // 1_000)]
        self.chat_count = count

    def moderation_targets(self, count: int) -> list[tuple[ContentType, int, int | None, int]]:
        """(content type, object id, group id, member id) for ``count`` review items, mostly
        posts, some threads, chat messages and members, each target once."""
        types = ContentType.objects.get_for_models(Post, Thread, ChatMessage, User)
        posts = iter(self.rng.sample(self.some_posts, k=len(self.some_posts)))
        messages = iter(self.rng.sample(self.some_messages, k=len(self.some_messages)))
        people = iter(self.rng.sample(self.people, k=len(self.people)))
        targets = []
        for index in range(count):
            kind = ("post", "post", "post", "post", "post", "thread", "message", "member")[
                index % 8
            ]
            try:
                if kind == "member":
                    member = next(people)
                    targets.append((types[User], member.pk, None, member.pk))
                elif kind == "message":
                    message = next(messages)
                    group_id = message.room.group_id
                    targets.append((types[ChatMessage], message.pk, group_id, message.author_id))
                else:
                    post, thread = next(posts)
                    if kind == "thread":
                        targets.append(
                            (types[Thread], thread.pk, thread.group_id, thread.author_id)
                        )
                    else:
                        targets.append((types[Post], post.pk, thread.group_id, post.author_id))
            except StopIteration:  # a tiny scale ran out of this kind
                continue
        return targets

    def seed_moderation(self, *, open_items: int, resolved: int, log_entries: int) -> None:
        reasons = [reason for reason, _label in FlagReason.choices]
        items, all_flags = [], []
        for index, (content_type, object_id, group_id, member_id) in enumerate(
            self.moderation_targets(open_items + resolved)
        ):
            is_open = index < open_items
            opened = self.now - timedelta(minutes=self.rng.randint(5, 60 * 24 * 20))
            item = QueueItem(
                pk=index + 1,
                state="open" if is_open else "resolved",
                content_type=content_type,
                object_id=object_id,
                group_id=group_id,
                member_id=member_id,
                opened_at=opened,
                resolved_at=None if is_open else opened + timedelta(hours=3),
                resolved_by=None if is_open else self.rng.choice(self.moderators),
                resolution="" if is_open else "dismissed the flags",
            )
            flaggers = [
                person
                for person in self.rng.sample(self.people, k=self.rng.randint(1, 3))
                if person.pk != member_id
            ] or [self.moderators[0]]
            for number, flagger in enumerate(flaggers):
                reason = self.rng.choice(reasons)
                all_flags.append(
                    Flag(
                        flagger=flagger,
                        content_type=content_type,
                        object_id=object_id,
                        item=item,
                        reason=reason,
                        created_at=opened + timedelta(minutes=number),
                    )
                )
                item.weight += FLAG_WEIGHTS[FlagReason(reason)]
                item.is_urgent = item.is_urgent or reason == FlagReason.CRISIS
                item.flag_count += 1
                item.last_flag_at = opened + timedelta(minutes=number)
            items.append(item)
        QueueItem.objects.bulk_create(items, batch_size=BATCH)
        Flag.objects.bulk_create(all_flags, batch_size=BATCH)
        self.flag_count = len(all_flags)

        actions = [
            ModerationLogEntry.Action.FLAGS_DISMISSED,
            ModerationLogEntry.Action.CONTENT_HIDDEN,
            ModerationLogEntry.Action.WARNING,
            ModerationLogEntry.Action.THREAD_LOCKED,
            ModerationLogEntry.Action.CONTENT_WARNING_SET,
        ]
        entries = []
        for index in range(log_entries):
            post, thread = self.some_posts[index % len(self.some_posts)]
            actor = self.moderators[index % len(self.moderators)]
            author = self.by_pk[post.author_id]
            entries.append(
                ModerationLogEntry(
                    actor_id=actor.pk,
                    actor_handle=actor.handle,
                    actor_role="site moderator",
                    action=actions[index % len(actions)],
                    group_id=thread.group_id,
                    group_name=thread.group.name,
                    target_type="post",
                    target_id=post.pk,
                    target_label=f"a post in “{thread.title}”",
                    member_id=author.pk,
                    member_handle=author.handle,
                    reason="Off-topic sales pitch; see the group's guidelines.",
                    created_at=self.now - timedelta(minutes=(log_entries - index) * 45),
                )
            )
        ModerationLogEntry.objects.bulk_create(entries, batch_size=BATCH)
        self.log_count = len(entries)

    def seed_notifications(self, count: int) -> None:
        notes = []
        for index in range(count):
            post, thread = self.some_posts[index % len(self.some_posts)]
            notes.append(
                Notification(
                    recipient=self.rng.choice(self.people),
                    kind=Notification.Kind.THREAD_REPLY,
                    actor_id=post.author_id,
                    group_id=thread.group_id,
                    thread=thread,
                    post=post,
                    created_at=self.now - timedelta(minutes=index),
                    read_at=None if index % 4 == 0 else self.now,
                )
            )
        Notification.objects.bulk_create(notes, batch_size=BATCH)

    def reset_sequences(self) -> None:
        """Ids were chosen here; the next row the site writes must not collide with them."""
        models = [User, SupportGroup, ChatRoom, Thread, Post, ChatMessage, QueueItem]
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(statement)
