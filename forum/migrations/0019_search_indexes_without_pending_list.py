"""The search indexes take each row as it comes (PostgreSQL only).

A GIN index gathers new entries in a pending list and, once the list passes
gin_pending_list_limit (4 MB), the insert that passes it moves the whole list into the
index: 215 and 239 ms on the bench machine, every 12,300 chat messages. A chat message is
stored while its room's row is locked, so every sender in that room waited behind it
(bench/README.md, "a chat message"); a reply waited the same way, once in a while, and
every search read the list. Without it each insert costs about 0.13 ms more, and none costs
200.
"""

from django.db import migrations

INDEXES = ("search_chat_source", "search_post_source", "search_thread_title")


def without_pending_list(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in INDEXES:
        schema_editor.execute(f'ALTER INDEX "{index}" SET (fastupdate = off)')
        # What is pending now is moved in here, not by some member's message later.
        schema_editor.execute(f"SELECT gin_clean_pending_list('\"{index}\"'::regclass)")


def with_pending_list(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in INDEXES:
        schema_editor.execute(f'ALTER INDEX "{index}" RESET (fastupdate)')


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0018_chat_message_room_index_covered"),
    ]

    operations = [
        migrations.RunPython(without_pending_list, with_pending_list, elidable=False),
    ]
