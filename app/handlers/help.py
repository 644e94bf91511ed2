"""/help: the commands this user may use."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from app import commands, texts
from app.domain.users import UserContext


async def help_command(
    message: Message, user: UserContext, command_book: commands.CommandBook
) -> None:
    rights = user.rights | user.tool_rights
    available = [(c.name, str(c.description)) for c in command_book.available(rights)]
    text = texts.help_text(available)
    if user.has_access:
        text += "\n\n" + texts.help_chat()
    await message.answer(text)


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(help_command, Command("help"))
    return router
