from django.apps import AppConfig


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = "Moderation"

    def ready(self) -> None:
        from . import actions  # noqa: F401 - answers forum.publishing.crisis_words, context_notes_attached
