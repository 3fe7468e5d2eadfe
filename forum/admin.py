"""Django admin for staff.

Member-written text is read-only here: it may only change through
forum.publishing, which validates, sanitises and applies policy. Staff edit
roles, flags on accounts and the crisis resources.
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import models

from .models import CrisisResource, Membership, Post, SupportGroup, Thread, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("handle",)
    list_display = ("handle", "date_joined", "is_site_moderator", "is_staff", "is_active")
    list_filter = ("is_site_moderator", "is_staff", "is_superuser", "is_active")
    search_fields = ("handle",)
    readonly_fields = ("bio_source", "date_joined", "last_login")
    fieldsets = (
        (None, {"fields": ("handle", "email", "password")}),
        ("Profile", {"fields": ("bio_source", "recovery_date_visibility")}),
        (
            "Roles",
            {"fields": ("is_active", "is_site_moderator", "is_staff", "is_superuser")},
        ),
        ("Dates", {"fields": ("date_joined", "last_login")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("handle", "email", "password1", "password2")}),
    )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    fields = ("user", "role", "joined_at")
    readonly_fields = ("joined_at",)


@admin.register(SupportGroup)
class SupportGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "visibility", "join_policy", "member_count")
    list_filter = ("kind", "visibility", "join_policy")
    search_fields = ("name", "slug")
    fields = (
        "name",
        "slug",
        "kind",
        "visibility",
        "join_policy",
        "description_source",
        "guidelines_source",
        "member_count",
    )
    readonly_fields = ("name", "description_source", "guidelines_source", "member_count")
    inlines = [MembershipInline]

    def has_add_permission(self, request) -> bool:
        return False  # groups are created on the site, through the write path


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    list_display = ("title", "group", "author", "reply_count", "last_activity_at")
    list_filter = ("group",)
    search_fields = ("title",)
    fields = ("title", "group", "author", "is_locked", "is_pinned", "reply_count")
    readonly_fields = ("title", "group", "author", "reply_count")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("pk", "thread", "author", "created_at", "edited_at")
    fields = ("thread", "author", "parent", "source", "created_at", "edited_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CrisisResource)
class CrisisResourceAdmin(admin.ModelAdmin):
    list_display = ("name", "region", "contact", "position", "is_active")
    list_editable = ("position", "is_active")
    # A link typed without a scheme is a secure one (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
