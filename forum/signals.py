"""Changes that may end a member's right to an open chat socket bump their authority
epoch (forum.realtime); each worker re-checks those sockets within seconds. Changes to
what a thread page shows retire the visitors' cached copies (forum.page_cache), and
changes to what the member's statement reads replace their standing version
(forum.standing)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from moderation.models import ContextNote, NoteAttachment, Sanction

from . import page_cache, realtime, standing
from .models import (
    Block,
    HeldPost,
    Membership,
    Mute,
    Notification,
    Post,
    Reaction,
    Subscription,
    SupportGroup,
    Thread,
    User,
)


@receiver(post_save, sender=User)
def user_changed(sender, instance: User, created: bool, **kwargs) -> None:
    # Deactivation and password changes arrive here; a re-check is cheap.
    if not created:
        realtime.bump_authority(instance.pk)


@receiver(user_logged_in)
def logged_in(sender, request, user, **kwargs) -> None:
    # Django made the session's new key before the session named its member; a second
    # key names them (forum.sessions).
    session = getattr(request, "session", None)
    if session is not None and hasattr(session, "cycle_key"):
        session.cycle_key()


@receiver(user_logged_out)
def logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        session = getattr(request, "session", None)
        realtime.bump_authority(user.pk, ended_session=getattr(session, "session_key", None))


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def membership_changed(sender, instance: Membership, **kwargs) -> None:
    realtime.bump_authority(instance.user_id)


@receiver(post_save, sender=Block)
def block_made(sender, instance: Block, created: bool, **kwargs) -> None:
    # A block ends an open mentorship between the two like any ending (forum.mentoring).
    if created:
        from . import mentoring  # builds on the whole app: imported once it is ready

        mentoring.end_between(blocker=instance.blocker, blocked=instance.blocked)


@receiver(post_save, sender=Post)
@receiver(post_delete, sender=Post)
def post_changed(sender, instance: Post, **kwargs) -> None:
    page_cache.thread_changed(instance.thread_id)


@receiver(post_save, sender=Thread)
@receiver(post_delete, sender=Thread)
def thread_changed(sender, instance: Thread, **kwargs) -> None:
    page_cache.thread_changed(instance.pk)


@receiver(post_save, sender=SupportGroup)
@receiver(post_delete, sender=SupportGroup)
@receiver(post_save, sender=ContextNote)
@receiver(post_delete, sender=ContextNote)
@receiver(post_save, sender=NoteAttachment)
@receiver(post_delete, sender=NoteAttachment)
def shown_on_many_threads_changed(sender, **kwargs) -> None:
    page_cache.site_changed()


# Whose standing each row is part of, for the tables the member's statement reads.
STANDING_OF = {
    User: "pk",
    Membership: "user_id",
    Subscription: "user_id",
    Mute: "user_id",
    Reaction: "user_id",
    HeldPost: "author_id",
    Sanction: "member_id",
    Block: "blocker_id",
}


def standing_row_changed(sender, instance, **kwargs) -> None:
    standing.changed(getattr(instance, STANDING_OF[sender]))


for model in STANDING_OF:
    post_save.connect(standing_row_changed, sender=model, dispatch_uid=f"standing-{model}")
    post_delete.connect(standing_row_changed, sender=model, dispatch_uid=f"standing-{model}")


@receiver(post_save, sender=Notification)
def notification_changed(sender, instance: Notification, **kwargs) -> None:
    # Deletions (a post's removal, the retention sweep) are not heard: a count shown at
    # most KEPT_SECONDS too high (forum.backends) is not worth a fetch of every row deleted.
    standing.changed(instance.recipient_id)
