"""Where a conversation lives in Telegram, besides a plain private chat."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatPlace:
    """A group (or one of its forum topics), or a topic of a private chat: the chat, the
    topic (None outside topics), and in a group the message the answer replies to."""

    chat_id: int
    thread_id: int | None
    reply_to: int | None = None
    # A guest query (the bot mentioned where it is not a member): answered through it, in
    # the asker's own conversation.
    guest_query_id: str | None = None
