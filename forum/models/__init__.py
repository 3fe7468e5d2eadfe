from .accountability import CheckIn, Goal, RecoveryProfile
from .accounts import Block, User
from .chat import ChatMessage, ChatRoom, RoomReadState
from .conversations import Conversation
from .groups import JoinRequest, Membership, SupportGroup
from .held import HeldPost
from .mentoring import MentorApproval, MentorProfile, Mentorship
from .notifications import NotificationPreference
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
    "CheckIn",
    "Conversation",
    "CrisisResource",
    "Goal",
    "HandRaise",
    "HeldPost",
    "JoinRequest",
    "LiveSession",
    "Membership",
    "MentorApproval",
    "MentorProfile",
    "Mentorship",
    "Mute",
    "Notification",
    "NotificationPreference",
    "Post",
    "PostRevision",
    "Reaction",
    "RecoveryProfile",
    "RoomReadState",
    "SessionParticipant",
    "SessionRSVP",
    "SessionScript",
    "Subscription",
    "SupportGroup",
    "Thread",
    "User",
]
