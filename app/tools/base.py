"""A tool the model may call: its name and JSON Schema as the API wants them, the right a
user needs, and the coroutine that runs it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

# What OpenAI accepts as a function name (and so every compatible server).
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ToolError(Exception):
    """A failure the tool explains: its text goes to the model as the call's result, so the
    model can tell the user or try otherwise. Any other exception is logged and the model
    is told only that the tool failed."""


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who a call is made for and where: what a tool may use of the conversation."""

    user_id: int
    chat_id: int
    language: str = "en"
    timezone: str = "UTC"
    thread_id: int | None = None
    # The clock a tool reads (a test clock in tests): aware, in UTC.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        """This moment in the user's time zone."""
        return self.clock().astimezone(ZoneInfo(self.timezone))


ToolRun = Callable[[ToolContext, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Tool:
    """One function the model may call.

    - `parameters`: the JSON Schema of its arguments (an object);
    - `right`: the right a user needs to be offered it, by name; None for every user who
      may talk to the model;
    - `doing`: what the preview says while it runs, from its arguments ("Searching the web:
      cats"); called while the update is handled, so gettext answers in the user's
      language. Without it the preview names the tool.
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    run: ToolRun
    right: str | None = None
    doing: Callable[[dict[str, Any]], str] | None = None
    # Seconds a call may take; None: TOOLS_TIMEOUT (a picture takes longer than a search).
    timeout: float | None = None

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must match {NAME.pattern}")
        if self.parameters.get("type") != "object":
            raise ValueError(f"tool {self.name!r}: parameters must be a JSON Schema object")

    def schema(self) -> dict[str, Any]:
        """The tool as the chat completions API takes it in `tools`."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }
