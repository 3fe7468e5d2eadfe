from .accounts import Block, User
from .chat import ChatMessage, ChatRoom, RoomReadState
from .groups import JoinRequest, Membership, SupportGroup
from .held import HeldPost
from .sessions import (
    AttendanceProof,
    HandRaise,
    LiveSession,
    SessionParticipant,
    SessionRSVP,
    SessionScript,
)
from .site import CrisisResource
from .threads import Mute, Notification, Post, PostRevision, Reaction, Subscription, Thread

__all__ = [
    "AttendanceProof",
    "Block",
    "ChatMessage",
    "ChatRoom",
    "CrisisResource",
    "HandRaise",
    "HeldPost",
    "JoinRequest",
    "LiveSession",
    "Membership",
    "Mute",
    "Notification",
    "Post",
    "PostRevision",
    "Reaction",
    "RoomReadState",
    "SessionParticipant",
    "SessionRSVP",
    "SessionScript",
    "Subscription",
    "SupportGroup",
    "Thread",
    "User",
]
