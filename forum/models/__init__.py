from .accounts import User
from .chat import ChatMessage, ChatRoom, RoomReadState
from .groups import JoinRequest, Membership, SupportGroup
from .site import CrisisResource
from .threads import Notification, Post, PostRevision, Reaction, Subscription, Thread

__all__ = [
    "ChatMessage",
    "ChatRoom",
    "CrisisResource",
    "JoinRequest",
    "Membership",
    "Notification",
    "Post",
    "PostRevision",
    "Reaction",
    "RoomReadState",
    "Subscription",
    "SupportGroup",
    "Thread",
    "User",
]
