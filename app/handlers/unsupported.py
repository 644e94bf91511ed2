"""Stickers, photos, voice, files: a note on what the bot can read."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from app import texts


async def unsupported(message: Message) -> None:
    await message.answer(texts.unsupported_content())


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(unsupported, ~F.text)
    return router
