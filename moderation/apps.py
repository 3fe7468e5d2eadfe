from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = "Moderation"

    def ready(self) -> None:
        from . import (
            actions,  # noqa: F401 - answers forum.publishing.crisis_words
            navigation,  # noqa: F401 - connects the login receiver
        )
