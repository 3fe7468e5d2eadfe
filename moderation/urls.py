from django.urls import path

from .views import links, members, notes, review, rules, watched

app_name = "moderation"

urlpatterns = [
    # review: the queue, actions on content and members, notes (moderation/views/review.py)
    path("queue/", review.queue, name="queue"),
    path("items/<int:item_id>/", review.item_detail, name="item"),
    path("members/<str:handle>/", review.member_detail, name="member"),
    # members: flags, a member's own moderation page and appeals, the logs (views/members.py)
    path("mine/", members.mine, name="mine"),
    path("appeal/<int:entry_id>/", members.appeal, name="appeal"),
    path("flag/<str:kind>/<int:pk>/", members.flag, name="flag"),
    path("flag/<str:kind>/<int:pk>/thanks/", members.flag_thanks, name="flag_thanks"),
    path("log/", members.log, name="log"),
    path("g/<slug:slug>/log/", members.group_log, name="group_log"),
    # rules: what sanctions cite (views/rules.py)
    path("rules/", rules.site_rules, name="site_rules"),
    path("g/<slug:slug>/rules/", rules.group_rules, name="group_rules"),
    path("rules/<int:rule_id>/retire/", rules.retire_rule, name="retire_rule"),
    # watched phrases: what the write path watches for (views/watched.py)
    path("watched/", watched.site_watched, name="site_watched"),
    path("g/<slug:slug>/watched/", watched.group_watched, name="group_watched"),
    path("watched/<int:phrase_id>/remove/", watched.remove_watched, name="remove_watched"),
    # link rules and the approval of held posts (views/links.py)
    path("links/", links.site_links, name="site_links"),
    path("g/<slug:slug>/links/", links.group_links, name="group_links"),
    path(
        "g/<slug:slug>/links/members/",
        links.group_link_allowances,
        name="link_allowances",
    ),
    path(
        "links/members/<int:approval_id>/withdraw/",
        links.withdraw_link_allowance,
        name="withdraw_link_allowance",
    ),
    path("links/<int:rule_id>/remove/", links.remove_link, name="remove_link"),
    path("approve/<str:kind>/<int:pk>/", links.approve, name="approve"),
    # context notes: the misinformation library (views/notes.py)
    path("notes/", notes.library, name="notes"),
    path("notes/<int:note_id>/edit/", notes.edit_note, name="note_edit"),
    path("notes/<int:note_id>/retire/", notes.retire_note, name="note_retire"),
    path("notes/<int:note_id>/restore/", notes.restore_note, name="note_restore"),
]
