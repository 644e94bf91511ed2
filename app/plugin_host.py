"""The plugins of one dispatcher: loaded (app/plugins/loader.py), their tools put in the
toolbox, their rights described for /users, their catalogs added, their routers placed
behind the rights their commands name, and their start and stop run with the bot's.

Whatever a plugin gets wrong (a tool named like another, a command of ours, a router whose
commands need different rights, a failing start) leaves that plugin out with one WARNING."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Filter
from aiogram.types import TelegramObject
from babel.support import LazyProxy
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.commands import BY_NAME, CommandInfo
from app.config import PluginsSettings
from app.domain.rights import Right, is_tool_right
from app.handlers import commands_of
from app.i18n import CatalogI18n, create_i18n
from app.plugins.api import Plugin, PluginContext
from app.plugins.loader import load_plugins
from app.services.jobs import JobScheduler
from app.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

_BUILT_IN_RIGHTS = {right.value for right in Right}


class PluginProblem(ValueError):
    """What makes a plugin unusable, said in the WARNING that leaves it out."""


class _Running(Filter):
    """Lets updates into a plugin's routers only while it runs (not once its start failed)."""

    def __init__(self, host: PluginHost, name: str) -> None:
        self.host, self.name = host, name

    async def __call__(self, event: TelegramObject) -> bool:
        return self.name not in self.host.failed


@dataclass(slots=True)
class PluginHost:
    plugins: list[tuple[Plugin, PluginContext]] = field(default_factory=list)
    routers: list[tuple[str | None, Router]] = field(default_factory=list)
    commands: list[CommandInfo] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)

    @classmethod
    def load(
        cls,
        settings: PluginsSettings,
        *,
        toolbox: Toolbox,
        i18n: CatalogI18n,
        llm: AsyncOpenAI,
        clock: Callable[[], datetime],
        services: dict[str, Any],
        jobs: JobScheduler | None = None,
    ) -> PluginHost:
        host = cls()
        if not settings.enabled:
            return host

        def context(name: str) -> PluginContext:
            return PluginContext(
                name,
                llm,
                i18n,
                clock=clock,
                log=logging.getLogger(f"plugins.{name}"),
                services=services,
                jobs=jobs.for_plugin(name) if jobs is not None else None,
            )

        for plugin, plugin_context in load_plugins(settings.enabled, settings.path, context):
            try:
                host._add(plugin, toolbox, i18n)
            except (PluginProblem, ValueError) as exc:
                log.warning("Plugin %r is left out: %s", plugin.name, exc)
                continue
            host.plugins.append((plugin, plugin_context))
        return host

    def _add(self, plugin: Plugin, toolbox: Toolbox, i18n: CatalogI18n) -> None:
        """Check everything first, then change the toolbox: a refused plugin leaves no trace."""
        declared = set(plugin.rights)
        for right in declared:
            if not is_tool_right(right):
                raise PluginProblem(f"its right {right!r} is not a name of its own")
        usable = _BUILT_IN_RIGHTS | declared
        commands = {command.name: command for command in plugin.commands}
        taken = BY_NAME.keys() | {c.name for c in self.commands}
        for command in plugin.commands:
            if command.name in taken:
                raise PluginProblem(f"/{command.name} is a command of the bot already")
            if command.right is not None and command.right not in usable:
                raise PluginProblem(f"/{command.name} needs {command.right!r}, not declared")
        placed: list[tuple[str | None, Router]] = []
        for router in plugin.routers:
            names = commands_of(router)
            if unlisted := names - commands.keys():
                raise PluginProblem(f"its router takes /{min(unlisted)}, not in its commands")
            rights = {commands[name].right for name in names} or {Right.CHAT.value}
            if len(rights) > 1:
                raise PluginProblem(f"router {router.name!r} takes commands of several rights")
            placed.append((rights.pop(), router))
        for tool in plugin.tools:
            if toolbox.get(tool.name) is not None:
                raise PluginProblem(f"a tool named {tool.name!r} exists already")
            if tool.right is not None and tool.right not in usable:
                raise PluginProblem(f"tool {tool.name!r} needs {tool.right!r}, not declared")
        # Checked: now it joins.
        for tool in plugin.tools:
            toolbox.add(tool)
        for name, description in plugin.rights.items():
            toolbox.describe_right(name, description)
        if plugin.locales is not None:
            i18n.add_catalogs(plugin.locales, plugin.name)
        for needed, router in placed:
            router.message.filter(_Running(self, plugin.name))
            router.callback_query.filter(_Running(self, plugin.name))
            self.routers.append((needed, router))
        self.commands += [
            CommandInfo(
                command.name,
                command.description
                if isinstance(command.description, LazyProxy)
                else str(command.description),
                command.right,
            )
            for command in plugin.commands
        ]

    async def start(self, bot: Bot, toolbox: Toolbox) -> None:
        for plugin, context in self.plugins:
            context.bot = bot
            if plugin.on_startup is None:
                continue
            try:
                await plugin.on_startup(context)
            except Exception as exc:  # noqa: BLE001 - a plugin's failure must not stop the bot
                log.warning(
                    "Plugin %r failed to start and is left out: %s: %s",
                    plugin.name,
                    type(exc).__name__,
                    exc,
                )
                self.failed.add(plugin.name)
                for tool in plugin.tools:
                    toolbox.remove(tool.name)

    @staticmethod
    def declared_rights(settings: PluginsSettings) -> dict[str, str]:
        """The rights the plugins in PLUGINS declare, by name (for the command line, which
        runs no bot): their factories are run with a context that calls nothing."""
        if not settings.enabled:
            return {}
        unused = AsyncOpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
        host = PluginHost.load(
            settings,
            toolbox=Toolbox(),
            i18n=create_i18n(),
            llm=unused,
            clock=lambda: datetime.now(UTC),
            services={},
            # Never started: a plugin that schedules jobs (reminders) is built all the same.
            jobs=JobScheduler(async_sessionmaker(), clock=lambda: datetime.now(UTC)),
        )
        return {
            name: str(text) for plugin, _ in host.plugins for name, text in plugin.rights.items()
        }

    async def stop(self) -> None:
        for plugin, context in reversed(self.plugins):
            if plugin.on_shutdown is None or plugin.name in self.failed:
                continue
            try:
                await plugin.on_shutdown(context)
            except Exception as exc:  # noqa: BLE001 - every plugin gets its stop
                log.warning("Plugin %r failed to stop: %s", plugin.name, type(exc).__name__)
