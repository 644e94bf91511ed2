"""A call the model makes to a tool and what it gave back: read from the stream (llm), run
(tools), kept with the answer in the history (memory, db)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call as the model made it: `arguments` is its JSON text, not yet parsed."""

    id: str
    name: str
    arguments: str

    def as_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call gave the model: its text, and whether the tool did its work."""

    call_id: str
    name: str
    content: str
    ok: bool = True
    seconds: float = 0.0

    def as_api(self) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": self.call_id, "content": self.content}


def round_messages(
    calls: list[ToolCall] | tuple[ToolCall, ...],
    results: list[ToolResult] | tuple[ToolResult, ...],
    content: str = "",
) -> list[dict[str, Any]]:
    """One round as the API takes it back: the assistant's message with its calls (and any
    text it said before them), then one tool message per call."""
    said: dict[str, Any] = {
        "role": "assistant",
        "content": content or None,
        "tool_calls": [call.as_api() for call in calls],
    }
    return [said, *(result.as_api() for result in results)]
