"""The tools a process has, which of them a user is offered, and running the calls of one
round: at once, each within its time limit, every failure turned into a result the model
reads (never an exception to the user)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from app.domain.tools import ToolCall, ToolResult
from app.tools.base import Tool, ToolContext, ToolError

log = logging.getLogger(__name__)


class Toolbox:
    """Every tool of the process by name: the bot's own, its plugins', its MCP servers'."""

    def __init__(self, tools: Iterable[Tool] = (), *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._tools: dict[str, Tool] = {}
        # Counts the changes (an MCP server back with other tools): what was worked out
        # from the tools before (ToolService's offers) is worked out again.
        self.version = 0
        # What each grantable right is for, as admins read it in /users (a str, or a lazy
        # gettext text translated when shown).
        self._described: dict[str, object] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"two tools are named {tool.name!r}")
        self._tools[tool.name] = tool
        self.version += 1

    def remove(self, name: str) -> None:
        if self._tools.pop(name, None) is not None:
            self.version += 1

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def rights(self) -> set[str]:
        """The rights the tools name: each one an admin may grant."""
        return {tool.right for tool in self._tools.values() if tool.right is not None}

    def describe_right(self, right: str, description: object) -> None:
        """Say what a right is for (its plugin or MCP server does), for /users."""
        self._described[right] = description

    def grantable(self) -> dict[str, str]:
        """Every right a tool needs or a plugin declares, with what it is for, by name."""
        names = self.rights | set(self._described)
        return {name: str(self._described.get(name, name)) for name in sorted(names)}

    def offered(self, rights: Collection[str]) -> list[Tool]:
        """The tools a user with these rights may use (admins: all), in a stable order (the
        request's prefix then stays the same from one message to the next, for the servers'
        caches)."""
        return [tool for _, tool in sorted(self._tools.items()) if allowed(tool, rights)]

    async def run(
        self,
        context: ToolContext,
        calls: Sequence[ToolCall],
        rights: Collection[str],
        *,
        on_start: Callable[[ToolCall, Tool | None], None] | None = None,
    ) -> list[ToolResult]:
        """The results of one round's calls, in the calls' order; the calls run at once."""

        async def one(call: ToolCall) -> ToolResult:
            tool = self._tools.get(call.name)
            if on_start is not None:
                on_start(call, tool)
            return await self._call(context, call, tool, rights)

        return list(await asyncio.gather(*(one(call) for call in calls)))

    async def _call(
        self, context: ToolContext, call: ToolCall, tool: Tool | None, rights: Collection[str]
    ) -> ToolResult:
        def refused(why: str) -> ToolResult:
            return ToolResult(call.id, call.name, f"Error: {why}", ok=False)

        if tool is None:
            # A name the model made up, or a tool gone since it was offered.
            log.info("The model called an unknown tool for user %s", context.user_id)
            known = ", ".join(t.name for t in self.offered(rights)) or "none"
            return refused(f"there is no tool named {call.name!r}; the tools are: {known}.")
        if not allowed(tool, rights):
            log.info(
                "Tool %s refused to user %s: no right %s", tool.name, context.user_id, tool.right
            )
            return refused(f"this user may not use the tool {tool.name!r}.")
        arguments = parse_arguments(call.arguments)
        if arguments is None:
            return refused("the arguments are not a JSON object; call the tool again with one.")
        started = time.perf_counter()
        limit = tool.timeout or self.timeout
        try:
            async with asyncio.timeout(limit):
                content = await tool.run(context, arguments)
        except ToolError as exc:
            return ToolResult(call.id, call.name, f"Error: {exc}", ok=False)
        except TimeoutError:
            log.warning("Tool %s took longer than %.0f s", tool.name, limit)
            return refused(f"the tool did not answer within {limit:.0f} seconds.")
        except Exception as exc:  # a tool's bug must not fail the answer
            # The type only at WARNING: the exception's text may carry the user's words.
            log.warning("Tool %s failed: %s", tool.name, type(exc).__name__)
            log.debug("Tool %s failed", tool.name, exc_info=True)
            return refused("the tool failed; tell the user it is not available right now.")
        return ToolResult(call.id, call.name, content, seconds=time.perf_counter() - started)


def allowed(tool: Tool, rights: Collection[str]) -> bool:
    """Whether a user with these rights may use the tool: it needs none, they have its
    right, or they are an admin."""
    return tool.right is None or tool.right in rights or "admin" in rights


def parse_arguments(text: str) -> dict[str, Any] | None:
    """The model's arguments as a dict; an empty text is no arguments. None when they are
    not a JSON object (a truncated or made-up call)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
