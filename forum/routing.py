from django.urls import path

from moderation.consumers import QueueConsumer

from .consumers import ChatConsumer
from .notify_consumer import NotificationConsumer

websocket_urlpatterns = [
    path("ws/g/<slug:slug>/chat/<slug:room_slug>/", ChatConsumer.as_asgi()),
    path("ws/moderation/queue/", QueueConsumer.as_asgi()),
    path("ws/notifications/", NotificationConsumer.as_asgi()),
]
