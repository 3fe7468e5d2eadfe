"""Chat's search index takes each message as it comes (PostgreSQL only).

A GIN index gathers new entries in a pending list and, once the list passes
gin_pending_list_limit (4 MB), the insert that passes it moves the whole list into the
index: 215 and 239 ms on the bench machine, every 12,300 messages. A chat message is
stored while its room's row is locked, so every sender in that room waited behind it
(bench/README.md, "a chat message"). Without the list each insert costs about 0.13 ms more,
and none costs 200.
"""

from django.db import migrations

INDEX = "search_chat_source"


def without_pending_list(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'ALTER INDEX "{INDEX}" SET (fastupdate = off)')
    # What is pending now is moved in here, not by some member's message later.
    schema_editor.execute(f"SELECT gin_clean_pending_list('\"{INDEX}\"'::regclass)")


def with_pending_list(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'ALTER INDEX "{INDEX}" RESET (fastupdate)')


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0018_chat_message_room_index_covered"),
    ]

    operations = [
        migrations.RunPython(without_pending_list, with_pending_list, elidable=False),
    ]
