"""A tiny MCP server over stdio, made with the official SDK, for the MCP tests: run as
`python -m tests.fakes.mcp_server`. Its tools add numbers, fail on purpose, and tell the
process id (so a test can kill the process and see the server come back)."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("fake")


@server.tool(description="Add two numbers.")
def add(a: float, b: float) -> str:
    total = a + b
    return str(int(total) if total.is_integer() else total)


@server.tool(description="Always fails.")
def fail() -> str:
    # The SDK sends a ToolError's text to the client as the result of a failed call.
    raise ToolError("the fake server failed on purpose")


@server.tool(description="The server's process id.")
def pid() -> str:
    return str(os.getpid())


if __name__ == "__main__":
    server.run("stdio")
