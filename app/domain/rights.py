"""What a user may do: the rights an admin grants and revokes, and how they are stored."""

from __future__ import annotations

import enum
import re


class Right(enum.StrEnum):
    """A feature a user may be allowed to use.

    `chat` is access itself: the others only count for a user who has it. `admin` is the
    admin role; those listed in ADMIN_IDS always have it.
    """

    CHAT = "chat"
    CREATE_PERSONAS = "create_personas"
    EDIT_PERSONAS = "edit_personas"
    ADMIN = "admin"


# A right a tool names that is none of the above (a plugin's, an MCP server's).
TOOL_RIGHT = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def is_tool_right(name: str) -> bool:
    """Whether `name`, as it is, can name a tool's right (and is none of the built-in ones)."""
    return bool(TOOL_RIGHT.match(name)) and name not in {right.value for right in Right}


def parse_tool_right(value: str) -> str:
    """'MCP-Files' -> 'mcp_files'; ValueError for what cannot be a right's name."""
    name = value.strip().lower().replace("-", "_")
    if not is_tool_right(name):
        raise ValueError(f"{value!r} is not a tool right (lower-case letters, digits, _)")
    return name


def parse_right(value: str) -> Right:
    """'create-personas', 'Create_Personas' -> Right.CREATE_PERSONAS; ValueError otherwise."""
    try:
        return Right(value.strip().lower().replace("-", "_"))
    except ValueError:
        names = ", ".join(right.value for right in Right)
        raise ValueError(f"unknown right {value!r}; the rights are: {names}") from None
