"""Commands no router took: unknown ones, and known ones this user has no right to."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Filter
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from app import commands, texts
from app.domain.rights import Right
from app.filters import HasRight


class UnknownCommand(Filter):
    """A command none of this dispatcher's (ours and its plugins') is called; and an admin
    command, which is not admitted to exist for anyone else (an admin's command reaches
    this router only when the user is not an admin)."""

    async def __call__(self, message: Message, command_book: commands.CommandBook) -> bool:
        text = message.text
        # A message without text (a voice, a photo) is no command.
        if text is None or not text.startswith("/"):
            return False
        command = command_book.by_name.get(commands.command_name(text))
        return command is None or command.right is Right.ADMIN


async def unknown_command(message: Message) -> None:
    await message.answer(texts.unknown_command())


async def not_allowed(message: Message) -> None:
    name = commands.command_name(message.text or "")
    await message.answer(
        _(
            "You may not use /{command}: an admin has not given you that right. "
            "/help lists what you can do."
        ).format(command=name)
    )


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(unknown_command, UnknownCommand())
    # A known command that its group turned away; without access at all, `denied` answers.
    router.message.register(not_allowed, F.text.startswith("/"), HasRight(Right.CHAT))
    return router
