from django.urls import path

from .consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/g/<slug:slug>/chat/<slug:room_slug>/", ChatConsumer.as_asgi()),
]
