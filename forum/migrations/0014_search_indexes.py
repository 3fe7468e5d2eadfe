"""GIN indexes for full-text search (forum.search), on PostgreSQL only.

The expressions are exactly the ones forum.search.english_vector() produces, so the
planner can answer a search from the index. SQLite has no such index: its fallback
search scans with LIKE, which is fine for a development database.
"""

from django.db import migrations

INDEXES = {
    "search_post_source": ("forum_post", "source"),
    "search_thread_title": ("forum_thread", "title"),
    "search_chat_source": ("forum_chatmessage", "source"),
}


def create_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
            f"USING gin (to_tsvector('english'::regconfig, \"{column}\"))"
        )


def drop_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0013_conversations"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
