"""In groups the bot hears only what is addressed to it: everything else stops here, before
a database session is opened or a user is registered, so a busy group costs nothing;
except in a group with "listen" on, where a message with text goes on, marked `overheard`,
to be kept as context (never answered)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import TelegramObject, Update

from app.filters import GROUP_CHATS, group_command, question_to
from app.middlewares.placement import placed
from app.services.groups import GroupService


class GroupGateMiddleware(BaseMiddleware):
    """Outer update middleware, before the per-chat ordering (which would cost a group's
    every message Redis round trips): a group message passes only when it mentions the
    bot (`@username`, or a text mention of it), replies to one of its messages, or is
    `/ask` (`/ask@ThisBot`). Handled on purpose besides:
    - other bots are never answered (two bots could answer each other for ever);
    - anonymous admins and channel posts (`sender_chat`) have no user to answer, to check
      for access or to charge: they are left alone too;
    - service messages (members joining, pins, ...) carry no text: nothing to answer.
    """

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        message = event.message if isinstance(event, Update) else None
        if message is None or message.chat.type not in GROUP_CHATS:
            # Edits of group messages are not answered again: a group is not a private chat.
            edited = event.edited_message if isinstance(event, Update) else None
            if edited is not None and edited.chat.type in GROUP_CHATS:
                placed()
                return None
            return await handler(event, data)
        sender = message.from_user
        if sender is None or sender.is_bot or message.sender_chat is not None:
            placed()  # nothing to order
            return None
        bot: Bot = data["bot"]
        me = await bot.me()
        if question_to(message, me) is None and group_command(message, me) is None:
            groups: GroupService = data["groups"]
            text = message.text or message.caption
            if text and not text.startswith("/") and await groups.listens(message.chat.id):
                data["overheard"] = True  # for the group router's `overhear`
                return await handler(event, data)
            placed()
            return None
        return await handler(event, data)
