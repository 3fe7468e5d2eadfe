from .accounts import Block, User
from .chat import ChatMessage, ChatRoom, RoomReadState
from .groups import JoinRequest, Membership, SupportGroup
from .site import CrisisResource
from .threads import Mute, Notification, Post, PostRevision, Reaction, Subscription, Thread

__all__ = [
    "Block",
    "ChatMessage",
    "ChatRoom",
    "CrisisResource",
    "JoinRequest",
    "Membership",
    "Mute",
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
