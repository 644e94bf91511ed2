"""An MCP server's tool as one of ours: its name namespaced by the server and made what the
API accepts, its schema an object, its result as text for the model."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from mcp.types import (
    AudioContent,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from app.tools.base import NAME

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
_LONGEST = 64


def sanitise(text: str) -> str:
    """Only what a function name may hold: runs of anything else become one `_`."""
    return _UNSAFE.sub("_", text).strip("_") or "x"


def tool_name(server: str, tool: str) -> str:
    """`<server>__<tool>`, sanitised; a name over 64 characters is cut and keeps a short hash
    of the whole, so two long names stay apart."""
    name = f"{sanitise(server)}__{sanitise(tool)}"
    if len(name) > _LONGEST:
        digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
        name = f"{name[: _LONGEST - 9]}_{digest}"
    assert NAME.match(name), name
    return name


def right_name(server: str) -> str:
    """The right a user needs for a server's tools: `mcp_<server>`."""
    return f"mcp_{sanitise(server)}"[:_LONGEST]


def object_schema(schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The tool's input schema as the API wants it: an object (some servers leave `type` or
    `properties` out for a tool without arguments)."""
    parameters = dict(schema or {})
    parameters["type"] = "object"
    parameters.setdefault("properties", {})
    return parameters


def result_text(result: CallToolResult) -> str:
    """The text parts joined; other parts named, as the model cannot see them."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, ImageContent):
            parts.append("[image omitted]")
        elif isinstance(block, AudioContent):
            parts.append("[audio omitted]")
        elif isinstance(block, ResourceLink):
            parts.append(f"[resource: {block.uri}]")
        elif isinstance(block, EmbeddedResource):
            resource = block.resource
            if isinstance(resource, TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[binary resource omitted: {resource.uri}]")
        else:
            parts.append(f"[{getattr(block, 'type', 'content')} omitted]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)
