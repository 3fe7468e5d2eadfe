"""Changes that may end a member's right to an open chat socket bump their authority
epoch (forum.realtime); each worker re-checks those sockets within seconds. Changes to
what a thread page shows retire the visitors' cached copies (forum.page_cache)."""

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from moderation.models import ContextNote, NoteAttachment

from . import page_cache, realtime
from .models import Block, Membership, Post, SupportGroup, Thread, User


@receiver(post_save, sender=User)
def user_changed(sender, instance: User, created: bool, **kwargs) -> None:
    # Deactivation and password changes arrive here; a re-check is cheap.
    if not created:
        realtime.bump_authority(instance.pk)


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
