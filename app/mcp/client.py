"""The connections to the MCP servers: each started or connected at start-up, at once and
each within a time limit, its tools wrapped as ours; a server that fails then is logged and
skipped. One that dies later (its process exits, its HTTP session breaks) is reconnected in
the background, with a growing pause; meanwhile its calls tell the model it is away. Back,
its tools are listed again, and the toolbox follows what it lists now (a server updated
while it was away may have others)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CONNECTION_CLOSED
from mcp.types import Tool as McpTool

from app.mcp.config import HttpServer, ServerConfig, StdioServer
from app.mcp.tools import object_schema, result_text, right_name, tool_name
from app.tools.base import Tool, ToolContext, ToolError
from app.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

# Pauses between reconnections: doubling from the first to the last.
BACKOFF_FIRST = 1.0
BACKOFF_LAST = 60.0
# How often a quiet connection is looked at (its tools listed), so a dead server is found
# before a call needs it, and a change of its tools is followed.
PING_EVERY = 15.0
# Seconds closing a connection may take (a process is killed after the SDK's own wait).
CLOSE_TIMEOUT = 10.0
# Most pages of a server's tool list read (a server that pages for ever cannot hang us).
_MOST_PAGES = 20


class ServerGone(Exception):
    """The connection to a server broke: its process exited or its session ended."""


class McpConnection:
    """One server: a task that holds its connection open (the SDK's contexts live in one
    task), reconnects when it breaks, and the calls routed to it meanwhile."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        start_timeout: float,
        backoff: tuple[float, float] = (BACKOFF_FIRST, BACKOFF_LAST),
        ping_every: float = PING_EVERY,
    ) -> None:
        self.config = config
        self.name = config.name
        self.start_timeout = start_timeout
        self.backoff = backoff
        self.ping_every = ping_every
        self.tools: list[McpTool] = []
        # Called when the server lists other tools than before (McpManager.start sets it).
        self.on_relisted: Callable[[McpConnection], None] | None = None
        self._client: Client | None = None
        self._listed = asyncio.Event()
        self._broken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.reconnections = 0

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def start(self) -> bool:
        """Connect and list the tools within the start time-out; False (logged) when the
        server could not be used, and then it is not tried again."""
        self._task = asyncio.create_task(self._hold(), name=f"mcp:{self.name}")
        listed = asyncio.create_task(self._listed.wait())
        try:
            await asyncio.wait(
                (self._task, listed), timeout=self.start_timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            listed.cancel()
        if self._listed.is_set():
            return True
        if not self._task.done():
            log.warning(
                "MCP server %s did not start within %.0f s: skipped", self.name, self.start_timeout
            )
            await self.stop()
        else:
            reason = None if self._task.cancelled() else self._task.exception()
            log.warning("MCP server %s could not start: %s; skipped", self.name, describe(reason))
        return False

    async def stop(self) -> None:
        """Close the connection: a server's process is terminated with its children."""
        task, self._task = self._task, None
        if task is None or task.done():
            return
        self._stopping = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """The tool's result as text; ToolError when it failed or the server is away."""
        client = self._client
        if client is None:
            raise ToolError(
                f"the MCP server {self.name!r} is not connected right now; it is being "
                "reconnected, so tell the user to try again in a minute."
            )
        try:
            result = await client.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self._broken.set()
                raise ToolError(
                    f"the MCP server {self.name!r} stopped while it was called; it is being "
                    "reconnected, so tell the user to try again in a minute."
                ) from None
            raise ToolError(exc.message) from None
        except (OSError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            self._broken.set()
            raise ToolError(f"the MCP server {self.name!r} cannot be reached.") from exc
        text = result_text(result)
        if result.is_error:
            raise ToolError(text or "the tool failed without saying why.")
        return text

    async def _hold(self) -> None:
        """Connect, then stay connected until stopped: reconnect whenever it breaks. The
        first connection's failure ends the task (start() reports it)."""
        pause = self.backoff[0]
        while True:
            try:
                async with asyncio.timeout(self.start_timeout):
                    stack = AsyncExitStack()
                    client = await stack.enter_async_context(connect(self.config))
                try:
                    async with asyncio.timeout(self.start_timeout):
                        tools = await list_tools(client)
                    pause = self.backoff[0]
                    self._broken.clear()
                    self._client = client
                    if self._listed.is_set():
                        self.reconnections += 1
                        if self._take(tools):
                            log.info(
                                "MCP server %s is back, with other tools: %d now",
                                self.name,
                                len(tools),
                            )
                        else:
                            log.info("MCP server %s is back", self.name)
                    else:
                        self.tools = tools
                        self._listed.set()
                    await self._watch(client)
                finally:
                    self._client = None
                    await close(stack, self.name)
            except asyncio.CancelledError:
                if self._stopping:
                    raise
                # Not ours: the SDK's task group cancels the task holding it when one of its
                # own tasks fails (an HTTP stream that broke). The connection is gone.
                _uncancel()
                if not self._listed.is_set():
                    raise ServerGone("the connection broke") from None
                log.warning("MCP server %s broke; reconnecting in %.0f s", self.name, pause)
            except Exception as exc:
                if not self._listed.is_set():
                    raise  # start() logs it and skips the server
                # One warning when it goes; while it stays away, each try at INFO.
                log.log(
                    logging.WARNING if pause == self.backoff[0] else logging.INFO,
                    "MCP server %s is down (%s); reconnecting in %.0f s",
                    self.name,
                    describe(exc),
                    pause,
                )
                log.debug("MCP server %s is down", self.name, exc_info=True)
            else:
                log.warning("MCP server %s stopped; reconnecting in %.0f s", self.name, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.backoff[1])

    def _take(self, tools: list[McpTool]) -> bool:
        """The server's tools as listed now; whether they changed (then the toolbox is told)."""
        if _signature(tools) == _signature(self.tools):
            return False
        self.tools = tools
        if self.on_relisted is not None:
            self.on_relisted(self)
        return True

    async def _watch(self, client: Client) -> None:
        """Return when the connection is found broken: by a call, or by the look at a quiet
        server every `ping_every` seconds. The look lists its tools (the SDK's ping is gone
        from the protocol of 2026-07-28, where servers answer it "method not found"), so a
        server whose tools change while it runs has them followed too."""
        while True:
            try:
                async with asyncio.timeout(self.ping_every):
                    await self._broken.wait()
                return
            except TimeoutError:
                pass
            try:
                async with asyncio.timeout(self.start_timeout):
                    tools = await list_tools(client)
            except MCPError as exc:
                if exc.code == CONNECTION_CLOSED:
                    raise ServerGone(describe(exc)) from exc
                continue  # it answered, if not with its tools: it is there
            except (OSError, TimeoutError, anyio.ClosedResourceError) as exc:
                raise ServerGone(describe(exc)) from exc
            if self._take(tools):
                log.info("MCP server %s lists other tools: %d now", self.name, len(tools))


class McpManager:
    """Every server of MCP_CONFIG, and their tools as ours."""

    def __init__(self, servers: Sequence[ServerConfig], *, start_timeout: float) -> None:
        self.connections = [McpConnection(s, start_timeout=start_timeout) for s in servers]
        self.started: list[McpConnection] = []
        self._started = False
        # The toolbox's names of each server's tools, by server.
        self._names: dict[str, set[str]] = {}
        self._toolbox: Toolbox | None = None

    async def start(self, toolbox: Toolbox) -> None:
        """Start or connect every server at once, and put the tools of those that came up
        into `toolbox` (nothing the second time: they are there already). The toolbox then
        follows each server: one back with other tools has its old ones taken out and its
        new ones put in."""
        if not self.connections or self._started:
            return
        self._started = True
        self._toolbox = toolbox
        up = await asyncio.gather(*(c.start() for c in self.connections))
        self.started = [c for c, ok in zip(self.connections, up, strict=True) if ok]
        for connection in self.started:
            self._put(connection)
            connection.on_relisted = self._put
            log.info("MCP server %s: %d tools", connection.name, len(connection.tools))

    def _put(self, connection: McpConnection) -> None:
        """The server's tools into the toolbox, in place of those it had there."""
        toolbox = self._toolbox
        if toolbox is None:
            return
        mine = self._names.setdefault(connection.name, set())
        for name in mine:
            toolbox.remove(name)
        mine.clear()
        for tool in wrap(connection):
            if toolbox.get(tool.name) is not None:
                log.warning("MCP tool %s is listed twice: the second is skipped", tool.name)
                continue
            toolbox.add(tool)
            mine.add(tool.name)

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.connections))

    def connection(self, name: str) -> McpConnection | None:
        return next((c for c in self.connections if c.name == name), None)


def wrap(connection: McpConnection) -> list[Tool]:
    """The server's tools as ours, each behind the server's right, calling through the
    connection (so they keep working across its reconnections)."""
    right = right_name(connection.name)
    wrapped: list[Tool] = []
    for listed in connection.tools:

        async def run(
            context: ToolContext, arguments: dict[str, Any], remote: str = listed.name
        ) -> str:
            return await connection.call(remote, arguments)

        description = listed.description or listed.title or listed.name
        wrapped.append(
            Tool(
                name=tool_name(connection.name, listed.name),
                description=f"[{connection.name}] {description}",
                parameters=object_schema(listed.input_schema),
                run=run,
                right=right,
            )
        )
    return wrapped


@asynccontextmanager
async def connect(config: ServerConfig) -> AsyncIterator[Client]:
    """A connected client: the server's process started (stdio) or its session opened."""
    async with AsyncExitStack() as stack:
        if isinstance(config, StdioServer):
            params = StdioServerParameters(
                command=config.command,
                args=list(config.args),
                env=dict(config.env) or None,
                cwd=config.cwd,
            )
            # The server's own log lines go to our stderr, as other clients do.
            transport: Any = stdio_client(params, errlog=sys.stderr)
        else:
            assert isinstance(config, HttpServer)
            # The SDK's own HTTP client, with its timeouts for MCP (a long read for event
            # streams): what streamable_http_client makes when given none; ours sends headers.
            http = await stack.enter_async_context(
                create_mcp_http_client(headers=dict(config.headers) or None)
            )
            transport = streamable_http_client(config.url, http_client=http)
        client = await stack.enter_async_context(Client(transport))
        yield client


async def close(stack: AsyncExitStack, name: str) -> None:
    """Close a connection, broken or not, within a time limit (a dead HTTP server may keep
    the session's goodbye waiting)."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await stack.aclose()
    except TimeoutError:
        log.warning("MCP server %s: closing its connection took over %.0f s", name, CLOSE_TIMEOUT)
    except Exception as exc:  # a broken connection may fail to close: it is gone either way
        log.debug("MCP server %s: closing failed: %s", name, describe(exc), exc_info=True)


async def list_tools(client: Client) -> list[McpTool]:
    tools: list[McpTool] = []
    cursor: str | None = None
    for _ in range(_MOST_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _signature(tools: Sequence[McpTool]) -> list[tuple[str, str, str]]:
    """What of a tool list the model is offered: names, descriptions, schemas."""
    return sorted(
        (
            tool.name,
            tool.description or tool.title or "",
            json.dumps(tool.input_schema, sort_keys=True, default=str),
        )
        for tool in tools
    )


def _uncancel() -> None:
    """Forget the cancellations the SDK asked of this task, so time limits work again."""
    task = asyncio.current_task()
    while task is not None and task.cancelling():
        task.uncancel()


def describe(exc: BaseException | None) -> str:
    """A failure in a few words for the log: its type and, for errors that carry no secret
    (a missing program, a refused connection, a protocol error), its message. Headers and
    environment values never appear: the SDK's errors do not carry them."""
    if exc is None:
        return "it stopped"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError | MCPError | ServerGone):
        return f"{type(exc).__name__}: {exc}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):  # an HTTP error: its status, not its URL or headers
        return f"{type(exc).__name__}: HTTP {status}"
    return type(exc).__name__
