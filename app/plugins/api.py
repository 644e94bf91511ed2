"""Everything a plugin may use of the bot: import from here, never from the rest of `app`
(that may change from one version to the next; this module changes with care).

A plugin is a factory, `def plugin(context: PluginContext) -> Plugin`, named by an entry
point of the `telegram_bot_assistant.plugins` group (or a module in PLUGINS_PATH that has
such a function named `plugin`). The factory runs once per dispatcher, before it starts:
build the plugin's routers there (an aiogram Router joins one dispatcher only). See
docs/plugins.md and examples/plugins/.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiogram import Bot, Router
from aiogram.utils.i18n import I18n
from openai import AsyncOpenAI
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.domain.jobs import Job
from app.domain.users import Preferences, UserContext
from app.tools.base import Tool, ToolContext, ToolError

__all__ = [
    "Command",
    "Job",
    "Jobs",
    "Plugin",
    "PluginContext",
    "PluginSettings",
    "Preferences",
    "Tool",
    "ToolContext",
    "ToolError",
    "UserContext",
]

S = TypeVar("S", bound=BaseSettings)


class PluginSettings(BaseSettings):
    """A plugin's settings: subclass it with `model_config = SettingsConfigDict(env_prefix=
    "MYPLUGIN_")`; read from the environment and .env like the bot's own."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")


class Jobs(Protocol):
    """A plugin's scheduled jobs (`PluginContext.jobs`), kept in the bot's database: they
    survive a restart, and with several replicas each is done by one of them."""

    def on_due(self, handler: Callable[[Job], Awaitable[None]]) -> None:
        """`handler(job)` does each job when it is due (call it in the factory). A handler
        that raises is tried again later (a few times, minutes apart)."""

    async def schedule(
        self,
        *,
        user_id: int,
        chat_id: int,
        due_at: datetime,
        payload: dict[str, Any],
        thread_id: int | None = None,
    ) -> Job:
        """Keep a job for `due_at` (aware: with its time zone); `payload` is JSON."""

    async def of_user(self, user_id: int) -> list[Job]:
        """The user's jobs of this plugin, soonest first."""

    async def cancel(self, user_id: int, job_id: int) -> bool:
        """Delete the user's job; False when it is not theirs or no longer there."""


@dataclass(frozen=True, slots=True)
class Command:
    """A command a plugin's router takes, for the menu, /help and the unknown-command
    answer. `description` is English, or a lazy gettext text of the plugin's catalog.
    `right`: what a user needs ("chat", the default; None: anyone; or a right the plugin
    declares in `Plugin.rights`); the plugin's router for it is placed behind that right."""

    name: str
    description: object
    right: str | None = "chat"


@dataclass(slots=True)
class PluginContext:
    """What a plugin gets from the bot."""

    name: str
    # The bot's OpenAI-compatible client (the owner's model server): for a plugin that
    # calls models itself.
    llm: AsyncOpenAI
    # The bot's translations: `i18n.gettext` answers in the language of the update being
    # handled. A plugin's own catalog is added with `Plugin.locales`.
    i18n: I18n
    # What "now" is (a test clock in tests): aware, in UTC.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # The log a plugin writes to ("plugins.<name>"): never users' text at INFO or above.
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("plugins"))
    # Filled once the bot runs (for `on_startup`): the Bot to send with.
    bot: Bot | None = None
    # Jobs kept for a time (app/services/jobs.py): reminders and the like.
    jobs: Jobs | None = None
    # The bot's own services a built-in plugin is handed by name (see each plugin);
    # third-party plugins should not rely on them.
    services: Mapping[str, Any] = field(default_factory=dict)

    def settings(self, kind: type[S]) -> S:
        """The plugin's settings, read now; a bad value stops the plugin, not the bot."""
        return kind()


@dataclass(slots=True)
class Plugin:
    """What a plugin brings. Every part is optional."""

    name: str
    # Routers with the plugin's commands and dialogs (StatesGroups of its own), each
    # placed behind the right its commands name.
    routers: Sequence[Router] = ()
    commands: Sequence[Command] = ()
    # Tools the model may call; each names the right it needs (Tool.right).
    tools: Sequence[Tool] = ()
    # Rights the plugin's tools or commands need, with what each one allows (English):
    # admins grant them in /users and with `python -m app users grant ID RIGHT`.
    rights: Mapping[str, str] = field(default_factory=dict)
    # A gettext folder (<language>/LC_MESSAGES/<name>.mo) for the plugin's texts.
    locales: Path | None = None
    # Run when the bot starts (the context then has `bot`) and when it stops.
    on_startup: Callable[[PluginContext], Awaitable[None]] | None = None
    on_shutdown: Callable[[PluginContext], Awaitable[None]] | None = None
