"""Commands the bot does not know: pointed to /help."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from app import commands, texts


def _is_unknown_command(text: str) -> bool:
    return text.startswith("/") and commands.command_name(text) not in commands.KNOWN


async def unknown_command(message: Message) -> None:
    await message.answer(texts.UNKNOWN_COMMAND)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(unknown_command, F.text.func(_is_unknown_command))
    return router
