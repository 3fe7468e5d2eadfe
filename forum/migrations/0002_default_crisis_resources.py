from django.db import migrations

from forum.models.site import DEFAULT_CRISIS_RESOURCES


def add_defaults(apps, schema_editor):
    CrisisResource = apps.get_model("forum", "CrisisResource")
    if CrisisResource.objects.exists():
        return
    for position, resource in enumerate(DEFAULT_CRISIS_RESOURCES):
        CrisisResource.objects.create(position=position, **resource)


class Migration(migrations.Migration):
    dependencies = [("forum", "0001_initial")]
    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
