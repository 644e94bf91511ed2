"""/stop, and Telegram's stop button on a draft: the answer being written ends at once, and
what arrived is kept as the answer."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message, MessageGenerationStopped

from app import texts
from app.services.chat import ChatService


async def stop_command(message: Message, chat: ChatService) -> None:
    if not await chat.stop(message.chat.id):
        await message.answer(texts.nothing_to_stop())


async def stop_button(event: MessageGenerationStopped, chat: ChatService) -> None:
    # Telegram sends this for a draft sent with can_stop when the user presses its stop
    # button; a stop for a draft whose answer has finished meanwhile changes nothing.
    await chat.stop(event.chat.id, event.draft_id)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(stop_command, Command("stop"))
    router.stopped_message_generation.register(stop_button)
    return router
