"""The moderation log is append-only, down to the database and the admin; and every
piece of member- or moderator-written moderation text is stored as safe HTML."""

import unicodedata
from collections.abc import Callable

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from forum import publishing
from forum.models import Post
from moderation import actions
from moderation.models import (
    Appeal,
    Flag,
    ModerationLogEntry,
    ModeratorNote,
    QueueItem,
    Rule,
    Sanction,
)
from tests.conftest import PASSWORD, make_user
from tests.moderation.test_actions import content, quiet_scene
from tests.xss_oracle import batched, find_executable_html, load_payloads

Action = ModerationLogEntry.Action


@pytest.fixture
def scene(db, settings):
    return quiet_scene(settings)


@pytest.fixture
def entry(scene) -> ModerationLogEntry:
    actions.hide_content(actor=scene.heron, obj=content(scene, "post"), reason="Off topic.")
    return ModerationLogEntry.objects.get()


def unchanged(entry: ModerationLogEntry) -> None:
    stored = ModerationLogEntry.objects.get(pk=entry.pk)
    assert (stored.reason, stored.action, stored.actor_handle) == (
        "Off topic.",
        Action.CONTENT_HIDDEN,
        "heron",
    )


# --- append-only in the ORM -----------------------------------------------------------------


def test_an_entry_cannot_be_saved_again(entry):
    entry.reason = "Rewritten history."
    with pytest.raises(TypeError, match="append-only"):
        entry.save()
    fetched = ModerationLogEntry.objects.get(pk=entry.pk)
    fetched.reason = "Rewritten history."
    with pytest.raises(TypeError, match="append-only"):
        fetched.save(update_fields=["reason"])
    unchanged(entry)


def test_an_entry_cannot_be_deleted(entry):
    with pytest.raises(TypeError, match="append-only"):
        entry.delete()
    unchanged(entry)


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: ModerationLogEntry.objects.update(reason="x"),
        lambda: ModerationLogEntry.objects.filter(action=Action.CONTENT_HIDDEN).update(reason="x"),
        lambda: ModerationLogEntry.objects.all().delete(),
        lambda: ModerationLogEntry.objects.filter(actor_handle="heron").delete(),
    ],
    ids=["update", "filter-update", "delete", "filter-delete"],
)
def test_querysets_neither_update_nor_delete(entry, attempt):
    with pytest.raises(TypeError, match="append-only"):
        attempt()
    unchanged(entry)


def test_new_entries_are_still_written(scene):
    ModerationLogEntry.objects.create(action=Action.NOTE_ADDED, reason="By hand.")
    assert ModerationLogEntry.objects.count() == 1


def test_deleting_the_people_and_the_content_leaves_the_log_alone(entry, scene):
    # People and targets are plain ids and handles: nothing cascades into the log.
    Post.objects.filter(pk=scene.post.pk).delete()
    scene.heron.delete()
    unchanged(entry)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL only")
@pytest.mark.parametrize("statement", ["UPDATE {table} SET reason = 'x'", "DELETE FROM {table}"])
def test_the_database_refuses_update_and_delete(entry, statement):
    table = connection.ops.quote_name(ModerationLogEntry._meta.db_table)
    # psycopg raises InternalError (a DatabaseError) from the trigger's RAISE.
    with (
        pytest.raises(DatabaseError, match=r"append-only|moderation"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement.format(table=table))
    unchanged(entry)


def test_the_trigger_test_runs_on_postgresql_only(db):
    # A visible reminder in SQLite runs: the test above is skipped here, not passed.
    if connection.vendor != "postgresql":
        pytest.skip("raw UPDATE/DELETE refusal needs the PostgreSQL trigger (migration 0002)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'moderation_log_no_change'")
        assert cursor.fetchone()[0] == 1


# --- the admin ---------------------------------------------------------------------------


def test_every_moderation_model_is_in_the_admin():
    for model in (Rule, QueueItem, Flag, Sanction, ModeratorNote, Appeal, ModerationLogEntry):
        assert admin.site.is_registered(model), model.__name__


@pytest.fixture
def admin_client(client, entry):
    keeper = make_user("keeper-admin", is_staff=True, is_superuser=True)
    assert client.login(username=keeper.handle, password=PASSWORD) or client.force_login(keeper)
    return client


def _url(name: str, *args) -> str:
    return reverse(f"admin:moderation_moderationlogentry_{name}", args=args)


def test_the_admin_shows_the_log(admin_client, entry):
    listing = admin_client.get(_url("changelist"))
    assert listing.status_code == 200
    assert b"heron" in listing.content
    page = admin_client.get(_url("change", entry.pk))
    assert page.status_code == 200  # shown read-only
    assert b'name="_save"' not in page.content


def test_the_admin_cannot_change_delete_or_add_entries(admin_client, entry):
    model_admin = admin.site._registry[ModerationLogEntry]
    request = type("R", (), {"user": make_user("other-admin", is_staff=True, is_superuser=True)})
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)

    changed = admin_client.post(
        _url("change", entry.pk), {"reason": "Rewritten.", "action": Action.CONTENT_HIDDEN}
    )
    assert changed.status_code == 403
    assert admin_client.get(_url("delete", entry.pk)).status_code == 403
    assert admin_client.post(_url("delete", entry.pk), {"post": "yes"}).status_code == 403
    assert admin_client.get(_url("add")).status_code == 403
    assert admin_client.post(_url("add"), {"action": Action.BAN}).status_code == 403
    # No bulk "delete selected" either.
    admin_client.post(
        _url("changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    unchanged(entry)
    assert ModerationLogEntry.objects.count() == 1


# --- every XSS payload through every stored moderation text --------------------------------------
# The 6,613 payloads are dealt out among the fields (each payload goes through one real
# action), in batches, so the whole corpus runs in a few seconds.


def _normalised(text: str) -> str:
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _fields(scene) -> dict[str, tuple[int, Callable[[str], str]]]:
    """Field -> (its length limit, a function that stores text there and returns the HTML)."""
    counter = iter(range(10**6))

    def sanction_reason(text):
        return actions.warn_member(
            actor=scene.heron, member=scene.river, group=scene.group, reason=text
        ).reason_html

    def sanction_message(text):
        return actions.warn_member(
            actor=scene.heron, member=scene.river, group=scene.group, reason="x", message=text
        ).message_html

    def flag_details(text):
        Flag.objects.all().delete()
        QueueItem.objects.all().delete()
        return actions.flag(
            flagger=scene.peers[0], obj=scene.river, reason="other", details=text
        ).details_html

    def note(text):
        return actions.add_note(
            actor=scene.heron, member=scene.river, group=scene.group, text=text
        ).html

    def _entry():
        return ModerationLogEntry.objects.create(
            action=Action.CONTENT_HIDDEN,
            actor_id=scene.heron.pk,
            group_id=scene.group.pk,
            member_id=scene.river.pk,
            target_type="post",
            target_id=scene.post.pk,
        )

    def appeal_text(text):
        return actions.appeal(member=scene.river, entry=_entry(), text=text).html

    def decision_note(text):
        made = Appeal.objects.create(entry=_entry(), appellant=scene.river, source="x", html="x")
        decided = actions.decide_appeal(actor=scene.warden, appeal=made, grant=False, note=text)
        return decided.decision_html

    def edit_note(text):
        post = actions.edit_content(
            actor=scene.heron,
            post=content(scene, "post"),
            body=f"Edited {next(counter)}",
            note=text,
        )
        return post.moderator_note

    limit = publishing.MODERATION_TEXT_MAX
    return {
        "sanction reason": (limit, sanction_reason),
        "sanction message": (limit, sanction_message),
        "flag details": (1_000, flag_details),
        "moderator note": (limit, note),
        "appeal": (limit, appeal_text),
        "appeal decision": (limit, decision_note),
        "edit note": (300, edit_note),
    }


def test_every_payload_in_moderation_text_is_stored_safe(scene):
    payloads = load_payloads()
    fields = _fields(scene)
    failures, refused, stored = [], [], 0
    for index, (name, (limit, store)) in enumerate(fields.items()):
        share = payloads[index :: len(fields)]
        for batch in batched(share, size=20, max_chars=limit):
            try:
                pieces = [(batch, store("\n\n".join(batch)))]
            except ValidationError:
                pieces = []
                for payload in batch:
                    try:
                        pieces.append(([payload], store(payload)))
                    except ValidationError:
                        refused.append((name, limit, payload))
            for items, html in pieces:
                stored += len(items)
                problems = find_executable_html(html)
                if problems:
                    failures.append(f"{name}: {items!r} -> {html!r}: {problems}")
    # Only text that is empty or over the field's limit may be refused.
    wrongly = [(n, p) for n, limit, p in refused if _normalised(p) and len(_normalised(p)) <= limit]
    assert wrongly == [], wrongly[:10]
    assert stored + len(refused) == len(payloads)
    assert failures == [], "\n".join(failures[:20])
