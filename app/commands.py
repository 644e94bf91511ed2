"""The bot's commands: one list for the menu, /help and recognising unknown commands."""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """A command and who may use it."""

    name: str
    description: str
    needs_access: bool = True


COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("start", "Greeting, your id and access", needs_access=False),
    CommandInfo("help", "What I can do", needs_access=False),
    CommandInfo("new", "Start a new conversation"),
    CommandInfo("retry", "Answer my last message again"),
    CommandInfo("persona", "Choose whom to talk to"),
    CommandInfo("edit_bot", "Edit the persona's memory"),
    CommandInfo("new_persona", "Create a persona"),
    CommandInfo("export_persona", "Save the persona as a file"),
    CommandInfo("import_persona", "Recreate a persona from a file"),
    CommandInfo("memory", "What the persona has in mind now"),
    CommandInfo("mode", "Chat (more history) or task (longer answers)"),
    CommandInfo("forget", "Delete this conversation for good"),
    CommandInfo("cancel", "Leave the current dialog", needs_access=False),
)

KNOWN = frozenset(command.name for command in COMMANDS)


def available(has_access: bool) -> list[CommandInfo]:
    return [command for command in COMMANDS if has_access or not command.needs_access]


def command_name(text: str) -> str:
    """'/New@my_bot args' -> 'new'."""
    return text.split(maxsplit=1)[0].removeprefix("/").split("@", 1)[0].lower()


async def register_menu(bot: Bot) -> None:
    """The menu Telegram shows next to the input field, for private chats."""
    await bot.set_my_commands(
        [BotCommand(command=c.name, description=c.description) for c in COMMANDS],
        scope=BotCommandScopeAllPrivateChats(),
    )
