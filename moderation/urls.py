from django.urls import path

from .views import members, review

app_name = "moderation"

urlpatterns = [
    # review: the queue, actions on content and members, notes (moderation/views/review.py)
    # members: flags, a member's own moderation page and appeals, the logs (views/members.py)
    path("mine/", members.mine, name="mine"),
]
