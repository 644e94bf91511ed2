"""Streaming a chat completion, with the API's failures turned into a few kinds we can explain."""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import cast

import openai
from openai import AsyncOpenAI, omit
from openai.types.chat import ChatCompletionMessageParam

log = logging.getLogger(__name__)


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
    messages: Sequence[dict[str, str]]
    max_answer_tokens: int
    temperature: float
    # OpenAI's own API wants max_completion_tokens (its reasoning models refuse max_tokens);
    # Ollama, LM Studio and older vLLM only know max_tokens.
    use_max_completion_tokens: bool = True


async def stream_answer(client: AsyncOpenAI, request: ChatRequest) -> AsyncIterator[str]:
    """Yield the answer's text as it arrives; raise `LLMError` on any failure."""
    limit = request.max_answer_tokens
    modern = request.use_max_completion_tokens
    try:
        stream = await client.chat.completions.create(
            model=request.model,
            messages=cast(list[ChatCompletionMessageParam], list(request.messages)),
            temperature=request.temperature,
            stream=True,
            max_completion_tokens=limit if modern else omit,
            max_tokens=omit if modern else limit,
        )
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
    except openai.APIError as exc:
        raise _classify(exc) from exc


def _classify(exc: openai.APIError) -> LLMError:
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
