"""PostgreSQL itself refuses to change or delete a moderation log entry, and the site
starts with rules that sanctions can cite (site moderators may add more).

TRUNCATE stays possible: it is the database owner's deliberate act (and how the test
suite empties tables between tests). SQLite, the development database, relies on the
model's own refusals.
"""

from django.db import migrations

TABLE = "moderation_moderationlogentry"

POSTGRES = f"""
CREATE FUNCTION moderation_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the moderation log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER moderation_log_no_change BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION moderation_log_append_only();
"""
POSTGRES_REVERSE = f"""
DROP TRIGGER moderation_log_no_change ON {TABLE};
DROP FUNCTION moderation_log_append_only();
"""
SITE_RULES = [
    ("Be kind", "Speak to others as you would want to be spoken to on your hardest day."),
    ("No harassment", "No insults, threats, pile-ons, or following members around the site."),
    (
        "No dangerous advice",
        "Do not advise on stopping, tapering or dosing medication or substances; "
        "point people to a doctor or a crisis line.",
    ),
    ("No solicitation", "No selling, fundraising, or referrals to treatment centres."),
    ("Use content warnings", "Warn before describing use, relapse, self-harm or trauma."),
    ("Respect privacy", "What is shared here stays here. Never reveal who someone is."),
]


def append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES)


def allow_changes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE)


def add_site_rules(apps, schema_editor):
    Rule = apps.get_model("moderation", "Rule")
    if not Rule.objects.filter(group__isnull=True).exists():
        Rule.objects.bulk_create(
            Rule(title=title, description=text, position=n)
            for n, (title, text) in enumerate(SITE_RULES)
        )


class Migration(migrations.Migration):
    dependencies = [("moderation", "0001_initial")]

    operations = [
        migrations.RunPython(append_only, allow_changes),
        migrations.RunPython(add_site_rules, migrations.RunPython.noop),
    ]
