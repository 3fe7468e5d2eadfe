from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0008_slow_mode_quiet_hours"),
    ]

    operations = [
        migrations.AddField(
            model_name="post",
            name="cw_categories",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="user",
            name="cw_preferences",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
