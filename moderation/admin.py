"""Django admin for the moderation models.

Moderation happens through moderation.actions (check -> mutate -> log -> notify), so
the admin is for looking things up. Rules are the one thing staff edit here. The
moderation log is read-only in the admin as everywhere: no add, no change, no delete.
"""

from django.contrib import admin

from .models import (
    Appeal,
    Flag,
    ModerationLogEntry,
    ModeratorNote,
    QueueItem,
    Rule,
    Sanction,
)


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ("title", "group", "position")
    list_filter = (("group", admin.EmptyFieldListFilter),)
    search_fields = ("title",)
    ordering = ("group_id", "position", "pk")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never changed here: changes go through moderation.actions, which log them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(QueueItem)
class QueueItemAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "kind",
        "state",
        "group",
        "member",
        "is_urgent",
        "flag_count",
        "opened_at",
    )
    list_filter = ("kind", "state", "is_urgent")


@admin.register(Flag)
class FlagAdmin(ReadOnlyAdmin):
    list_display = ("pk", "reason", "content_type", "object_id", "flagger", "created_at")
    list_filter = ("reason",)


@admin.register(Sanction)
class SanctionAdmin(ReadOnlyAdmin):
    list_display = ("pk", "kind", "member", "group", "created_at", "ends_at", "lifted_at")
    list_filter = ("kind",)
    search_fields = ("member__handle",)


@admin.register(ModeratorNote)
class ModeratorNoteAdmin(ReadOnlyAdmin):
    list_display = ("pk", "member", "group", "author", "created_at")
    search_fields = ("member__handle",)


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    list_display = ("pk", "appellant", "entry_id", "state", "created_at", "decided_at")
    list_filter = ("state",)


@admin.register(ModerationLogEntry)
class ModerationLogEntryAdmin(ReadOnlyAdmin):
    """The audit log: append-only, so the admin may only read it."""

    list_display = (
        "created_at",
        "actor_handle",
        "actor_role",
        "action",
        "target_label",
        "member_handle",
        "group_name",
    )
    list_filter = ("action", "actor_role")
    search_fields = ("actor_handle", "member_handle", "target_label", "group_name")
    date_hierarchy = "created_at"

    def get_actions(self, request):
        # No bulk actions at all: "delete selected" would call the queryset's delete().
        return {}
