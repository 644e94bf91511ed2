"""The bot's commands: one list for the menu, /help and recognising unknown commands."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats

from app.rights import Right


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """A command and the right it needs (None: anyone may use it)."""

    name: str
    description: str
    right: Right | None = Right.CHAT


COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("start", "Greeting, your id and access", right=None),
    CommandInfo("help", "What I can do", right=None),
    CommandInfo("new", "Start a new conversation"),
    CommandInfo("retry", "Answer my last message again"),
    CommandInfo("persona", "Choose whom to talk to"),
    CommandInfo("edit_bot", "Edit the persona's memory", right=Right.EDIT_PERSONAS),
    CommandInfo("new_persona", "Create a persona", right=Right.CREATE_PERSONAS),
    CommandInfo("export_persona", "Save the persona as a file"),
    CommandInfo("import_persona", "Recreate a persona from a file", right=Right.CREATE_PERSONAS),
    CommandInfo("memory", "What the persona has in mind now"),
    CommandInfo("mode", "Chat (more history) or task (longer answers)"),
    CommandInfo("forget", "Delete this conversation for good"),
    CommandInfo("settings", "Persona, model, answer length, language"),
    CommandInfo("usage", "Tokens and money you have spent"),
    CommandInfo("users", "Manage users, rights and budgets", right=Right.ADMIN),
    CommandInfo("cancel", "Leave the current dialog", right=None),
)

BY_NAME = {command.name: command for command in COMMANDS}
KNOWN = frozenset(BY_NAME)


def available(rights: frozenset[Right]) -> list[CommandInfo]:
    """The commands a user with these rights may use, in menu order."""
    return [c for c in COMMANDS if c.right is None or c.right in rights]


def command_name(text: str) -> str:
    """'/New@my_bot args' -> 'new'."""
    return text.split(maxsplit=1)[0].removeprefix("/").split("@", 1)[0].lower()


async def register_menu(bot: Bot) -> None:
    """The menu Telegram shows next to the input field, for private chats."""
    await bot.set_my_commands(
        [BotCommand(command=c.name, description=c.description) for c in COMMANDS],
        scope=BotCommandScopeAllPrivateChats(),
    )
