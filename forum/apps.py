from django.apps import AppConfig


class ForumConfig(AppConfig):
    name = "forum"
    verbose_name = "Kinship forum"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the receivers
