from django.db import migrations


def add_default_rooms(apps, schema_editor):
    SupportGroup = apps.get_model("forum", "SupportGroup")
    ChatRoom = apps.get_model("forum", "ChatRoom")
    for group in SupportGroup.objects.exclude(rooms__is_default=True):
        ChatRoom.objects.get_or_create(
            group=group, slug="general", defaults={"name": "General", "is_default": True}
        )


class Migration(migrations.Migration):
    dependencies = [("forum", "0003_chat")]
    operations = [migrations.RunPython(add_default_rooms, migrations.RunPython.noop)]
