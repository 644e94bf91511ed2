"""A tiny MCP server made with the official SDK, for the MCP tests: over stdio as
`python -m tests.fakes.mcp_server`, over streamable HTTP on 127.0.0.1 with `--http PORT`
(at /mcp). Its tools add numbers, fail on purpose, tell the process id (so a test can kill
the process and see the server come back) and echo a request header (HTTP); with a file at
FAKE_MCP_MULTIPLY when it starts, it multiplies too (a server updated while it was away)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("fake", log_level="WARNING")


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


@server.tool(description="A header of the HTTP request that called this tool.")
def header(name: str, ctx: Context[Any, Any]) -> str:
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    return "" if headers is None else str(headers.get(name, ""))


if os.path.exists(os.environ.get("FAKE_MCP_MULTIPLY") or "/nonexistent"):

    @server.tool(description="Multiply two numbers.")
    def multiply(a: float, b: float) -> str:
        product = a * b
        return str(int(product) if product.is_integer() else product)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, metavar="PORT")
    port = parser.parse_args().http
    logging.basicConfig(level=logging.WARNING)
    if port is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=port)
