"""The review side: the queue, actions on content and members, moderator notes."""
