"""The MCP servers to use, read from the JSON file MCP_CONFIG names, in the `mcpServers`
format other MCP clients read: a `command` (with `args`, `env`, `cwd`) for a server over
stdio, or a `url` (with `headers`) for one over streamable HTTP. Keys we do not use are
ignored, as other clients do; `${NAME}` in a value is the environment variable NAME, so
secrets can stay out of the file."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class McpConfigError(ValueError):
    """The file cannot be used: the sentence names the file and what is wrong in it."""


@dataclass(frozen=True, slots=True)
class StdioServer:
    """A server the bot starts as a process and talks to over its stdin and stdout."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    # Added to a minimal environment (PATH, HOME...): the bot's own secrets are not passed.
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A server the bot connects to over streamable HTTP."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


ServerConfig = StdioServer | HttpServer


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> list[ServerConfig]:
    """The servers the file lists, in its order; McpConfigError for a file that cannot be
    read or is malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise McpConfigError(f"MCP_CONFIG file {path} cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(
            f"MCP_CONFIG file {path} is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    try:
        return parse_config(data, os.environ if environ is None else environ)
    except McpConfigError as exc:
        raise McpConfigError(f"MCP_CONFIG file {path}: {exc}") from None


def parse_config(data: Any, environ: Mapping[str, str]) -> list[ServerConfig]:
    """The servers of a parsed file; McpConfigError naming the first problem."""
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise McpConfigError('it must be an object with "mcpServers": {"name": {...}, ...}')
    servers: list[ServerConfig] = []
    for name, entry in data["mcpServers"].items():
        if not name.strip():
            raise McpConfigError("a server has an empty name")
        if not isinstance(entry, dict):
            raise McpConfigError(f"mcpServers.{name} must be an object")
        if entry.get("disabled") is True:  # as Cline and others mark a server kept for later
            continue
        servers.append(_server(name, entry, environ))
    return servers


def _server(name: str, entry: dict[str, Any], environ: Mapping[str, str]) -> ServerConfig:
    where = f"mcpServers.{name}"
    kind = entry.get("type")
    if kind == "sse" or entry.get("transport") == "sse":
        raise McpConfigError(f"{where}: the SSE transport is not supported; use streamable HTTP")
    has_command, has_url = "command" in entry, "url" in entry
    if has_command == has_url:
        raise McpConfigError(f'{where} needs either "command" (stdio) or "url" (HTTP)')
    if has_command:
        command = _text(entry["command"], f"{where}.command", environ)
        if not command.strip():
            raise McpConfigError(f"{where}.command is empty")
        args = entry.get("args", [])
        if not isinstance(args, list):
            raise McpConfigError(f"{where}.args must be a list of strings")
        cwd = entry.get("cwd")
        return StdioServer(
            name=name,
            command=command,
            args=tuple(_text(arg, f"{where}.args", environ) for arg in args),
            env=_strings(entry.get("env", {}), f"{where}.env", environ),
            cwd=None if cwd is None else _text(cwd, f"{where}.cwd", environ),
        )
    url = _text(entry["url"], f"{where}.url", environ)
    if not url.startswith(("http://", "https://")):
        raise McpConfigError(f"{where}.url must start with http:// or https://")
    return HttpServer(
        name=name, url=url, headers=_strings(entry.get("headers", {}), f"{where}.headers", environ)
    )


def _strings(value: Any, where: str, environ: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(value, dict):
        raise McpConfigError(f"{where} must be an object of strings")
    return {str(key): _text(item, f"{where}.{key}", environ) for key, item in value.items()}


def _text(value: Any, where: str, environ: Mapping[str, str]) -> str:
    """A string of the file, its `${NAME}` replaced by the environment's value."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise McpConfigError(f"{where} must be a string")

    def variable(match: re.Match[str]) -> str:
        if match[1] not in environ:
            raise McpConfigError(f"{where} names the environment variable {match[1]}, unset")
        return environ[match[1]]

    return _VARIABLE.sub(variable, str(value))
