"""The append-only log's one exception: erasing a member's identity (forum.privacy).

An erased account becomes an anonymous tombstone; the log keeps every action, and only
the names in it (the handle columns, the target label and the reason) may change, and only
inside a transaction that set ``kinship.erasing_identity``. Any other UPDATE, and every
DELETE, is still refused by PostgreSQL itself.
"""

from django.db import migrations

NAMES = "ARRAY['actor_handle', 'member_handle', 'target_label', 'reason']"

POSTGRES = f"""
CREATE OR REPLACE FUNCTION moderation_log_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('kinship.erasing_identity', true) = 'on'
       AND (to_jsonb(NEW) - {NAMES}) = (to_jsonb(OLD) - {NAMES}) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the moderation log is append-only';
END;
$$ LANGUAGE plpgsql;
"""
POSTGRES_REVERSE = """
CREATE OR REPLACE FUNCTION moderation_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the moderation log is append-only';
END;
$$ LANGUAGE plpgsql;
"""


def allow_erasure(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES)


def refuse_all(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)


class Migration(migrations.Migration):
    dependencies = [("moderation", "0011_link_approvals")]

    operations = [migrations.RunPython(allow_erasure, refuse_all)]
