"""Tools in an answer: which are offered to a user and what they cost in the request, and
running one round of the model's calls within the share the request keeps for them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app import texts
from app.config import OpenAISettings, ToolsSettings
from app.domain.tools import ToolCall, ToolResult, round_messages
from app.domain.users import Preferences
from app.memory.service import MemoryService
from app.memory.tokens import TokenCounter
from app.tools.base import Tool, ToolContext
from app.tools.models import calls_tools
from app.tools.toolbox import Toolbox, parse_arguments

log = logging.getLogger(__name__)

# Below this many tokens for results, tools are not offered: the window is too small.
MIN_RESULT_TOKENS = 200
# What a round's results may take at least each, their note included; a round whose calls
# leave less than this per call is not run (the model answers with what it has).
MIN_PER_RESULT = 40
# Said to the model in a result shortened to fit (English, like the other instructions).
SHORTENED = "\n\n[The result was shortened to fit: {kept} of its {total} tokens are shown.]"


@dataclass(frozen=True, slots=True)
class ToolOffer:
    """The tools one request offers, and the tokens it keeps for them: their schemas, and
    the calls and results of the answer's rounds."""

    tools: tuple[Tool, ...]
    schemas: tuple[dict[str, Any], ...]
    schema_tokens: int
    result_tokens: int

    @property
    def reserve(self) -> int:
        return self.schema_tokens + self.result_tokens


@dataclass(frozen=True, slots=True)
class Round:
    """One round run: its messages for the next request (and the history), their tokens."""

    messages: list[dict[str, Any]]
    tokens: int
    results: list[ToolResult]


class ToolService:
    """The toolbox as a request sees it."""

    def __init__(
        self,
        toolbox: Toolbox,
        settings: ToolsSettings,
        openai: OpenAISettings,
        memory: MemoryService,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        # What tools read as now (a test clock in tests): aware, in UTC.
        self.clock = clock
        self.toolbox = toolbox
        self.settings = settings
        self.openai = openai
        self.memory = memory
        self._offers: dict[tuple[object, ...], ToolOffer | None] = {}
        self._version = toolbox.version

    @property
    def counter(self) -> TokenCounter:
        return self.memory.counter

    def offer(self, preferences: Preferences) -> ToolOffer | None:
        """The tools this user's request offers, or None (tools off, a model that does not
        call tools, no tool this user may use, or a window too small for them)."""
        if not self.settings.enabled or not len(self.toolbox):
            return None
        if not calls_tools(preferences.model, self.openai.tool_models):
            return None
        if self._version != self.toolbox.version:  # the tools changed: every offer anew
            self._offers.clear()
            self._version = self.toolbox.version
        key = (preferences.model, preferences.mode, preferences.answer_length, preferences.rights)
        if key in self._offers:
            return self._offers[key]
        offer = self._offers[key] = self._make_offer(preferences)
        return offer

    def _make_offer(self, preferences: Preferences) -> ToolOffer | None:
        tools = tuple(self.toolbox.offered(preferences.rights))
        if not tools:
            return None
        schemas = tuple(tool.schema() for tool in tools)
        schema_tokens = self.counter.tools(schemas)
        budget = self.memory.budget_for(
            preferences.model, preferences.mode, preferences.answer_length
        )
        # A quarter of what the window leaves the conversation at most.
        share = budget.prompt_limit // 4
        result_tokens = min(self.settings.result_tokens, share - schema_tokens)
        if result_tokens < MIN_RESULT_TOKENS:
            log.info(
                "No tools offered with %s: its window leaves %d tokens for them, %d needed",
                preferences.model,
                share,
                schema_tokens + MIN_RESULT_TOKENS,
            )
            return None
        return ToolOffer(tools, schemas, schema_tokens, result_tokens)

    def doing(self, calls: Sequence[ToolCall]) -> str:
        """What the preview says while a round's calls run: one line a call."""
        lines = []
        for call in calls:
            tool = self.toolbox.get(call.name)
            arguments = parse_arguments(call.arguments)
            if tool is not None and tool.doing is not None and arguments is not None:
                try:
                    lines.append(tool.doing(arguments))
                    continue
                except Exception:  # a preview text never fails the answer
                    log.debug("Tool %s could not say what it does", call.name, exc_info=True)
            lines.append(texts.tool_running(call.name))
        return "\n".join(f"🔧 {line}" for line in lines)

    async def run_round(
        self,
        context: ToolContext,
        said: str,
        calls: Sequence[ToolCall],
        rights: Collection[str],
        room: int,
    ) -> Round | None:
        """Run one round's calls (at once), their results shortened to fit `room` tokens
        with the calls themselves; None when the calls alone leave too little room (the
        model then answers with what it has, its calls dropped)."""
        asked = round_messages(list(calls), [], said)[0]
        asked_tokens = self.counter.api_messages([asked])
        overhead = self.counter.message("tool", "")
        left = room - asked_tokens - overhead * len(calls)
        if left < MIN_PER_RESULT * len(calls):
            return None
        results = await self.toolbox.run(context, calls, rights)
        results = self._fit(results, left)
        messages = round_messages(list(calls), results, said)
        return Round(messages, self.counter.api_messages(messages), results)

    def _fit(self, results: list[ToolResult], room: int) -> list[ToolResult]:
        """The results within `room` tokens together: each gets an equal share, and what a
        short one leaves goes to the longer ones; a result cut says so to the model."""
        sizes = [self.counter.text(result.content) for result in results]
        allotted: dict[int, int] = {}
        pending = sorted(range(len(results)), key=lambda i: sizes[i])
        left = room
        while pending:
            share = left // len(pending)
            index = pending.pop(0)
            allotted[index] = min(sizes[index], share)
            left -= allotted[index]
        fitted = []
        for index, result in enumerate(results):
            size, limit = sizes[index], allotted[index]
            if size <= limit:
                fitted.append(result)
                continue
            note_tokens = self.counter.text(SHORTENED.format(kept=limit, total=size))
            kept = max(limit - note_tokens, 0)
            content = self.counter.truncate(result.content, kept)
            content += SHORTENED.format(kept=kept, total=size)
            # The note's own figures may tokenize one longer than measured: cut again.
            while self.counter.text(content) > limit and kept > 0:
                kept = max(kept - 8, 0)
                content = self.counter.truncate(result.content, kept)
                content += SHORTENED.format(kept=kept, total=size)
            fitted.append(
                ToolResult(result.call_id, result.name, content, result.ok, result.seconds)
            )
        return fitted
