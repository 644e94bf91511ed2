"""A note meant for one member of a group (a refusal, a budget notice): an ephemeral message
only they see (Bot API 10.2 `ephemeral_message_parameters`), and where the server refuses
one, a short reply to their message instead."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import EphemeralMessageParameters, ReplyParameters

from app.delivery.errors import NotBotApiAnswer, brief

log = logging.getLogger(__name__)


async def tell_one(
    bot: Bot,
    chat_id: int,
    user_id: int,
    text: str,
    *,
    reply_to: int | None = None,
    thread_id: int | None = None,
) -> None:
    try:
        await bot.send_message(
            chat_id,
            text,
            ephemeral_message_parameters=EphemeralMessageParameters(receiver_user_id=user_id),
            message_thread_id=thread_id,
        )
        return
    except (TelegramAPIError, NotBotApiAnswer) as exc:
        log.info("No ephemeral message in chat %s (%s); replying instead", chat_id, brief(exc))
    reply = (
        ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        if reply_to is not None
        else None
    )
    await bot.send_message(chat_id, text, reply_parameters=reply, message_thread_id=thread_id)
