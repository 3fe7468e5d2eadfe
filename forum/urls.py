from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .forms import LoginForm
from .views import (
    accountability,
    accounts,
    attendance,
    chat,
    conversations,
    groups,
    mentoring,
    pages,
    privacy,
    protections,
    search,
    sessions,
    slow_mode,
    threads,
)

urlpatterns = [
    # The busiest page first: a request is matched against these in turn (no other
    # pattern matches its addresses).
    path("g/<slug:slug>/t/<int:thread_id>/", threads.thread_detail, name="thread"),
    path("", pages.home, name="home"),
    path("help/", pages.crisis_help, name="crisis_help"),
    path("healthz", pages.healthz, name="healthz"),
    path("notifications/", pages.notifications, name="notifications"),
    # Search: the threads, posts and chat messages the searcher may read (forum.search)
    path("search/", search.search, name="search"),
    # Accounts
    path("accounts/signup/", accounts.signup, name="signup"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/password_reset/", accounts.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("settings/", accounts.settings_page, name="settings"),
    path("settings/email/", accounts.change_email, name="change_email"),
    path("settings/your-data/", privacy.your_data, name="your_data"),
    path("settings/your-data/export/", privacy.export_data, name="export_data"),
    path("settings/your-data/chat/", privacy.withdraw_left_chat, name="withdraw_left_chat"),
    path("u/<str:handle>/", accounts.profile, name="profile"),
    path("u/<str:handle>/block/", accounts.block, name="block"),
    # Groups
    path("groups/", groups.directory, name="directory"),
    path("groups/mine/", groups.my_groups, name="my_groups"),
    path("groups/new/", groups.group_create, name="group_create"),
    path("invite/<str:code>/", groups.invite, name="invite"),
    path("g/<slug:slug>/", groups.group_detail, name="group"),
    path("g/<slug:slug>/join/", groups.group_join, name="group_join"),
    path("g/<slug:slug>/leave/", groups.group_leave, name="group_leave"),
    path("g/<slug:slug>/settings/", groups.group_settings, name="group_settings"),
    path("g/<slug:slug>/settings/invite/", groups.renew_invite, name="renew_invite"),
    path("g/<slug:slug>/requests/", groups.join_requests, name="join_requests"),
    path(
        "g/<slug:slug>/requests/<int:request_id>/<str:decision>/",
        groups.decide_join_request,
        name="decide_join_request",
    ),
    # Chat rooms
    path("g/<slug:slug>/chat/", chat.room_list, name="rooms"),
    path("g/<slug:slug>/chat/new/", chat.room_new, name="room_new"),
    path("g/<slug:slug>/chat/<slug:room_slug>/", chat.room, name="room"),
    path("g/<slug:slug>/chat/<slug:room_slug>/settings/", chat.room_settings, name="room_settings"),
    path("g/<slug:slug>/chat/<slug:room_slug>/mute/", protections.room_mute, name="room_mute"),
    path(
        "g/<slug:slug>/chat/<slug:room_slug>/slow-mode/",
        slow_mode.room_slow_mode,
        name="room_slow_mode",
    ),
    # Live sessions: the schedule, a session's page, calendars, the group's readings
    path("g/<slug:slug>/sessions/", sessions.sessions, name="sessions"),
    path("g/<slug:slug>/sessions/new/", sessions.session_new, name="session_new"),
    path(
        "g/<slug:slug>/sessions/feed.ics", sessions.group_sessions_feed, name="group_sessions_feed"
    ),
    path("g/<slug:slug>/sessions/scripts/", sessions.session_scripts, name="session_scripts"),
    path(
        "g/<slug:slug>/sessions/scripts/<int:script_id>/",
        sessions.session_script_edit,
        name="session_script_edit",
    ),
    path("g/<slug:slug>/sessions/<int:session_id>/", sessions.session, name="session"),
    path(
        "g/<slug:slug>/sessions/<int:session_id>/edit/", sessions.session_edit, name="session_edit"
    ),
    path(
        "g/<slug:slug>/sessions/<int:session_id>/cancel/",
        sessions.session_cancel,
        name="session_cancel",
    ),
    path(
        "g/<slug:slug>/sessions/<int:session_id>/rsvp/", sessions.session_rsvp, name="session_rsvp"
    ),
    path(
        "g/<slug:slug>/sessions/<int:session_id>/calendar.ics",
        sessions.session_ics,
        name="session_ics",
    ),
    # Threads and posts
    path("g/<slug:slug>/new/", threads.thread_new, name="thread_new"),
    path("g/<slug:slug>/t/<int:thread_id>/reply/", threads.reply, name="reply"),
    path("g/<slug:slug>/t/<int:thread_id>/follow/", threads.thread_follow, name="thread_follow"),
    path("g/<slug:slug>/t/<int:thread_id>/mute/", protections.thread_mute, name="thread_mute"),
    path(
        "g/<slug:slug>/t/<int:thread_id>/slow-mode/",
        slow_mode.thread_slow_mode,
        name="thread_slow_mode",
    ),
    path("g/<slug:slug>/t/<int:thread_id>/p/<int:post_id>/", threads.subthread, name="subthread"),
    path("posts/<int:post_id>/edit/", threads.post_edit, name="post_edit"),
    path("posts/<int:post_id>/remove/", threads.post_remove, name="post_remove"),
    path("posts/<int:post_id>/history/", threads.post_history, name="post_history"),
    path("posts/<int:post_id>/support/", threads.post_support, name="post_support"),
    # Posts the member holds back for a while (publishing.hold_thread / hold_reply)
    path("me/held/", threads.held_posts, name="held_posts"),
    path("me/held/<int:held_id>/send/", threads.held_send, name="held_send"),
    path("me/held/<int:held_id>/edit/", threads.held_edit, name="held_edit"),
    path("me/held/<int:held_id>/discard/", threads.held_discard, name="held_discard"),
    # Attendance of live sessions: the member's own history and proofs, a proof's public page
    path("me/attendance/", attendance.attendance_history, name="attendance"),
    path("me/attendance/proofs/", attendance.attendance_proof_new, name="attendance_proof_new"),
    path(
        "me/attendance/proofs/<int:proof_id>/download/",
        attendance.attendance_proof_download,
        name="attendance_proof_download",
    ),
    path(
        "me/attendance/proofs/<int:proof_id>/revoke/",
        attendance.attendance_proof_revoke,
        name="attendance_proof_revoke",
    ),
    path("proof/<str:token>/", attendance.attendance_proof, name="attendance_proof"),
    # Accountability: the member's goals, check-ins, streaks and milestones; a mentor's view
    path("me/recovery/", accountability.recovery, name="recovery"),
    path("me/recovery/check-in/", accountability.check_in, name="check_in"),
    path(
        "me/recovery/check-in/<str:day>/delete/",
        accountability.check_in_delete,
        name="check_in_delete",
    ),
    path("me/recovery/history/", accountability.check_in_history, name="check_in_history"),
    path("me/recovery/date/", accountability.recovery_date, name="recovery_date"),
    path("me/recovery/goals/new/", accountability.goal_new, name="goal_new"),
    path("me/recovery/goals/<int:goal_id>/", accountability.goal_edit, name="goal_edit"),
    path(
        "me/recovery/goals/<int:goal_id>/archive/",
        accountability.goal_archive,
        name="goal_archive",
    ),
    path(
        "mentoring/<int:mentorship_id>/goals/",
        accountability.mentorship_goals,
        name="mentorship_goals",
    ),
    # Peer mentoring: browse and ask mentors, the member's mentorships, offering to mentor,
    # and the leaders' approvals
    path("mentors/", mentoring.mentors, name="mentors"),
    path("mentoring/", mentoring.mentoring_home, name="mentoring"),
    path("mentoring/profile/", mentoring.mentor_profile, name="mentor_profile"),
    path(
        "mentoring/profile/withdraw/",
        mentoring.mentor_profile_withdraw,
        name="mentor_profile_withdraw",
    ),
    path("mentoring/<int:mentorship_id>/", mentoring.mentorship, name="mentorship"),
    path(
        "mentoring/<int:mentorship_id>/accept/",
        mentoring.mentorship_accept,
        name="mentorship_accept",
    ),
    path(
        "mentoring/<int:mentorship_id>/decline/",
        mentoring.mentorship_decline,
        name="mentorship_decline",
    ),
    path("mentoring/<int:mentorship_id>/end/", mentoring.mentorship_end, name="mentorship_end"),
    path("g/<slug:slug>/mentors/", mentoring.group_mentors, name="group_mentors"),
    path(
        "g/<slug:slug>/mentors/offer/",
        mentoring.mentor_approval_request,
        name="mentor_approval_request",
    ),
    path(
        "g/<slug:slug>/mentors/<int:approval_id>/<str:decision>/",
        mentoring.group_mentor_decide,
        name="group_mentor_decide",
    ),
    path(
        "g/<slug:slug>/mentors/u/<str:handle>/ask/",
        mentoring.mentor_request,
        name="mentor_request",
    ),
    # Direct conversations: one-to-one messages, always by request (participants only)
    path("messages/", conversations.inbox, name="messages"),
    path("messages/settings/", conversations.message_settings, name="message_settings"),
    path("messages/new/<str:handle>/", conversations.conversation_new, name="conversation_new"),
    path("messages/<int:pk>/", conversations.conversation, name="conversation"),
    path(
        "messages/<int:pk>/accept/", conversations.conversation_accept, name="conversation_accept"
    ),
    path(
        "messages/<int:pk>/ignore/", conversations.conversation_ignore, name="conversation_ignore"
    ),
    path("messages/<int:pk>/block/", conversations.conversation_block, name="conversation_block"),
    path("messages/<int:pk>/close/", conversations.conversation_close, name="conversation_close"),
    path(
        "messages/<int:pk>/report/", conversations.conversation_report, name="conversation_report"
    ),
    path("moderation/", include("moderation.urls")),
    path("admin/", admin.site.urls),
]

# An outage met outside a view (forum.middleware) is a 503 as well.
handler500 = "forum.views.pages.server_error"
