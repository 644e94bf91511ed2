"""Streaming a chat completion, with the API's failures turned into a few kinds we can explain,
and the tokens the API says the request cost."""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI, AsyncStream

from app.domain.tools import ToolCall

log = logging.getLogger(__name__)

# Base URLs of servers that answered 400 to `stream_options`: not asked for usage again.
_REFUSE_STREAM_OPTIONS: set[str] = set()
# (base URL, model) pairs that answered 400 to `tools` (Ollama: "does not support tools";
# vLLM without --enable-auto-tool-choice): asked without them from then on.
_REFUSE_TOOLS: set[tuple[str, str]] = set()


class FailureKind(enum.StrEnum):
    """Why the model gave no (complete) answer, in terms a user can act on."""

    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    REJECTED = "rejected"
    INTERRUPTED = "interrupted"


class LLMError(Exception):
    """The model call failed; `kind` says why."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        self.kind = kind
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One completion request."""

    model: str
    messages: Sequence[dict[str, Any]]
    max_answer_tokens: int
    temperature: float
    # OpenAI's own API wants max_completion_tokens (its reasoning models refuse max_tokens);
    # Ollama, LM Studio and older vLLM only know max_tokens.
    use_max_completion_tokens: bool = True
    # The tools offered, as the API takes them (`Tool.schema()`); none: no `tools` key.
    tools: Sequence[dict[str, Any]] = ()
    # "none": the tools stay in the request (its history has calls), but the model must
    # answer in text now (the rounds are over).
    tool_choice: str | None = None


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """What one request cost in tokens: as the API reported it, or as we counted it."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class StreamReport:
    """What a stream says besides its text, filled in as it arrives: read it once the stream
    has ended (or failed). `usage` stays None when the server sent no usage; `finish_reason`
    is the server's ("stop", "length", "content_filter", ...)."""

    usage: TokenUsage | None = None
    finish_reason: str | None = None
    # The calls the model made instead of (or after) its text, whole once the stream ended.
    tool_calls: list[ToolCall] = field(default_factory=list)
    # The server refused `tools` for this model: it was asked again without them.
    tools_refused: bool = False
    _pieces: dict[int, dict[str, str]] = field(default_factory=dict, repr=False)

    def add_tool_pieces(self, pieces: object) -> None:
        """The `tool_calls` of one delta: each call's id and name come first, its arguments
        in pieces after, by `index` (a server that sends whole calls without an index gets
        each one as a new call)."""
        if not isinstance(pieces, list):
            return
        for position, piece in enumerate(pieces):
            if not isinstance(piece, dict):
                continue
            index = piece.get("index")
            if not isinstance(index, int):
                index = len(self._pieces) + position
            call = self._pieces.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if isinstance(piece.get("id"), str) and piece["id"]:
                call["id"] = piece["id"]
            function = piece.get("function")
            if isinstance(function, dict):
                if isinstance(function.get("name"), str):
                    call["name"] += function["name"]
                arguments = function.get("arguments")
                if isinstance(arguments, str):
                    call["arguments"] += arguments
                elif isinstance(arguments, dict):  # Ollama's native form, already parsed
                    call["arguments"] += json.dumps(arguments, ensure_ascii=False)
        self.tool_calls = [
            ToolCall(call["id"] or f"call_{index}", call["name"], call["arguments"])
            for index, call in sorted(self._pieces.items())
            if call["name"]
        ]


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of a streamed answer: text of the answer, or of the model's reasoning."""

    content: str = ""
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class Completion:
    """The answer of a non-streaming call, with its usage when the server reported one."""

    text: str
    usage: TokenUsage | None = None


class ThinkSplitter:
    """Separates `<think>...</think>` reasoning at the start of an answer (Ollama's qwen3 and
    deepseek-r1 put it inside the content) from the answer, as the pieces stream in: a tag
    may arrive cut across two chunks, so a piece that could be the start of one is held back
    until the next chunk settles it."""

    OPEN = "<think>"
    CLOSE = "</think>"

    def __init__(self) -> None:
        self._state = "start"  # start -> thinking -> after -> answer, or start -> answer
        self._held = ""

    def feed(self, text: str) -> Delta:
        self._held += text
        content, reasoning = "", ""
        while self._held:
            if self._state == "start":
                stripped = self._held.lstrip()
                if stripped.startswith(self.OPEN):
                    self._held = stripped[len(self.OPEN) :]
                    self._state = "thinking"
                elif self.OPEN.startswith(stripped):
                    break  # "", "<", "<th"...: wait for more
                else:
                    self._state = "answer"
            elif self._state == "thinking":
                end = self._held.find(self.CLOSE)
                if end >= 0:
                    reasoning += self._held[:end]
                    self._held = self._held[end + len(self.CLOSE) :]
                    self._state = "after"
                    continue
                keep = _partial_suffix(self._held, self.CLOSE)
                reasoning += self._held[: len(self._held) - keep]
                self._held = self._held[len(self._held) - keep :]
                break
            elif self._state == "after":
                # The blank lines between the reasoning and the answer may come in pieces.
                self._held = self._held.lstrip()
                if self._held:
                    self._state = "answer"
            else:
                content += self._held
                self._held = ""
        return Delta(content, reasoning)

    def flush(self) -> Delta:
        """What is still held when the stream ends."""
        held, self._held = self._held, ""
        return Delta(reasoning=held) if self._state == "thinking" else Delta(content=held)


def _partial_suffix(text: str, tag: str) -> int:
    """How many characters at the end of `text` could begin `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


async def stream_answer(
    client: AsyncOpenAI, request: ChatRequest, report: StreamReport | None = None
) -> AsyncIterator[Delta]:
    """Yield the answer as it arrives, its reasoning apart; raise `LLMError` on any failure,
    and with `FailureKind.INTERRUPTED` for a stream that ends without a finish reason (a
    dropped connection, or a server that closed the stream early). The usage the server
    reports in its last chunk (asked for with `stream_options.include_usage`) and the
    finish reason go into `report`.

    Reasoning comes as `reasoning_content` (DeepSeek, vLLM, LM Studio) or `reasoning`
    (OpenRouter, Ollama's OpenAI API) in the delta, or inside the content as `<think>`.

    Sent with the client's own `post()`: its retries, timeouts, authentication and error
    types all apply, but not its typed request and chunk models. Those walk every message
    of the request and every chunk of the answer through type annotations: profiled at
    24 ms per request with 90 turns of history and 0.3 ms per chunk, more than the rest of
    the bot's own work on a message. We read the fields we need from the raw chunks.
    """
    report = report if report is not None else StreamReport()
    limit_key = "max_completion_tokens" if request.use_max_completion_tokens else "max_tokens"
    body: dict[str, Any] = {
        "model": request.model,
        "messages": list(request.messages),
        "temperature": request.temperature,
        "stream": True,
        limit_key: request.max_answer_tokens,
    }
    # The usage arrives in one last chunk with no choices; a server that does not know the
    # option mostly ignores it and sends none (then the caller counts for itself).
    asks_usage = str(client.base_url) not in _REFUSE_STREAM_OPTIONS
    if asks_usage:
        body["stream_options"] = {"include_usage": True}
    tools_key = (str(client.base_url), request.model)
    if request.tools and tools_key not in _REFUSE_TOOLS:
        body["tools"] = list(request.tools)
        if request.tool_choice is not None:
            body["tool_choice"] = request.tool_choice
    elif request.tools:
        report.tools_refused = True
    think = ThinkSplitter()
    try:
        stream = await _post_refusable(client, body, report)
        async with stream:
            async for chunk in stream:
                if not isinstance(chunk, dict):
                    continue
                for delta in _deltas(chunk, think, report):
                    yield delta
                # OpenAI sends "usage": null on every chunk but the last.
                if chunk.get("usage"):
                    report.usage = _usage(chunk["usage"]) or report.usage
    except openai.APIError as exc:
        raise classify_failure(exc) from exc
    rest = think.flush()
    if rest.content or rest.reasoning:
        yield rest
    if report.finish_reason is None:
        raise LLMError(FailureKind.INTERRUPTED, "the stream ended without a finish reason")


async def _post_refusable(
    client: AsyncOpenAI, body: dict[str, Any], report: StreamReport
) -> AsyncStream[object]:
    """The stream, asked again without what a strict server refused (400): usage in the
    stream, or tools for this model. Neither is asked of that server again."""
    while True:
        try:
            return await _post_stream(client, body)
        except openai.BadRequestError as exc:
            said = str(exc).lower()
            if "stream_options" in body and "stream_options" in said:
                # Our own counts stand in for its usage.
                log.warning("%s refuses stream_options; usage is counted locally", client.base_url)
                _REFUSE_STREAM_OPTIONS.add(str(client.base_url))
                del body["stream_options"]
            elif "tools" in body and "tool" in said:
                log.warning(
                    "%s refuses tools for %s; asked without them from now on",
                    client.base_url,
                    body["model"],
                )
                _REFUSE_TOOLS.add((str(client.base_url), body["model"]))
                del body["tools"]
                body.pop("tool_choice", None)
                report.tools_refused = True
            else:
                raise


async def _post_stream(client: AsyncOpenAI, body: dict[str, Any]) -> AsyncStream[object]:
    return await client.post(
        "/chat/completions",
        body=body,
        cast_to=object,
        stream=True,
        stream_cls=AsyncStream[object],
    )


async def complete(client: AsyncOpenAI, request: ChatRequest) -> Completion:
    """The whole answer of a non-streaming call (background work such as summaries), with
    the usage the server reported; raises `LLMError` like `stream_answer`."""
    limit_key = "max_completion_tokens" if request.use_max_completion_tokens else "max_tokens"
    body: dict[str, Any] = {
        "model": request.model,
        "messages": list(request.messages),
        "temperature": request.temperature,
        limit_key: request.max_answer_tokens,
    }
    try:
        response = await client.post("/chat/completions", body=body, cast_to=object)
    except openai.APIError as exc:
        raise classify_failure(exc) from exc
    choices = response.get("choices") if isinstance(response, dict) else None
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise LLMError(FailureKind.INTERRUPTED, "the completion has no text content")
    usage = response.get("usage") if isinstance(response, dict) else None
    return Completion(content, _usage(usage))


def _usage(usage: object) -> TokenUsage | None:
    """The two counts of a raw `usage` object; None unless both are there."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return TokenUsage(prompt, completion)


def _deltas(chunk: dict[str, Any], think: ThinkSplitter, report: StreamReport) -> list[Delta]:
    """The answer and reasoning pieces of a raw `chat.completion.chunk`, and its finish
    reason into `report`."""
    deltas = []
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if isinstance(finish := choice.get("finish_reason"), str) and finish:
            report.finish_reason = finish
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            continue
        if delta.get("tool_calls"):
            report.add_tool_pieces(delta["tool_calls"])
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            deltas.append(Delta(reasoning=reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            piece = think.feed(content)
            if piece.content or piece.reasoning:
                deltas.append(piece)
    return deltas


def classify_failure(exc: openai.APIError) -> LLMError:
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, openai.APITimeoutError):
        return LLMError(FailureKind.TIMEOUT, detail)
    if isinstance(exc, openai.APIConnectionError):
        # Raised too when the server drops the connection in the middle of a stream.
        return LLMError(FailureKind.CONNECTION, detail)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMError(FailureKind.AUTH, detail)
    if isinstance(exc, openai.RateLimitError):
        return LLMError(FailureKind.RATE_LIMIT, detail)
    if isinstance(exc, openai.InternalServerError):
        return LLMError(FailureKind.UNAVAILABLE, detail)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return LLMError(FailureKind.UNAVAILABLE, detail)
        return LLMError(FailureKind.REJECTED, detail)
    # A stream that ends with an error event or unparseable data.
    return LLMError(FailureKind.INTERRUPTED, detail)
