from .accounts import User
from .groups import JoinRequest, Membership, SupportGroup
from .site import CrisisResource
from .threads import Notification, Post, PostRevision, Reaction, Subscription, Thread

__all__ = [
    "CrisisResource",
    "JoinRequest",
    "Membership",
    "Notification",
    "Post",
    "PostRevision",
    "Reaction",
    "Subscription",
    "SupportGroup",
    "Thread",
    "User",
]
