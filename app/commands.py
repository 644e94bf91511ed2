"""The bot's commands: one list for the menu, /help and recognising unknown commands.

The right listed for each command is the one its router group in app/handlers/__init__.py
demands: `get_routers` checks the two against each other and stops start-up if they differ.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeUnion,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import lazy_gettext as __
from babel.support import LazyProxy

from app.delivery.errors import brief
from app.domain.rights import Right
from app.i18n import DEFAULT_LOCALE, LANGUAGES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """A command and the right its router group needs (None: anyone may use it; a plugin's
    command may need a right of its own, by name).

    `description` is translated when read (`str()` of it), in the language of the moment.
    """

    name: str
    description: LazyProxy | str
    right: Right | str | None = Right.CHAT


COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("start", __("Greeting, your id and access"), right=None),
    CommandInfo("help", __("What I can do"), right=None),
    CommandInfo("new", __("Start a new conversation")),
    CommandInfo("chats", __("Your conversations: go back to one, rename, delete")),
    CommandInfo("retry", __("Answer my last message again")),
    CommandInfo("stop", __("Stop the answer being written")),
    CommandInfo("persona", __("Choose whom to talk to")),
    CommandInfo("edit_bot", __("Edit the persona's memory"), right=Right.EDIT_PERSONAS),
    CommandInfo("new_persona", __("Create a persona"), right=Right.CREATE_PERSONAS),
    CommandInfo("export_persona", __("Save the persona as a file")),
    CommandInfo(
        "import_persona", __("Recreate a persona from a file"), right=Right.CREATE_PERSONAS
    ),
    CommandInfo("memory", __("What the persona has in mind now")),
    CommandInfo("mode", __("Chat (more history) or task (longer answers)")),
    CommandInfo("forget", __("Delete this conversation for good")),
    CommandInfo("settings", __("Persona, model, answer length, language")),
    CommandInfo("usage", __("Tokens and money you have spent")),
    CommandInfo("users", __("Manage users, rights and budgets"), right=Right.ADMIN),
    CommandInfo("groups", __("Groups I am in: allow or block them"), right=Right.ADMIN),
    CommandInfo("cancel", __("Leave the current dialog"), right=None),
)

# The menu in groups: what the group router takes there (app/filters.py GROUP_COMMANDS,
# and /ask, read with the mentions), for every member; who may use which is checked there.
GROUP_MENU: tuple[CommandInfo, ...] = (
    CommandInfo("ask", __("Ask me something (or mention me)"), right=None),
    CommandInfo("settings", __("This group's settings (its admins)"), right=None),
    CommandInfo("forget", __("Forget this group's conversation (its admins)"), right=None),
)

BY_NAME = {command.name: command for command in COMMANDS}
KNOWN = frozenset(BY_NAME)


@dataclass(frozen=True, slots=True)
class CommandBook:
    """The commands of one dispatcher: ours, then its plugins' (what the menus, /help and
    the unknown-command answer read)."""

    commands: tuple[CommandInfo, ...] = COMMANDS
    by_name: dict[str, CommandInfo] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.commands})

    @classmethod
    def with_plugins(cls, extra: Sequence[CommandInfo]) -> CommandBook:
        return cls((*COMMANDS, *(c for c in extra if c.name not in BY_NAME)))

    @property
    def known(self) -> frozenset[str]:
        return frozenset(self.by_name)

    def available(self, rights: Collection[str]) -> list[CommandInfo]:
        """The commands a user with these rights may use, in menu order."""
        return [c for c in self.commands if c.right is None or c.right in rights]


def available(rights: frozenset[Right]) -> list[CommandInfo]:
    """The commands of the bot itself a user with these rights may use, in menu order."""
    return CommandBook().available(rights)


def command_name(text: str) -> str:
    """'/New@my_bot args' -> 'new'."""
    return text.split(maxsplit=1)[0].removeprefix("/").split("@", 1)[0].lower()


async def register_menu(
    bot: Bot, i18n: I18n, admin_ids: Iterable[int], book: CommandBook | None = None
) -> None:
    """The menu Telegram shows next to the input field, in every language we speak.

    Everyone's menu (private chats) leaves out the admins' commands; each admin's own chat
    gets all of them. English is the default, for every language we do not speak.

    The menu is a nicety: whatever setting it fails with (a Bot API server that does not know
    setMyCommands answers 404) is one warning, and the bot runs without it.
    """
    book = book or CommandBook()
    everyone = [c for c in book.commands if c.right is not Right.ADMIN]
    try:
        await _set_menu(bot, i18n, everyone, BotCommandScopeAllPrivateChats())
        await _set_menu(bot, i18n, list(GROUP_MENU), BotCommandScopeAllGroupChats())
    except Exception as exc:  # noqa: BLE001 - anything; the bot works without a menu
        log.warning("Command menu not set (%s); the bot runs without it", brief(exc))
        return  # the admins' menus would fail the same way
    for admin_id in sorted(set(admin_ids)):
        await set_admin_menu(bot, i18n, admin_id, book)


async def set_admin_menu(
    bot: Bot, i18n: I18n, admin_id: int, book: CommandBook | None = None
) -> None:
    """An admin's own chat gets every command, /users included."""
    commands = list((book or CommandBook()).commands)
    try:
        await _set_menu(bot, i18n, commands, BotCommandScopeChat(chat_id=admin_id))
    except Exception as exc:  # noqa: BLE001 - a menu is never worth an error
        # Mostly "chat not found": the admin has never written to the bot (or blocked it).
        # Their menu is set at the next start after they have.
        log.warning("Admin %s gets no admin menu yet (%s)", admin_id, brief(exc))


async def remove_admin_menu(bot: Bot, admin_id: int) -> None:
    """A former admin's chat falls back to everyone's menu."""
    try:
        for locale in LANGUAGES:
            await bot.delete_my_commands(
                scope=BotCommandScopeChat(chat_id=admin_id),
                language_code=None if locale == DEFAULT_LOCALE else locale,
            )
    except Exception as exc:  # noqa: BLE001 - a menu is never worth an error
        log.warning("Admin menu of %s not removed (%s)", admin_id, brief(exc))


async def _set_menu(
    bot: Bot, i18n: I18n, commands: list[CommandInfo], scope: BotCommandScopeUnion
) -> None:
    for locale in LANGUAGES:
        with i18n.context(), i18n.use_locale(locale):
            menu = [BotCommand(command=c.name, description=str(c.description)) for c in commands]
        await bot.set_my_commands(
            menu, scope=scope, language_code=None if locale == DEFAULT_LOCALE else locale
        )
