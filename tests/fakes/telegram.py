"""A fake Telegram Bot API server (aiohttp) for end-to-end tests and benchmarks.

Usage with real aiogram::

    fake = FakeTelegram()
    await fake.start()
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    bot = Bot("123:ABC", session=session)
    fake.push_message(42, "/start")          # a user writes to the bot
    [reply] = await fake.wait_for_messages(42, 1)
    await fake.stop()

The server keeps per-chat state (message ids, the bot's messages with their edit
history, drafts), validates message text the way Telegram does (empty / too long /
HTML markup, ported from tdlib's parser; the app sends HTML or entities, so MarkdownV2
and Markdown are refused with 400) and records every call in ``calls``. Faults can be
injected per method (``fail_next``, ``drop_connection_next``, ``delay_next``,
``refuse_drafts``), and the server can be as unkind as real ones: ``unknown_methods`` are
answered 404 "Not Found", and ``answer_html_next`` / ``answer_empty_next`` /
``answer_raw_next`` answer a body that is not Bot API JSON (a proxy's "502 Bad Gateway").

Webhook mode, like Telegram: after ``setWebhook`` (its URL, ``secret_token``,
``allowed_updates`` and ``max_connections`` are recorded) pushed updates are POSTed to the
URL one at a time, in order, with the ``X-Telegram-Bot-Api-Secret-Token`` header, and
re-sent after a short backoff on a non-2xx answer or a connection failure (every attempt
in ``webhook_deliveries``); ``getUpdates`` answers 409 until ``deleteWebhook``.

CLI for benchmarks::

    python -m tests.fakes.telegram --port 8081 --token 123:ABC

The server then also answers a small JSON control API under ``/_fake/`` (used by
out-of-process benchmarks): ``POST /_fake/push_message`` (body: the keyword arguments
of ``push_message``), ``POST /_fake/push_callback``, ``POST /_fake/push_update``,
``POST /_fake/fail_next``, ``POST /_fake/reset_calls``, ``GET /_fake/stats``,
``GET /_fake/calls?method=&chat_id=``, ``GET /_fake/sent_messages?chat_id=``,
``GET /_fake/drafts?chat_id=``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import io
import itertools
import json
import logging
import math
import mimetypes
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

__all__ = [
    "Call",
    "Draft",
    "EntityParseError",
    "FakeTelegram",
    "MessageVersion",
    "SentMessage",
    "UploadedFile",
    "WebhookDelivery",
    "parse_formatted_text",
    "utf16_len",
]

log = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
MAX_UPLOAD_SIZE = 50 * 1024 * 1024
MAX_POLL_TIMEOUT = 30.0

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
DRAFTS_UNAVAILABLE = "Bad Request: method sendMessageDraft is not available for this chat"
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
CALLBACK_TOO_OLD = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)

#: The default ``language_code`` of pushed updates: the user's own (see ``language_codes``).
USERS_LANGUAGE: Any = object()

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected fault",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: POLL_CONFLICT,
    500: "Internal Server Error",
    502: "Bad Gateway",
}

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

# Parameters that are plain strings in the Bot API: never JSON-decode them (a text of
# "123" or "true" must stay a string). Everything else that looks like JSON is decoded,
# because aiogram serialises ints, bools, lists and objects with json.dumps.
_RAW_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "description",
        "short_description",
        "language_code",
        "callback_query_id",
        "inline_message_id",
        "business_connection_id",
        "url",
        "secret_token",
        "ip_address",
        "action",
        "emoji",
        "title",
        "name",
        "query",
        "file_id",
        "custom_emoji_id",
        "message_effect_id",
        "phone_number",
        "first_name",
        "last_name",
        "vcard",
        "address",
        "question",
        "payload",
        "currency",
        "start_parameter",
        "provider_token",
        "document",
        "photo",
        "audio",
        "video",
        "voice",
        "animation",
        "sticker",
        "video_note",
        "thumbnail",
        "certificate",
        "result_id",
    }
)
# Complex parameters that a JSON body may still carry as a JSON string.
_JSON_STRING_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "commands",
        "scope",
        "allowed_updates",
        "media",
        "results",
        "options",
    }
)
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the way Telegram counts characters."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# --------------------------------------------------------------------------------------
# Entity parsing (a port of tdlib's parse_html)
# --------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Text markup is invalid; ``str(exc)`` is what follows "can't parse entities: "."""


class _UnsupportedParseModeError(ValueError):
    pass


_SPACE = " \t\r\n\0\v\f"
_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_HTML_SIMPLE_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_SURROGATE_ERROR = (
    "Text contains invalid Unicode characters after decoding HTML entities, "
    "check for unmatched surrogate code units"
)


def _u16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _checked_url(url: str) -> str | None:
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
        return url
    return "http://" + url + ("" if "/" in url else "/")


def _entity(kind: str, offset: int, length: int, argument: str = "") -> dict[str, Any]:
    ent: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    if kind == "text_link":
        ent["url"] = argument
    elif kind == "pre" and argument:
        ent["language"] = argument
    elif kind == "custom_emoji":
        ent["custom_emoji_id"] = argument
    return ent


def _sort_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """tdlib's decode_html_entity: ``text[pos] == '&'``; returns (char, next position)."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        code = 0
        if end < n and text[end] in "xX":
            end += 1
            start = end
            while end < n and text[end] in "0123456789abcdefABCDEF":
                code = code * 16 + int(text[end], 16)
                if code > 0x10FFFF:
                    return None
                end += 1
        else:
            start = end
            while end < n and text[end] in "0123456789":
                code = code * 10 + int(text[end])
                if code > 0x10FFFF:
                    return None
                end += 1
        if end == start or code == 0:
            return None
        if 0xD800 <= code <= 0xDFFF:
            raise EntityParseError(_SURROGATE_ERROR)
        char = chr(code)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        named = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(text[pos + 1 : end])
        if named is None:
            return None
        char = named
    if end < n and text[end] == ";":
        end += 1
    return char, end


@dataclass
class _HtmlOpen:
    tag: str
    argument: str
    offset: int
    out_pos: int
    expandable: bool = False


def _parse_html(text: str, *, strict_ampersand: bool) -> tuple[str, list[dict[str, Any]]]:
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    code_languages: dict[int, str] = {}  # id(entity) -> language of a <code class=...>
    nested: list[_HtmlOpen] = []
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is not None:
                out.append(decoded[0])
                u16 += _u16(decoded[0])
                i = decoded[1]
                continue
            if strict_ampersand:
                # Real Telegram keeps such a '&' as a literal character; the fake is
                # stricter on purpose (see FakeTelegram.strict_html_ampersand).
                raise EntityParseError(
                    f"Character '&' at byte offset {_byte_offset(text, i)} does not start "
                    "an HTML entity (&lt; &gt; &amp; &quot; &#NNN;); escape it as &amp;"
                )
        if c != "<":
            out.append(c)
            u16 += _u16(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != "/":
            while at(i) not in _SPACE and at(i) != ">":
                i += 1
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise EntityParseError(
                    f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                )
            argument = ""
            expandable = False
            while at(i) != ">":
                while i < n and text[i] in _SPACE:
                    i += 1
                if at(i) == ">":
                    break
                if i >= n:
                    raise EntityParseError(
                        f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                    )
                attr_begin = i
                while at(i) not in _SPACE and at(i) not in "=>":
                    i += 1
                attr_name = text[attr_begin:i].lower()
                if not attr_name:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset '
                        f"{_byte_offset(text, begin)}"
                    )
                while i < n and text[i] in _SPACE:
                    i += 1
                if i >= n:
                    raise EntityParseError(
                        f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                    )
                if text[i] != "=":
                    # an attribute without a value, e.g. <blockquote expandable>
                    if tag == "blockquote" and attr_name == "expandable":
                        expandable = True
                    continue
                i += 1
                while i < n and text[i] in _SPACE:
                    i += 1
                if i >= n:
                    raise EntityParseError(
                        f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                if text[i] not in "'\"":
                    token_begin = i
                    while at(i).isascii() and (at(i).isalnum() or at(i) in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if at(i) not in _SPACE and at(i) != ">":
                        raise EntityParseError(
                            "Unexpected end of name token at byte offset "
                            f"{_byte_offset(text, token_begin)}"
                        )
                else:
                    quote = text[i]
                    i += 1
                    chars: list[str] = []
                    while i < n and text[i] != quote:
                        if text[i] == "&":
                            decoded = _decode_html_entity(text, i)
                            if decoded is not None:
                                chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        chars.append(text[i])
                        i += 1
                    if i < n:
                        i += 1
                    value = "".join(chars)
                if i >= n:
                    raise EntityParseError(
                        f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                    )
                if tag == "a" and attr_name == "href":
                    argument = value
                elif tag == "code" and attr_name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr_name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr_name == "emoji-id":
                    argument = value
                elif tag == "blockquote" and attr_name == "expandable":
                    expandable = True
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    'Tag "span" must have class "tg-spoiler" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            if tag == "tg-emoji" and not argument.isdigit():
                raise EntityParseError("Invalid custom emoji identifier specified")
            nested.append(_HtmlOpen(tag, argument, u16, len(out), expandable))
            i += 1  # skip '>'
            continue

        # an end tag
        if not nested:
            raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
        while at(i) not in _SPACE and at(i) != ">":
            i += 1
        end_name = text[begin + 2 : i]
        while i < n and text[i] in _SPACE:
            i += 1
        if at(i) != ">":
            raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
        top = nested.pop()
        if end_name and end_name != top.tag:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                f'expected "</{top.tag}>", found "</{end_name}>"'
            )
        i += 1
        if u16 <= top.offset:
            continue
        length = u16 - top.offset
        last = entities[-1] if entities else None
        same_span = last is not None and (last["offset"], last["length"]) == (top.offset, length)
        if top.tag in _HTML_SIMPLE_TYPES:
            entities.append(_entity(_HTML_SIMPLE_TYPES[top.tag], top.offset, length))
        elif top.tag == "a":
            url = _checked_url(top.argument or "".join(out[top.out_pos :]))
            if url is not None:
                entities.append(_entity("text_link", top.offset, length, url))
        elif top.tag == "pre":
            if last is not None and same_span and code_languages.get(id(last)):
                language = code_languages.pop(id(last))
                entities[-1] = _entity("pre", top.offset, length, language)
            else:
                entities.append(_entity("pre", top.offset, length))
        elif top.tag == "code":
            if last is not None and same_span and last["type"] == "pre" and top.argument:
                last["language"] = top.argument
            else:
                ent = _entity("code", top.offset, length)
                entities.append(ent)
                if top.argument:
                    code_languages[id(ent)] = top.argument
        elif top.tag == "tg-emoji":
            entities.append(_entity("custom_emoji", top.offset, length, top.argument))
        elif top.tag == "blockquote":
            kind = "expandable_blockquote" if top.expandable else "blockquote"
            entities.append(_entity(kind, top.offset, length))
    if nested:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{nested[-1].tag}"')
    return "".join(out), _sort_entities(entities)


def parse_formatted_text(
    text: str, parse_mode: str | None, *, strict_html_ampersand: bool = True
) -> tuple[str, list[dict[str, Any]]]:
    """Parse ``text`` like Telegram does for ``parse_mode`` (HTML or none).

    Returns ``(plain_text, entities)`` with UTF-16 offsets (not trimmed). Raises
    ``EntityParseError`` for invalid markup.
    """
    mode = (parse_mode or "").lower()
    if not mode:
        return text, []
    if mode == "html":
        return _parse_html(text, strict_ampersand=strict_html_ampersand)
    raise _UnsupportedParseModeError(parse_mode)


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Telegram strips leading and trailing whitespace of a message text."""
    left = text.lstrip()
    lead = utf16_len(text[: len(text) - len(left)])
    result = left.rstrip()
    total = utf16_len(result)
    trimmed: list[dict[str, Any]] = []
    for ent in entities:
        start = max(ent["offset"] - lead, 0)
        end = min(ent["offset"] + ent["length"] - lead, total)
        if end > start:
            trimmed.append({**ent, "offset": start, "length": end - start})
    return result, trimmed


# --------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    """One Bot API request as received (recorded on arrival, completed when answered)."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() on arrival
    token: str
    failed: bool = False
    status: int = 200  # HTTP status answered; 0 while in flight or when the connection dropped
    description: str | None = None  # error description when failed
    result: Any = None
    files: dict[str, UploadedFile] = field(default_factory=dict)
    dropped: bool = False
    done: bool = False

    @property
    def chat_id(self) -> int | str | None:
        return _as_chat_id(self.params.get("chat_id"))

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": self.params,
            "at": self.at,
            "failed": self.failed,
            "status": self.status,
            "description": self.description,
            "dropped": self.dropped,
            "files": {
                k: {"filename": f.filename, "size": len(f.data)} for k, f in self.files.items()
            },
        }


@dataclass
class WebhookDelivery:
    """One POST of an update to the webhook, as Telegram makes it."""

    update_id: int
    url: str
    status: int  # the webhook's HTTP answer; 0 when the connection failed
    at: float  # time.monotonic() when the answer came (or the connection failed)
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class MessageVersion:
    """One version of a bot message (the original or an edit)."""

    text: str | None
    parse_mode: str | None
    entities: list[dict[str, Any]] | None
    reply_markup: dict[str, Any] | None
    plain_text: str | None
    at: float


@dataclass
class SentMessage:
    """A message the bot sent, with its current state.

    ``text``/``parse_mode``/``entities``/``reply_markup`` are the current values as the
    bot sent them (markup included); ``plain_text``/``parsed_entities`` are what
    Telegram shows and returns. ``history`` lists every version, oldest first, the
    last one being the current one (so ``len(history) - 1`` edits).
    """

    chat_id: int
    message_id: int
    text: str | None
    parse_mode: str | None
    entities: list[dict[str, Any]] | None
    reply_markup: dict[str, Any] | None
    plain_text: str | None
    parsed_entities: list[dict[str, Any]]
    date: int
    sent_at: float
    method: str = "sendMessage"
    edited_at: float | None = None
    history: list[MessageVersion] = field(default_factory=list)
    caption: str | None = None
    document: dict[str, Any] | None = None
    document_bytes: bytes | None = None
    voice: dict[str, Any] | None = None  # sendVoice: its duration and size (bytes above)
    photo: list[dict[str, Any]] | None = None  # sendPhoto: its sizes (bytes above)
    # An ephemeral message in a group: the one member who sees it.
    ephemeral_for: int | None = None
    deleted: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def edit_count(self) -> int:
        return max(len(self.history) - 1, 0)

    @property
    def texts(self) -> list[str | None]:
        """Every text this message had, oldest first."""
        return [v.text for v in self.history]

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["document_bytes"] = None if self.document_bytes is None else len(self.document_bytes)
        return data


@dataclass
class Draft:
    """The latest state of one message draft (sendMessageDraft) in a chat."""

    chat_id: int
    draft_id: int
    text: str
    parse_mode: str | None
    entities: list[dict[str, Any]] | None
    plain_text: str
    first_at: float
    updated_at: float
    history: list[str] = field(default_factory=list)  # every text sent, oldest first
    can_stop: bool = False  # sent with Telegram's stop button (Bot API 10.3)

    @property
    def updates(self) -> int:
        return len(self.history)


@dataclass
class _Fault:
    kind: str  # "fail" | "drop" | "delay" | "raw"
    method: str  # lower-cased
    times: int
    chat_id: int | str | None = None
    status: int = 400
    description: str = ""
    retry_after: int | None = None
    seconds: float = 0.0
    body: bytes = b""  # "raw": the body answered instead of Bot API JSON
    content_type: str = "text/html"


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None
    mime_type: str | None


ADMINISTRATOR_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_send_welcome_messages",
)


@dataclass
class GuestReply:
    """The bot's answer to a guest query: one inline message, and every text it had."""

    guest_query_id: str
    texts: list[str]


# What Telegram's per-group flood limit counts: every message the bot puts in the chat.
GROUP_LIMITED = frozenset(
    {"sendmessage", "editmessagetext", "sendvoice", "senddocument", "sendphoto"}
)


@dataclass
class _Chat:
    id: int
    type: str
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    title: str | None = None
    is_forum: bool = False
    # A group's admins: user id -> "administrator" or "creator" (getChatMember).
    admins: dict[int, str] = field(default_factory=dict)
    topics: dict[int, str] = field(default_factory=dict)  # thread id -> name
    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)  # every message, raw
    bot_messages: dict[int, SentMessage] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "first_name", "last_name", "username"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.is_forum:
            data["is_forum"] = True
        return data

    def new_message_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid


class _TgError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass
class _Ctx:
    token: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    call: Call


def _as_chat_id(value: Any) -> int | str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text or None


def _decode_form_value(key: str, value: str) -> Any:
    if key in _RAW_STRING_PARAMS:
        return value
    stripped = value.strip()
    if (
        stripped[:1] in ("{", "[", '"')
        or stripped in ("true", "false", "null")
        or _NUMBER_RE.fullmatch(stripped)
    ):
        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return value


def _decode_json_value(key: str, value: Any) -> Any:
    if key in _JSON_STRING_PARAMS and isinstance(value, str) and value.strip()[:1] in "[{":
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _inline_markup(markup: Any) -> dict[str, Any] | None:
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        return markup
    return None


def _error_payload(
    status: int, description: str, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        payload["parameters"] = parameters
    return payload


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


class FakeTelegram:
    """Fake Telegram Bot API server. See the module docstring."""

    def __init__(
        self,
        tokens: Iterable[str] | None = None,
        bot_id: int | None = None,
        bot_username: str = "test_bot",
        *,
        bot_first_name: str = "Test Bot",
    ) -> None:
        self.tokens: set[str] = set(tokens) if tokens is not None else {"123:ABC"}
        if bot_id is None:
            # aiogram's Bot.id is the token's numeric prefix; getMe should agree with it.
            prefix = min(self.tokens).split(":", 1)[0] if self.tokens else ""
            bot_id = int(prefix) if prefix.isdigit() else 123
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name

        # behaviour switches
        self.refuse_drafts = False
        #: Telegram's limit on one group (about 20 messages a minute, edits included): past
        #: it, 429 with retry_after. Tests may shrink the window to keep their time short.
        self.group_rate_limit = 20
        self.group_rate_window = 60.0
        #: Refuse ephemeral messages (a server that cannot send them here).
        self.refuse_ephemeral = False
        #: The bot's topic mode in private chats (getMe has_topics_enabled, Bot API 9.3).
        self.topics_enabled = False
        #: Telegram's privacy mode (on for a new bot; @BotFather's /setprivacy): groups then
        #: deliver only what is addressed to the bot. Off here unless a test turns it on,
        #: so that tests can show the bot itself leaving the rest alone.
        self.privacy_mode = False
        #: Methods this server does not know, answered 404 {"description": "Not Found"} as
        #: Telegram does for a method it never had, and an older self-hosted telegram-bot-api
        #: for a newer one (e.g. ``{"sendMessageDraft"}``).
        self.unknown_methods: set[str] = set()
        #: Reject a '&' that does not start an HTML entity. Real Telegram keeps such a
        #: '&' as a literal character; the fake is stricter by default so that code
        #: that forgets to escape user text is caught.
        self.strict_html_ampersand = True
        #: Answer 400 "chat not found" for chats no user has written from.
        self.strict_chats = False
        #: The language each user's Telegram app is set to (``language_code`` of what they
        #: send, unless a push names another); "en" for users not listed.
        self.language_codes: dict[int, str | None] = {}
        #: A new getUpdates ends an older pending one with 409 Conflict (like Telegram).
        self.conflict_on_concurrent_polls = True
        #: Webhook re-sending: the first backoff after a failed POST (doubled up to the most).
        self.webhook_retry_delay = 0.1
        #: POST up to max_connections updates at once, as Telegram may (default: in order).
        self.webhook_parallel = False
        self.webhook_max_retry_delay = 1.0
        self._webhook_task: asyncio.Task[None] | None = None

        self.calls: list[Call] = []
        self._reset_state()

        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._changed = asyncio.Event()
        self._updates_event = asyncio.Event()

        self._methods: dict[str, tuple[str, Callable[[_Ctx], Awaitable[Any]]]] = {}
        for name, handler in {
            "getMe": self._m_get_me,
            "getUpdates": self._m_get_updates,
            "sendMessage": self._m_send_message,
            "editMessageText": self._m_edit_message_text,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "deleteMessage": self._m_delete_message,
            "sendMessageDraft": self._m_send_message_draft,
            "sendChatAction": self._m_send_chat_action,
            "setMyCommands": self._m_set_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "answerCallbackQuery": self._m_answer_callback_query,
            "sendDocument": self._m_send_document,
            "sendVoice": self._m_send_voice,
            "sendPhoto": self._m_send_photo,
            "getFile": self._m_get_file,
            "getChatMember": self._m_get_chat_member,
            "createForumTopic": self._m_create_forum_topic,
            "answerGuestQuery": self._m_answer_guest_query,
            "editForumTopic": self._m_edit_forum_topic,
            "setMyDescription": self._m_set_my_description,
            "getMyDescription": self._m_get_my_description,
            "setMyShortDescription": self._m_set_my_short_description,
            "getMyShortDescription": self._m_get_my_short_description,
            "close": self._m_true,
            "logOut": self._m_true,
        }.items():
            self._methods[name.lower()] = (name, handler)

    # ------------------------------------------------------------------ lifecycle

    def _reset_state(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._allowed_updates: list[str] | None = None
        self._poll_generation: dict[str, int] = {}
        self._chats: dict[int | str, _Chat] = {}
        self._group_sends: dict[int, deque[float]] = {}
        #: 429s answered for a group's flood limit (see _group_flood).
        self.group_flood_answers = 0
        self._users: dict[int, dict[str, Any]] = {}
        self._drafts: dict[tuple[int | str, int], Draft] = {}
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._descriptions: dict[tuple[str, str], str] = {}
        self._files: dict[str, _StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._callback_counter = itertools.count(1)
        self._open_callbacks: set[str] = set()
        self._open_guest_queries: set[str] = set()
        #: Answers to guest queries by inline_message_id: every text it had, oldest first.
        self.guest_answers: dict[str, GuestReply] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self._faults: list[_Fault] = []
        #: The webhook as setWebhook set it ("" while updates are polled).
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_max_connections: int | None = None
        self.webhook_last_error: str | None = None
        #: Every POST of an update to a webhook, in the order made.
        self.webhook_deliveries: list[WebhookDelivery] = []

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving on ``host:port`` (0 picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("FakeTelegram is already started")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._changed = asyncio.Event()
        self._updates_event = asyncio.Event()

        app = web.Application(client_max_size=MAX_UPLOAD_SIZE + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        app.router.add_post("/_fake/push_message", self._ctl_push_message)
        app.router.add_post("/_fake/push_callback", self._ctl_push_callback)
        app.router.add_post("/_fake/push_update", self._ctl_push_update)
        app.router.add_post("/_fake/fail_next", self._ctl_fail_next)
        app.router.add_post("/_fake/reset_calls", self._ctl_reset_calls)
        app.router.add_get("/_fake/stats", self._ctl_stats)
        app.router.add_get("/_fake/calls", self._ctl_calls)
        app.router.add_get("/_fake/sent_messages", self._ctl_sent_messages)
        app.router.add_get("/_fake/drafts", self._ctl_drafts)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving; pending long polls answer [] right away."""
        if self._runner is None:
            return
        self._stopping = True
        self._stop_event.set()
        self._fire_updates()
        self._fire_changed()
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``TelegramAPIServer.from_base``."""
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._port

    @property
    def token(self) -> str:
        """One of the accepted tokens (handy when there is only one)."""
        return min(self.tokens)

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def reset(self) -> None:
        """Forget everything: calls, chats, updates, drafts, files, faults, commands."""
        self.calls.clear()
        self._reset_state()
        self._fire_changed()

    def reset_calls(self) -> None:
        self.calls.clear()
        self._fire_changed()

    # ------------------------------------------------------------------ notifications

    def _in_other_thread(self) -> bool:
        return self._loop is not None and threading.get_ident() != self._loop_thread

    def _fire_changed(self) -> None:
        if self._in_other_thread():
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._fire_changed)
            return
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _fire_updates(self) -> None:
        if self._in_other_thread():
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._fire_updates)
            return
        event, self._updates_event = self._updates_event, asyncio.Event()
        event.set()
        self._fire_changed()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up when the server stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    # ------------------------------------------------------------------ updates

    def _user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None,
        username: str | None,
        language_code: Any,
    ) -> dict[str, Any]:
        if language_code is USERS_LANGUAGE:
            language_code = self.language_codes.get(user_id, "en")
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name is not None:
            user["last_name"] = last_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        self._users[user_id] = user
        chat = self._chats.get(user_id)
        if chat is None:
            chat = self._chats[user_id] = _Chat(id=user_id, type="private")
        chat.first_name, chat.last_name, chat.username = first_name, last_name, username
        return user

    def push_update(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update (``update_id`` is assigned when missing)."""
        update = copy.deepcopy(raw)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        callback = update.get("callback_query")
        if isinstance(callback, dict) and "id" in callback:
            self._open_callbacks.add(str(callback["id"]))
        self._updates.append(update)
        self._fire_updates()
        return update

    def push_message(
        self,
        user_id: int,
        text: str | None = None,
        *,
        first_name: str = "User",
        last_name: str | None = None,
        username: str | None = None,
        language_code: Any = USERS_LANGUAGE,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user writes to the bot in a private chat; returns the queued update."""
        user = self._user(user_id, first_name, last_name, username, language_code)
        chat = self._chats[user_id]
        message: dict[str, Any] = {
            "message_id": chat.new_message_id(),
            "from": user,
            "chat": chat.as_dict(),
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = re.split(r"\s", text, maxsplit=1)[0]
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
                ]
        if extra:
            message.update(extra)
        chat.messages[message["message_id"]] = message
        if self.privacy_mode and not self._delivered_in_privacy(message):
            return {"message": message}  # said in the group, but not handed to the bot
        return self.push_update({"message": message})

    def _delivered_in_privacy(self, message: dict[str, Any]) -> bool:
        """Privacy mode (Telegram's default for bots): in a group the bot does not admin,
        only commands, mentions of the bot and replies to its messages reach it."""
        text = message.get("text") or message.get("caption") or ""
        replied = message.get("reply_to_message") or {}
        return (
            text.startswith("/")
            or f"@{self.bot_user['username']}".lower() in text.lower()
            or (replied.get("from") or {}).get("id") == self.bot_user["id"]
        )

    def add_group(
        self,
        chat_id: int,
        title: str = "Team",
        *,
        kind: str = "supergroup",
        forum: bool = False,
        admins: Iterable[int] = (),
    ) -> None:
        """A group (negative id) the bot can be added to and write in; `admins` are the
        group's own administrators (getChatMember says so)."""
        self._chats[chat_id] = _Chat(
            id=chat_id,
            type=kind,
            title=title,
            is_forum=forum,
            admins=dict.fromkeys(admins, "administrator"),
        )

    def push_my_chat_member(
        self, chat_id: int, by_user_id: int, old: str, new: str, *, first_name: str = "User"
    ) -> dict[str, Any]:
        """The bot's own membership in a group changed (added: "left" → "member"; removed:
        "member" → "left" or "kicked"), by the user `by_user_id`."""
        user = self._user(by_user_id, first_name, None, None, USERS_LANGUAGE)
        chat = self._chats[chat_id]
        member = {"user": self.bot_user}

        def state(status: str) -> dict[str, Any]:
            # Bot API: a "kicked" member comes with until_date (0: for ever).
            return {**member, "status": status, **({"until_date": 0} if status == "kicked" else {})}

        return self.push_update(
            {
                "my_chat_member": {
                    "chat": chat.as_dict(),
                    "from": user,
                    "date": int(time.time()),
                    "old_chat_member": state(old),
                    "new_chat_member": state(new),
                }
            }
        )

    def push_group_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        first_name: str = "User",
        reply_to: int | None = None,
        thread_id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A member writes in a group. As Telegram does, @usernames and a leading /command
        come with their entities; `reply_to` is the id of a message of that group (the
        bot's or a member's); `thread_id` a forum topic of a forum supergroup."""
        user = self._user(user_id, first_name, None, None, USERS_LANGUAGE)
        chat = self._chats[chat_id]
        entities: list[dict[str, Any]] = []
        for match in re.finditer(r"(?<![\w@])@[A-Za-z0-9_]{5,32}\b", text):
            entities.append(
                {
                    "type": "mention",
                    "offset": utf16_len(text[: match.start()]),
                    "length": utf16_len(match.group()),
                }
            )
        if text.startswith("/"):
            command = re.split(r"\s", text, maxsplit=1)[0]
            entities.insert(0, {"type": "bot_command", "offset": 0, "length": utf16_len(command)})
        message: dict[str, Any] = {
            "message_id": chat.new_message_id(),
            "from": user,
            "chat": chat.as_dict(),
            "date": int(time.time()),
        }
        if text:  # a photo or a file comes with a caption instead (`extra`)
            message["text"] = text
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            replied = chat.messages[reply_to]
            message["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if extra:
            message.update(extra)
        chat.messages[message["message_id"]] = message
        if self.privacy_mode and not self._delivered_in_privacy(message):
            return {"message": message}  # said in the group, but not handed to the bot
        return self.push_update({"message": message})

    def _delivered_in_privacy(self, message: dict[str, Any]) -> bool:
        """Privacy mode (Telegram's default for bots): in a group the bot does not admin,
        only commands, mentions of the bot and replies to its messages reach it."""
        text = message.get("text") or message.get("caption") or ""
        replied = message.get("reply_to_message") or {}
        return (
            text.startswith("/")
            or f"@{self.bot_user['username']}".lower() in text.lower()
            or (replied.get("from") or {}).get("id") == self.bot_user["id"]
        )

    def delete_by_user(self, user_id: int, message_id: int) -> None:
        """The user deletes one of the bot's messages in their chat (no update is sent;
        the bot learns it when an edit fails with "message to edit not found")."""
        chat = self._chats[user_id]
        chat.bot_messages[message_id].deleted = True
        chat.messages.pop(message_id, None)

    def push_stop(self, user_id: int, draft_id: int) -> dict[str, Any]:
        """The user presses the stop button of a draft sent with ``can_stop``: Telegram
        sends a ``stopped_message_generation`` update (chat and draft id, no user)."""
        chat = self._chats[user_id]
        return self.push_update(
            {"stopped_message_generation": {"chat": chat.as_dict(), "draft_id": draft_id}}
        )

    def push_edited_message(
        self,
        user_id: int,
        message_id: int,
        text: str,
        *,
        first_name: str = "User",
        last_name: str | None = None,
        username: str | None = None,
        language_code: Any = USERS_LANGUAGE,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The user edits one of their messages; returns the queued ``edited_message``."""
        user = self._user(user_id, first_name, last_name, username, language_code)
        chat = self._chats[user_id]
        message = dict(
            chat.messages.get(message_id)
            or {"message_id": message_id, "from": user, "chat": chat.as_dict(), "date": 0}
        )
        message["text"] = text
        message.pop("entities", None)
        if text.startswith("/"):
            command = re.split(r"\s", text, maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        message["edit_date"] = int(time.time())
        if extra:
            message.update(extra)
        chat.messages[message_id] = message
        return self.push_update({"edited_message": message})

    def push_callback(
        self,
        user_id: int,
        data: str,
        message_id: int,
        *,
        first_name: str = "User",
        last_name: str | None = None,
        username: str | None = None,
        language_code: Any = USERS_LANGUAGE,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user presses an inline button with ``data`` under ``message_id``, in their
        private chat or in the group `chat_id`."""
        user = self._user(user_id, first_name, last_name, username, language_code)
        chat = self._chats[user_id if chat_id is None else chat_id]
        message = copy.deepcopy(chat.messages.get(message_id))
        if message is None:  # an inaccessible message
            message = {"chat": chat.as_dict(), "message_id": message_id, "date": 0}
        query_id = str(next(self._callback_counter) * 1000003 + user_id % 1000)
        return self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": message,
                    "chat_instance": str(-abs(user_id) * 7 - 1),
                    "data": data,
                }
            }
        )

    def add_file(
        self, content: bytes, file_name: str | None = None, mime_type: str | None = None
    ) -> str:
        """Register a file (e.g. a document a user sends); returns its ``file_id``."""
        return self._store_file(content, file_name, mime_type, "documents").file_id

    def push_document(
        self,
        user_id: int,
        content: bytes,
        file_name: str,
        *,
        caption: str | None = None,
        mime_type: str | None = None,
        first_name: str = "User",
        media_group_id: str | None = None,
        size: int | None = None,
    ) -> dict[str, Any]:
        """A user sends a document; the bot can fetch it with getFile + download. ``size``
        overrides the reported ``file_size``."""
        document = self.document(content, file_name, mime_type)
        if size is not None:
            document["file_size"] = size
        extra: dict[str, Any] = {"document": document}
        if caption is not None:
            extra["caption"] = caption
        if media_group_id is not None:
            extra["media_group_id"] = media_group_id
        return self.push_message(user_id, None, first_name=first_name, extra=extra)

    def document(
        self, content: bytes, file_name: str, mime_type: str | None = None
    ) -> dict[str, Any]:
        """The `document` object of a message carrying a file, the file stored."""
        return self._document_dict(self._store_file(content, file_name, mime_type, "documents"))

    def push_photo(
        self,
        user_id: int,
        content: bytes,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        first_name: str = "User",
    ) -> dict[str, Any]:
        """A user sends a photo (JPEG bytes). As Telegram does, the message carries several
        sizes, each a file of its own: a 90-px thumbnail and a 320-px one (made here with
        Pillow) before the photo itself, largest last."""
        from PIL import Image  # only the tests that send photos need Pillow

        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
            sizes: list[dict[str, Any]] = []
            for side in (90, 320):
                if max(width, height) <= side:
                    continue
                small = image.copy()
                small.thumbnail((side, side))
                buffer = io.BytesIO()
                small.convert("RGB").save(buffer, format="JPEG")
                sizes.append(self._photo_size(buffer.getvalue(), *small.size))
        sizes.append(self._photo_size(content, width, height))
        extra: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            extra["caption"] = caption
        if media_group_id is not None:
            extra["media_group_id"] = media_group_id
        return self.push_message(user_id, None, first_name=first_name, extra=extra)

    def _photo_size(self, data: bytes, width: int, height: int) -> dict[str, Any]:
        stored = self._store_file(data, None, "image/jpeg", "photos")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(data),
            "width": width,
            "height": height,
        }

    def push_voice(
        self,
        user_id: int,
        content: bytes,
        seconds: int,
        *,
        kind: str = "voice",
        file_name: str | None = None,
        mime_type: str | None = None,
        size: int | None = None,
        first_name: str = "User",
    ) -> dict[str, Any]:
        """A user sends a recording: ``kind`` "voice" (Ogg/Opus), "audio" (a music or audio
        file, with its name) or "video_note" (a round video). ``size`` overrides the
        reported ``file_size`` (Telegram reports it before anyone downloads)."""
        item = self.recording(
            content, seconds, kind=kind, file_name=file_name, mime_type=mime_type, size=size
        )
        return self.push_message(user_id, None, first_name=first_name, extra={kind: item})

    def recording(
        self,
        content: bytes,
        seconds: int,
        *,
        kind: str = "voice",
        file_name: str | None = None,
        mime_type: str | None = None,
        size: int | None = None,
    ) -> dict[str, Any]:
        """The `kind` object of a message carrying a recording, its file stored (for a
        message in a group: push_group_message's `extra`)."""
        defaults = {"voice": "audio/ogg", "audio": "audio/mpeg", "video_note": None}
        stored = self._store_file(
            content,
            file_name,
            mime_type or defaults[kind],
            kind + "s" if kind != "audio" else "music",
        )
        item: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": seconds,
            "file_size": len(content) if size is None else size,
        }
        if kind == "video_note":
            item["length"] = 240
        else:
            item["mime_type"] = stored.mime_type
        if kind == "audio" and file_name is not None:
            item["file_name"] = file_name
        return item

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by a getUpdates offset."""
        return list(self._updates)

    def file_content(self, file_id: str) -> bytes:
        """Bytes of a stored file (uploaded by the bot or registered with add_file)."""
        return self._files[file_id].data

    def commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands set with setMyCommands for this scope/language ([] when none)."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    def description(self, language_code: str = "", *, short: bool = False) -> str:
        kind = "short_description" if short else "description"
        return self._descriptions.get((kind, language_code), "")

    # ------------------------------------------------------------------ inspection

    def calls_of(self, method: str, chat_id: int | str | None = None) -> list[Call]:
        """Recorded calls of ``method`` (case-insensitive), optionally for one chat."""
        wanted = method.lower()
        target = _as_chat_id(chat_id)
        return [
            c
            for c in self.calls
            if c.method.lower() == wanted and (target is None or c.chat_id == target)
        ]

    def sent_messages(
        self, chat_id: int | str, *, include_deleted: bool = False
    ) -> list[SentMessage]:
        """The bot's messages in a chat, oldest first, in their current state (live)."""
        chat = self._chats.get(_as_chat_id(chat_id) or 0)
        if chat is None:
            return []
        return [m for m in chat.bot_messages.values() if include_deleted or not m.deleted]

    def drafts(self, chat_id: int | str) -> list[Draft]:
        """Drafts streamed to a chat, in order of their first appearance."""
        target = _as_chat_id(chat_id)
        return [d for (cid, _), d in self._drafts.items() if cid == target]

    def user_messages(self, chat_id: int | str) -> list[dict[str, Any]]:
        """Raw messages pushed by the user in a chat."""
        chat = self._chats.get(_as_chat_id(chat_id) or 0)
        if chat is None:
            return []
        bot_ids = set(chat.bot_messages)
        return [m for mid, m in chat.messages.items() if mid not in bot_ids]

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
        """Wait until ``predicate()`` is truthy (re-checked on every server event).

        Returns the truthy value; raises ``TimeoutError`` listing the recent calls.
        """
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
                raise TimeoutError(self._timeout_report(seconds, description or predicate))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.05))

    def wait_for_messages(
        self, chat_id: int | str, count: int, timeout: float = 10.0
    ) -> Coroutine[Any, Any, list[SentMessage]]:
        """Wait until the bot has sent at least ``count`` messages to the chat."""

        def enough() -> bool:
            return len(self.sent_messages(chat_id)) >= count

        async def wait() -> list[SentMessage]:
            label = f"{count} bot message(s) in chat {chat_id}"
            await self._wait_until(enough, timeout, label)
            return self.sent_messages(chat_id)

        return wait()

    def wait_for_calls(
        self,
        method: str,
        count: int = 1,
        *,
        chat_id: int | str | None = None,
        timeout: float = 10.0,
    ) -> Coroutine[Any, Any, list[Call]]:
        """Wait until ``count`` calls of ``method`` have been answered."""

        def answered() -> list[Call]:
            return [c for c in self.calls_of(method, chat_id) if c.done]

        async def wait() -> list[Call]:
            label = f"{count} answered {method} call(s)"
            await self._wait_until(lambda: len(answered()) >= count, timeout, label)
            return answered()

        return wait()

    def _timeout_report(self, timeout: float, what: object) -> str:
        label = what if isinstance(what, str) else getattr(what, "__name__", repr(what))
        polls = [c for c in self.calls if c.method == "getUpdates"]
        recent = [c for c in self.calls if c.method != "getUpdates"][-25:]
        lines = [
            f"FakeTelegram: condition {label!r} not met within {timeout}s.",
            (
                f"{len(self.calls)} calls recorded ({len(polls)} getUpdates), "
                f"{len(self._updates)} update(s) pending (not confirmed by the bot)."
            ),
            "Recent calls (oldest first, getUpdates omitted):",
        ]
        start = self.calls[0].at if self.calls else 0.0
        for c in recent:
            params = ", ".join(f"{k}={_short(v)}" for k, v in c.params.items())
            outcome = (
                "dropped"
                if c.dropped
                else (f"{c.status} {c.description}" if c.failed else f"{c.status}")
            )
            lines.append(f"  +{c.at - start:7.3f}s {c.method}({params}) -> {outcome}")
        if not recent:
            lines.append("  (none)")
        return "\n".join(lines)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method: str,
        *,
        status: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` (for ``chat_id`` if given) fail.

        429 answers carry ``parameters.retry_after`` (default 1) and the description
        "Too Many Requests: retry after N".
        """
        if status == 429:
            retry_after = 1 if retry_after is None else retry_after
            description = description or f"Too Many Requests: retry after {retry_after}"
        description = description or _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        self._faults.append(
            _Fault(
                "fail",
                method.lower(),
                times,
                _as_chat_id(chat_id),
                status,
                description,
                retry_after,
            )
        )

    def drop_connection_next(
        self, method: str, times: int = 1, *, chat_id: int | str | None = None
    ) -> None:
        """Close the TCP connection instead of answering the next call(s) of ``method``."""
        self._faults.append(_Fault("drop", method.lower(), times, _as_chat_id(chat_id)))

    def delay_next(
        self, method: str, seconds: float, times: int = 1, *, chat_id: int | str | None = None
    ) -> None:
        """Answer the next call(s) of ``method`` only after ``seconds``."""
        self._faults.append(
            _Fault("delay", method.lower(), times, _as_chat_id(chat_id), seconds=seconds)
        )

    def answer_raw_next(
        self,
        method: str,
        body: str | bytes,
        *,
        status: int = 502,
        content_type: str = "text/html",
        times: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next call(s) of ``method`` with ``body`` instead of Bot API JSON, as
        a proxy in front of the Bot API does (the call does not reach the "server")."""
        raw = body.encode() if isinstance(body, str) else body
        self._faults.append(
            _Fault(
                "raw",
                method.lower(),
                times,
                _as_chat_id(chat_id),
                status,
                f"{content_type or 'no content type'}, {len(raw)} bytes",
                body=raw,
                content_type=content_type,
            )
        )

    def answer_html_next(
        self, method: str, *, status: int = 502, times: int = 1, chat_id: int | str | None = None
    ) -> None:
        """An nginx-style HTML error page (``text/html``) for the next call(s) of ``method``."""
        reason = {404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway"}.get(
            status, "Error"
        )
        page = (
            f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        self.answer_raw_next(method, page, status=status, times=times, chat_id=chat_id)

    def answer_empty_next(
        self, method: str, *, status: int = 502, times: int = 1, chat_id: int | str | None = None
    ) -> None:
        """An empty body for the next call(s) of ``method``."""
        self.answer_raw_next(
            method, b"", status=status, content_type="", times=times, chat_id=chat_id
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, kind: str, method: str, chat_id: int | str | None) -> _Fault | None:
        for fault in self._faults:
            if fault.kind != kind or fault.method != method:
                continue
            if fault.chat_id is not None and fault.chat_id != chat_id:
                continue
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
            return fault
        return None

    # ------------------------------------------------------------------ HTTP plumbing

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        params: dict[str, Any] = {k: _decode_form_value(k, v) for k, v in request.query.items()}
        files: dict[str, UploadedFile] = {}
        if not request.body_exists:
            return params, files
        ctype = request.content_type
        if ctype == "application/json":
            raw = await request.read()
            if raw.strip():
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError("JSON body must be an object")
                for key, value in body.items():
                    params[key] = _decode_json_value(key, value)
        elif ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = UploadedFile(
                        key, value.filename, value.content_type, value.file.read()
                    )
                else:
                    params[key] = _decode_form_value(key, str(value))
        return params, files

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._fire_changed()

    def _finish(
        self,
        call: Call,
        status: int,
        *,
        result: Any = None,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> web.Response:
        call.status = status
        call.done = True
        if status == 200:
            call.result = copy.deepcopy(result)  # later edits must not rewrite history
            payload: dict[str, Any] = {"ok": True, "result": result}
        else:
            call.failed = True
            call.description = description
            payload = _error_payload(status, description or "", parameters)
        self._fire_changed()
        return web.json_response(payload, status=status)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        method_raw = request.match_info["method"]
        arrived = time.monotonic()
        if token not in self.tokens:
            call = Call(method_raw, dict(request.query), arrived, token)
            self._record(call)
            return self._finish(call, 401, description="Unauthorized")
        try:
            params, files = await self._read_params(request)
        except web.HTTPRequestEntityTooLarge:
            call = Call(method_raw, {}, arrived, token)
            self._record(call)
            return self._finish(call, 413, description="Request Entity Too Large")
        except ValueError as exc:
            call = Call(method_raw, {}, arrived, token)
            self._record(call)
            return self._finish(call, 400, description=f"Bad Request: invalid request body: {exc}")

        known = self._methods.get(method_raw.lower())
        call = Call(known[0] if known else method_raw, params, arrived, token, files=files)
        self._record(call)
        if known is None:
            return self._finish(call, 404, description="Not Found: method not found")
        name, handler = known
        lname = name.lower()
        chat_id = call.chat_id
        if lname in {m.lower() for m in self.unknown_methods}:
            return self._finish(call, 404, description="Not Found")

        delay = self._take_fault("delay", lname, chat_id)
        if delay is not None:
            await self._sleep(delay.seconds)
        if self._take_fault("drop", lname, chat_id) is not None:
            call.failed = call.dropped = call.done = True
            call.status = 0
            call.description = "connection dropped"
            if request.transport is not None:
                request.transport.close()
            self._fire_changed()
            return web.Response(status=500)  # never reaches the client
        fault = self._take_fault("fail", lname, chat_id)
        if fault is not None:
            parameters = {"retry_after": fault.retry_after} if fault.retry_after else None
            return self._finish(
                call, fault.status, description=fault.description, parameters=parameters
            )
        limited = self._group_flood(lname, chat_id)
        if limited is not None:
            self.group_flood_answers += 1
            return self._finish(
                call,
                429,
                description=f"Too Many Requests: retry after {limited}",
                parameters={"retry_after": limited},
            )
        raw = self._take_fault("raw", lname, chat_id)
        if raw is not None:
            call.status, call.description = raw.status, raw.description
            call.failed = call.done = True
            self._fire_changed()
            return web.Response(
                body=raw.body, status=raw.status, content_type=raw.content_type or None
            )

        try:
            result = await handler(_Ctx(token, params, files, call))
        except _TgError as exc:
            return self._finish(
                call, exc.status, description=exc.description, parameters=exc.parameters
            )
        except Exception as exc:  # a bug in the fake: answer 500 and log it loudly
            log.exception("FakeTelegram: %s crashed", name)
            return self._finish(
                call, 500, description=f"Internal Server Error: fake {name} crashed: {exc!r}"
            )
        return self._finish(call, 200, result=result)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] not in self.tokens:
            return web.json_response(_error_payload(401, "Unauthorized"), status=401)
        path = request.match_info["file_path"]
        for stored in self._files.values():
            if stored.file_path == path:
                return web.Response(
                    body=stored.data,
                    content_type=stored.mime_type or "application/octet-stream",
                )
        return web.json_response(_error_payload(404, "Not Found"), status=404)

    # ------------------------------------------------------------------ helpers

    def _group_flood(self, method: str, chat_id: int | str | None) -> int | None:
        """Telegram's limit on one group: about 20 messages a minute (sends and edits alike,
        here `group_rate_limit` per `group_rate_window` seconds); past it, the seconds to wait
        (a 429 with retry_after), as Telegram answers."""
        if method not in GROUP_LIMITED or not isinstance(chat_id, int) or chat_id >= 0:
            return None
        now = time.monotonic()
        sent = self._group_sends.setdefault(chat_id, deque())
        while sent and now - sent[0] >= self.group_rate_window:
            sent.popleft()
        if len(sent) >= self.group_rate_limit:
            return max(1, math.ceil(self.group_rate_window - (now - sent[0])))
        sent.append(now)
        return None

    def _chat(self, params: dict[str, Any]) -> _Chat:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _TgError(400, "Bad Request: chat_id is empty")
        chat_id = _as_chat_id(raw)
        if chat_id is None:
            raise _TgError(400, "Bad Request: chat_id is empty")
        chat = self._chats.get(chat_id)
        if chat is None:
            if self.strict_chats or not isinstance(chat_id, int):
                raise _TgError(400, "Bad Request: chat not found")
            if chat_id > 0:
                chat = _Chat(id=chat_id, type="private", first_name="User")
            else:
                kind = "supergroup" if str(chat_id).startswith("-100") else "group"
                chat = _Chat(id=chat_id, type=kind, title="Test Group")
            self._chats[chat_id] = chat
        return chat

    @staticmethod
    def _int(params: dict[str, Any], key: str) -> int:
        value = params.get(key)
        if value is None or value == "":
            raise _TgError(400, f"Bad Request: {key} is empty")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _TgError(400, f"Bad Request: wrong {key} specified") from None

    def _format(
        self, text: str, parse_mode: Any, entities: Any
    ) -> tuple[str, list[dict[str, Any]]]:
        if isinstance(entities, list) and entities:
            plain, parsed = text, [dict(e) for e in entities if isinstance(e, dict)]
        else:
            try:
                plain, parsed = parse_formatted_text(
                    text,
                    parse_mode if isinstance(parse_mode, str) else None,
                    strict_html_ampersand=self.strict_html_ampersand,
                )
            except EntityParseError as exc:
                raise _TgError(400, f"Bad Request: can't parse entities: {exc}") from None
            except _UnsupportedParseModeError:
                # Telegram's words for a mode it does not know. MarkdownV2 and Markdown are
                # unknown here too: the app never sends them.
                raise _TgError(
                    400, "Bad Request: unsupported parse_mode (this fake parses HTML only)"
                ) from None
        return _trim(plain, parsed)

    def _reply_to(self, chat: _Chat, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        allow_missing = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply, dict):
            target = reply.get("message_id")
            allow_missing = allow_missing or bool(reply.get("allow_sending_without_reply"))
        else:
            target = params.get("reply_to_message_id")
        if target is None:
            return None
        message = chat.messages.get(int(target))
        if message is None:
            if allow_missing:
                return None
            raise _TgError(400, "Bad Request: message to be replied not found")
        return {k: v for k, v in message.items() if k != "reply_to_message"}

    def _store_bot_message(
        self,
        chat: _Chat,
        method: str,
        *,
        text: str | None,
        parse_mode: str | None,
        entities: list[dict[str, Any]] | None,
        reply_markup: dict[str, Any] | None,
        plain: str | None,
        parsed: list[dict[str, Any]],
        params: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> SentMessage:
        reply_to = self._reply_to(chat, params)
        now = time.monotonic()
        mid = chat.new_message_id()
        date = int(time.time())
        raw: dict[str, Any] = {
            "message_id": mid,
            "from": self.bot_user,
            "chat": chat.as_dict(),
            "date": date,
        }
        if reply_to is not None:
            raw["reply_to_message"] = reply_to
        thread_id = params.get("message_thread_id")
        if thread_id is not None and (chat.type == "supergroup" or int(thread_id) in chat.topics):
            raw["message_thread_id"] = int(thread_id)
            raw["is_topic_message"] = True
        if method == "sendMessage":
            raw["text"] = plain
            if parsed:
                raw["entities"] = parsed
        if extra:
            raw.update(extra)
        if _inline_markup(reply_markup):
            raw["reply_markup"] = reply_markup
        sent = SentMessage(
            chat_id=chat.id,
            message_id=mid,
            text=text,
            parse_mode=parse_mode,
            entities=entities,
            reply_markup=reply_markup,
            plain_text=plain,
            parsed_entities=parsed,
            date=date,
            sent_at=now,
            method=method,
            raw=raw,
        )
        ephemeral = params.get("ephemeral_message_parameters")
        if isinstance(ephemeral, dict) and ephemeral.get("receiver_user_id") is not None:
            sent.ephemeral_for = int(ephemeral["receiver_user_id"])
        sent.history.append(MessageVersion(text, parse_mode, entities, reply_markup, plain, now))
        chat.messages[mid] = raw
        chat.bot_messages[mid] = sent
        return sent

    def _bot_message(self, chat: _Chat, params: dict[str, Any], *, action: str) -> SentMessage:
        if params.get("inline_message_id"):
            raise _TgError(400, f"Bad Request: message to {action} not found")
        mid = self._int(params, "message_id")
        sent = chat.bot_messages.get(mid)
        if sent is None or sent.deleted:
            if mid in chat.messages and action == "edit":
                raise _TgError(400, "Bad Request: message can't be edited")
            raise _TgError(400, f"Bad Request: message to {action} not found")
        return sent

    def _commands_key(self, scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) and scope else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    def _store_file(
        self, content: bytes, file_name: str | None, mime_type: str | None, folder: str
    ) -> _StoredFile:
        n = next(self._file_counter)
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name)[0]
        stored = _StoredFile(
            file_id=f"BQACAgIAAxkB{n:08d}fake",
            file_unique_id=f"AgAD{n:06d}",
            file_path=f"{folder}/file_{n}{suffix}",
            data=content,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        return stored

    @staticmethod
    def _document_dict(stored: _StoredFile) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }
        if stored.file_name is not None:
            doc["file_name"] = stored.file_name
        if stored.mime_type is not None:
            doc["mime_type"] = stored.mime_type
        return doc

    # ------------------------------------------------------------------ methods

    async def _m_true(self, ctx: _Ctx) -> bool:
        return True

    async def _m_get_me(self, ctx: _Ctx) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "has_topics_enabled": self.topics_enabled,
        }

    def _deliverable(self, limit: int) -> list[dict[str, Any]]:
        allowed = self._allowed_updates
        batch: list[dict[str, Any]] = []
        for update in self._updates:
            if allowed:
                kinds = [k for k in update if k != "update_id"]
                if kinds and kinds[0] not in allowed:
                    continue
            batch.append(update)
            if len(batch) >= limit:
                break
        return batch

    async def _m_get_updates(self, ctx: _Ctx) -> list[dict[str, Any]]:
        p = ctx.params
        if self.webhook_url:
            raise _TgError(409, WEBHOOK_CONFLICT)
        try:
            offset = int(p.get("offset") or 0)
            limit = min(max(int(p.get("limit") or 100), 1), 100)
            timeout = min(max(float(p.get("timeout") or 0), 0.0), MAX_POLL_TIMEOUT)
        except (TypeError, ValueError):
            raise _TgError(400, "Bad Request: wrong parameter in request") from None
        if "allowed_updates" in p and isinstance(p["allowed_updates"], list):
            self._allowed_updates = [str(x) for x in p["allowed_updates"]] or None
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

        generation = self._poll_generation.get(ctx.token, 0) + 1
        self._poll_generation[ctx.token] = generation
        if self.conflict_on_concurrent_polls:
            self._fire_updates()  # an older pending poll of this token ends with 409
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if (
                self.conflict_on_concurrent_polls
                and self._poll_generation.get(ctx.token) != generation
            ):
                raise _TgError(409, POLL_CONFLICT)
            batch = self._deliverable(limit)
            if batch or self._stopping:
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            event = self._updates_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _check_text(self, params: dict[str, Any], too_long: str) -> tuple[str, str, list[Any]]:
        text = params.get("text")
        if text is None or text == "":
            raise _TgError(400, "Bad Request: message text is empty")
        text = str(text)
        plain, parsed = self._format(text, params.get("parse_mode"), params.get("entities"))
        if not plain:
            raise _TgError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > MAX_MESSAGE_LENGTH:
            raise _TgError(400, too_long)
        return text, plain, parsed

    async def _m_send_message(self, ctx: _Ctx) -> dict[str, Any]:
        p = ctx.params
        chat = self._chat(p)
        ephemeral = p.get("ephemeral_message_parameters")
        if ephemeral is not None:
            if self.refuse_ephemeral:
                raise _TgError(400, "Bad Request: ephemeral messages can't be sent to the chat")
            if chat.type not in ("group", "supergroup") or not isinstance(ephemeral, dict):
                raise _TgError(400, "Bad Request: ephemeral messages are for groups only")
        text, plain, parsed = self._check_text(p, "Bad Request: message is too long")
        markup = p.get("reply_markup") if isinstance(p.get("reply_markup"), dict) else None
        entities = p.get("entities") if isinstance(p.get("entities"), list) else None
        sent = self._store_bot_message(
            chat,
            "sendMessage",
            text=text,
            parse_mode=p.get("parse_mode"),
            entities=entities,
            reply_markup=markup,
            plain=plain,
            parsed=parsed,
            params=p,
        )
        return sent.raw

    async def _m_edit_message_text(self, ctx: _Ctx) -> dict[str, Any] | bool:
        p = ctx.params
        inline_id = p.get("inline_message_id")
        if inline_id and str(inline_id) in self.guest_answers:
            answer = self.guest_answers[str(inline_id)]
            text = str(p.get("text") or "")
            if text == answer.texts[-1]:
                raise _TgError(400, NOT_MODIFIED)
            answer.texts.append(text)
            return True  # an inline message: Telegram answers True, not the message
        chat = self._chat(p)
        sent = self._bot_message(chat, p, action="edit")
        if sent.method != "sendMessage":
            raise _TgError(400, "Bad Request: there is no text in the message to edit")
        text, plain, parsed = self._check_text(p, "Bad Request: MESSAGE_TOO_LONG")
        markup = p.get("reply_markup") if isinstance(p.get("reply_markup"), dict) else None
        if (
            plain == sent.plain_text
            and parsed == sent.parsed_entities
            and _inline_markup(markup) == _inline_markup(sent.reply_markup)
        ):
            raise _TgError(400, NOT_MODIFIED)
        now = time.monotonic()
        sent.text, sent.plain_text, sent.parsed_entities = text, plain, parsed
        sent.parse_mode = p.get("parse_mode")
        sent.entities = p.get("entities") if isinstance(p.get("entities"), list) else None
        sent.reply_markup = markup
        sent.edited_at = now
        sent.history.append(
            MessageVersion(text, sent.parse_mode, sent.entities, markup, plain, now)
        )
        raw = sent.raw
        raw["text"] = plain
        raw.pop("entities", None)
        if parsed:
            raw["entities"] = parsed
        raw.pop("reply_markup", None)
        if _inline_markup(markup):
            raw["reply_markup"] = markup
        raw["edit_date"] = int(time.time())
        return raw

    async def _m_edit_message_reply_markup(self, ctx: _Ctx) -> dict[str, Any]:
        p = ctx.params
        chat = self._chat(p)
        sent = self._bot_message(chat, p, action="edit")
        markup = p.get("reply_markup") if isinstance(p.get("reply_markup"), dict) else None
        if _inline_markup(markup) == _inline_markup(sent.reply_markup):
            raise _TgError(400, NOT_MODIFIED)
        now = time.monotonic()
        sent.reply_markup = markup
        sent.edited_at = now
        sent.history.append(
            MessageVersion(sent.text, sent.parse_mode, sent.entities, markup, sent.plain_text, now)
        )
        sent.raw.pop("reply_markup", None)
        if _inline_markup(markup):
            sent.raw["reply_markup"] = markup
        sent.raw["edit_date"] = int(time.time())
        return sent.raw

    async def _m_delete_message(self, ctx: _Ctx) -> bool:
        p = ctx.params
        chat = self._chat(p)
        mid = self._int(p, "message_id")
        sent = chat.bot_messages.get(mid)
        if sent is not None and not sent.deleted:
            sent.deleted = True
            chat.messages.pop(mid, None)
            return True
        if sent is None and mid in chat.messages:
            chat.messages.pop(mid)
            return True
        raise _TgError(400, "Bad Request: message to delete not found")

    async def _m_send_message_draft(self, ctx: _Ctx) -> bool:
        p = ctx.params
        if self.refuse_drafts:
            raise _TgError(400, DRAFTS_UNAVAILABLE)
        chat = self._chat(p)
        if chat.type != "private":
            raise _TgError(400, DRAFTS_UNAVAILABLE)
        draft_id = self._int(p, "draft_id")
        if draft_id == 0:
            raise _TgError(400, "Bad Request: draft_id must be non-zero")
        text = "" if p.get("text") is None else str(p.get("text"))
        plain = self._format(text, p.get("parse_mode"), p.get("entities"))[0] if text else ""
        if utf16_len(plain) > MAX_MESSAGE_LENGTH:
            raise _TgError(400, "Bad Request: message is too long")
        now = time.monotonic()
        key = (chat.id, draft_id)
        entities = p.get("entities") if isinstance(p.get("entities"), list) else None
        draft = self._drafts.get(key)
        if draft is None:
            draft = self._drafts[key] = Draft(
                chat.id, draft_id, text, p.get("parse_mode"), entities, plain, now, now
            )
        else:
            draft.text, draft.parse_mode, draft.entities = text, p.get("parse_mode"), entities
            draft.plain_text, draft.updated_at = plain, now
        draft.can_stop = bool(p.get("can_stop"))
        draft.history.append(text)
        return True

    async def _m_send_chat_action(self, ctx: _Ctx) -> bool:
        p = ctx.params
        self._chat(p)
        if p.get("action") not in _CHAT_ACTIONS:
            raise _TgError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _m_set_my_commands(self, ctx: _Ctx) -> bool:
        p = ctx.params
        scope = p.get("scope")
        if isinstance(scope, dict) and "chat_id" in scope:
            # A chat scope names a chat Telegram must know: "chat not found" otherwise
            # (with strict_chats, for a user who has never written to the bot).
            self._chat({"chat_id": scope["chat_id"]})
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise _TgError(400, 'Bad Request: parameter "commands" is required')
        if len(commands) > 100:
            raise _TgError(400, "Bad Request: too many commands specified")
        cleaned: list[dict[str, Any]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _TgError(400, "Bad Request: can't parse commands JSON object")
            command = str(item.get("command", "")).removeprefix("/")
            description = str(item.get("description", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise _TgError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise _TgError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": command, "description": description})
        key = self._commands_key(p.get("scope"), p.get("language_code"))
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    async def _m_get_my_commands(self, ctx: _Ctx) -> list[dict[str, Any]]:
        p = ctx.params
        return list(
            self._commands.get(self._commands_key(p.get("scope"), p.get("language_code")), [])
        )

    async def _m_delete_my_commands(self, ctx: _Ctx) -> bool:
        p = ctx.params
        self._commands.pop(self._commands_key(p.get("scope"), p.get("language_code")), None)
        return True

    async def _m_set_webhook(self, ctx: _Ctx) -> bool:
        p = ctx.params
        url = str(p.get("url") or "")
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _TgError(400, "Bad Request: secret token contains unallowed characters")
        try:
            max_connections = int(p.get("max_connections") or 40)
        except (TypeError, ValueError):
            raise _TgError(400, "Bad Request: wrong parameter in request") from None
        if not 1 <= max_connections <= 100:
            raise _TgError(400, "Bad Request: bad webhook: max_connections out of range")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in p and isinstance(p["allowed_updates"], list):
            self._allowed_updates = [str(x) for x in p["allowed_updates"]] or None
        self.webhook_url = url
        self.webhook_secret = str(secret) if url and secret is not None else None
        self.webhook_max_connections = max_connections if url else None
        self.webhook_last_error = None
        self._fire_updates()  # pending polls end with 409; the deliverer sees the new URL
        if url and (self._webhook_task is None or self._webhook_task.done()):
            self._webhook_task = asyncio.create_task(self._deliver_to_webhook())
        return True

    async def _m_delete_webhook(self, ctx: _Ctx) -> bool:
        if ctx.params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook_url = ""
        self.webhook_secret = self.webhook_max_connections = None
        self._fire_updates()  # the deliverer stops
        return True

    async def _m_get_webhook_info(self, ctx: _Ctx) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
            if self.webhook_last_error:
                info["last_error_date"] = int(time.time())
                info["last_error_message"] = self.webhook_last_error
        return info

    async def _deliver_to_webhook(self) -> None:
        """POST pending updates to the webhook with the secret in
        X-Telegram-Bot-Api-Secret-Token: an update leaves the queue on a 2xx answer, and is
        sent again after a short, growing backoff on any other answer or a connection
        failure, like Telegram. One at a time and in order (what the tests rely on), or with
        ``webhook_parallel`` up to the webhook's max_connections at once, as Telegram may
        (order then holds only between an update and those sent after its answer). Ends
        when the webhook is deleted or the server stops."""
        timeout = aiohttp.ClientTimeout(total=10)
        connector = aiohttp.TCPConnector(limit=0)  # max_connections is the limit
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            if self.webhook_parallel:
                await self._deliver_in_parallel(session)
                return
            delay = self.webhook_retry_delay
            while self.webhook_url and not self._stopping:
                batch = self._deliverable(1)
                if not batch:
                    await self._updates_event.wait()
                    continue
                if await self._post_update(session, batch[0]):
                    delay = self.webhook_retry_delay
                    continue
                await self._sleep(delay)
                delay = min(delay * 2, self.webhook_max_retry_delay)

    async def _deliver_in_parallel(self, session: aiohttp.ClientSession) -> None:
        in_flight: dict[int, asyncio.Task[None]] = {}

        async def post(update: dict[str, Any]) -> None:
            try:
                if not await self._post_update(session, update):
                    await self._sleep(self.webhook_retry_delay)  # then it is POSTed again
            finally:
                del in_flight[update["update_id"]]
                self._fire_updates()

        try:
            while self.webhook_url and not self._stopping:
                room = (self.webhook_max_connections or 40) - len(in_flight)
                waiting = [
                    update
                    for update in self._deliverable(len(self._updates))
                    if update["update_id"] not in in_flight
                ]
                if room <= 0 or not waiting:
                    await self._updates_event.wait()  # a push, or a POST done
                    continue
                for update in waiting[:room]:
                    in_flight[update["update_id"]] = asyncio.create_task(post(update))
        finally:
            tasks = list(in_flight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _post_update(self, session: aiohttp.ClientSession, update: dict[str, Any]) -> bool:
        """One POST of an update; True when the webhook took it (it leaves the queue)."""
        url = self.webhook_url
        headers = {}
        if self.webhook_secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        status, error = 0, None
        try:
            async with session.post(url, json=update, headers=headers) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"Connection failed: {type(exc).__name__}"
        delivery = WebhookDelivery(update["update_id"], url, status, time.monotonic())
        if not delivery.accepted:
            delivery.error = error or f"Wrong response from the webhook: {status}"
        self.webhook_deliveries.append(delivery)
        if delivery.accepted:
            with contextlib.suppress(ValueError):
                self._updates.remove(update)
        else:
            self.webhook_last_error = delivery.error
        self._fire_changed()
        return delivery.accepted

    def webhook_deliveries_of(self, update_id: int) -> list[WebhookDelivery]:
        return [d for d in self.webhook_deliveries if d.update_id == update_id]

    async def _m_answer_callback_query(self, ctx: _Ctx) -> bool:
        p = ctx.params
        query_id = str(p.get("callback_query_id") or "")
        if query_id not in self._open_callbacks:
            raise _TgError(400, CALLBACK_TOO_OLD)
        if len(str(p.get("text") or "")) > 200:
            raise _TgError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._open_callbacks.discard(query_id)
        self.callback_answers[query_id] = dict(p)
        return True

    async def _m_send_document(self, ctx: _Ctx) -> dict[str, Any]:
        p = ctx.params
        chat = self._chat(p)
        ref = p.get("document")
        upload: UploadedFile | None = None
        stored: _StoredFile | None = None
        if isinstance(ref, str) and ref.startswith("attach://"):
            upload = ctx.files.get(ref[len("attach://") :])
            if upload is None:
                raise _TgError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        elif ref is None and "document" in ctx.files:
            upload = ctx.files["document"]
        elif isinstance(ref, str) and ref in self._files:
            stored = self._files[ref]
        elif isinstance(ref, str) and ref.startswith(("http://", "https://")):
            raise _TgError(400, "Bad Request: failed to get HTTP URL content")
        elif ref is None:
            raise _TgError(400, "Bad Request: there is no document in the request")
        else:
            raise _TgError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if upload is not None:
            if not upload.data:
                raise _TgError(400, "Bad Request: file must be non-empty")
            mime = upload.content_type
            if mime in (None, "application/octet-stream") and upload.filename:
                mime = mimetypes.guess_type(upload.filename)[0] or mime
            stored = self._store_file(upload.data, upload.filename, mime, "documents")
        assert stored is not None
        extra: dict[str, Any] = {"document": self._document_dict(stored)}
        caption = self._caption(p, extra)
        markup = p.get("reply_markup") if isinstance(p.get("reply_markup"), dict) else None
        sent = self._store_bot_message(
            chat,
            "sendDocument",
            text=None,
            parse_mode=p.get("parse_mode"),
            entities=p.get("caption_entities")
            if isinstance(p.get("caption_entities"), list)
            else None,
            reply_markup=markup,
            plain=None,
            parsed=[],
            params=p,
            extra=extra,
        )
        sent.caption = str(caption) if caption else None
        sent.document = extra["document"]
        sent.document_bytes = stored.data
        return sent.raw

    def _caption(self, p: dict[str, Any], extra: dict[str, Any]) -> Any:
        """A media message's `caption` as Telegram takes it: formatted (its parse_mode or
        entities), refused over 1,024 characters, and put into the message (`extra`) with
        its entities. The caption as sent is returned."""
        caption = p.get("caption")
        if caption:
            plain, parsed = self._format(
                str(caption), p.get("parse_mode"), p.get("caption_entities")
            )
            if utf16_len(plain) > MAX_CAPTION_LENGTH:
                raise _TgError(400, "Bad Request: message caption is too long")
            if plain:
                extra["caption"] = plain
                if parsed:
                    extra["caption_entities"] = parsed
        return caption

    async def _m_send_voice(self, ctx: _Ctx) -> dict[str, Any]:
        """A voice message, uploaded: Telegram shows it as one only when it is Ogg/Opus
        (anything else is refused here, so a test sees the mistake)."""
        p = ctx.params
        chat = self._chat(p)
        ref = p.get("voice")
        upload = None
        if isinstance(ref, str) and ref.startswith("attach://"):
            upload = ctx.files.get(ref[len("attach://") :])
        elif ref is None:
            upload = ctx.files.get("voice")
        if upload is None or not upload.data:
            raise _TgError(400, "Bad Request: there is no voice in the request")
        if not (upload.data.startswith(b"OggS") and b"OpusHead" in upload.data[:64]):
            raise _TgError(400, "Bad Request: VOICE_MESSAGE_NOT_OGG_OPUS (fake's own check)")
        stored = self._store_file(upload.data, upload.filename, "audio/ogg", "voice")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": int(p.get("duration") or 0),
            "mime_type": "audio/ogg",
            "file_size": len(upload.data),
        }
        caption = p.get("caption")
        extra: dict[str, Any] = {"voice": voice}
        if caption:
            extra["caption"] = str(caption)
        sent = self._store_bot_message(
            chat,
            "sendVoice",
            text=None,
            parse_mode=p.get("parse_mode"),
            entities=None,
            reply_markup=None,
            plain=None,
            parsed=[],
            params=p,
            extra=extra,
        )
        sent.caption = str(caption) if caption else None
        sent.voice = voice
        sent.document_bytes = upload.data
        return sent.raw

    async def _m_send_photo(self, ctx: _Ctx) -> dict[str, Any]:
        """A photo, uploaded: Telegram takes only a picture it can read (10 MB at most) and
        answers with its sizes."""
        p = ctx.params
        chat = self._chat(p)
        ref = p.get("photo")
        upload = None
        if isinstance(ref, str) and ref.startswith("attach://"):
            upload = ctx.files.get(ref[len("attach://") :])
        elif ref is None:
            upload = ctx.files.get("photo")
        elif isinstance(ref, str) and ref.startswith(("http://", "https://")):
            raise _TgError(400, "Bad Request: failed to get HTTP URL content")
        if upload is None or not upload.data:
            raise _TgError(400, "Bad Request: there is no photo in the request")
        if len(upload.data) > 10 * 1024 * 1024:
            raise _TgError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        from PIL import Image, UnidentifiedImageError  # only the tests of photos need Pillow

        try:
            with Image.open(io.BytesIO(upload.data)) as picture:
                width, height = picture.size
        except (UnidentifiedImageError, OSError) as exc:
            raise _TgError(400, "Bad Request: IMAGE_PROCESS_FAILED") from exc
        sizes = [self._photo_size(upload.data, width, height)]
        extra: dict[str, Any] = {"photo": sizes}
        caption = self._caption(p, extra)
        sent = self._store_bot_message(
            chat,
            "sendPhoto",
            text=None,
            parse_mode=p.get("parse_mode"),
            entities=None,
            reply_markup=p.get("reply_markup") if isinstance(p.get("reply_markup"), dict) else None,
            plain=None,
            parsed=[],
            params=p,
            extra=extra,
        )
        sent.caption = str(caption) if caption else None
        sent.photo = sizes
        sent.document_bytes = upload.data
        return sent.raw

    def push_guest_message(
        self, chat_id: int, user_id: int, text: str, *, first_name: str = "User"
    ) -> dict[str, Any]:
        """Someone mentions the bot in a chat it is not a member of (Bot API 10.0)."""
        user = self._user(user_id, first_name, None, None, USERS_LANGUAGE)
        query_id = f"gq{next(self._callback_counter)}"
        self._open_guest_queries.add(query_id)
        entities = [
            {"type": "mention", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m[0])}
            for m in re.finditer(r"(?<![\w@])@[A-Za-z0-9_]{5,32}\b", text)
        ]
        message: dict[str, Any] = {
            "message_id": 1,
            "from": user,
            "chat": {"id": chat_id, "type": "supergroup", "title": "Elsewhere"},
            "date": int(time.time()),
            "text": text,
            "guest_query_id": query_id,
        }
        if entities:
            message["entities"] = entities
        return self.push_update({"guest_message": message})

    async def _m_answer_guest_query(self, ctx: _Ctx) -> dict[str, Any]:
        query_id = str(ctx.params.get("guest_query_id") or "")
        if query_id not in self._open_guest_queries:
            raise _TgError(400, "Bad Request: query is too old or query ID is invalid")
        self._open_guest_queries.discard(query_id)  # answered once
        result = ctx.params.get("result")
        if not isinstance(result, dict) or not isinstance(
            result.get("input_message_content"), dict
        ):
            raise _TgError(400, "Bad Request: RESULT_INVALID")
        text = str(result["input_message_content"].get("message_text") or "")
        if not text:
            raise _TgError(400, "Bad Request: MESSAGE_EMPTY")
        inline_id = f"inline-{query_id}"
        self.guest_answers[inline_id] = GuestReply(query_id, [text])
        return {"inline_message_id": inline_id}

    async def _m_create_forum_topic(self, ctx: _Ctx) -> dict[str, Any]:
        chat = self._chat(ctx.params)
        if chat.type == "private" and not self.topics_enabled:
            raise _TgError(400, "Bad Request: the chat is not a forum")
        if chat.type != "private" and not chat.is_forum:
            raise _TgError(400, "Bad Request: the chat is not a forum")
        name = str(ctx.params.get("name") or "")
        if not 1 <= len(name) <= 128:
            raise _TgError(400, "Bad Request: TOPIC_TITLE_EMPTY")
        thread_id = chat.new_message_id()  # a topic is known by its first message's id
        chat.topics[thread_id] = name
        return {"message_thread_id": thread_id, "name": name, "icon_color": 7322096}

    async def _m_edit_forum_topic(self, ctx: _Ctx) -> bool:
        chat = self._chat(ctx.params)
        thread_id = self._int(ctx.params, "message_thread_id")
        if thread_id not in chat.topics:
            raise _TgError(400, "Bad Request: message thread not found")
        name = ctx.params.get("name")
        if name is not None:
            if not 1 <= len(str(name)) <= 128:
                raise _TgError(400, "Bad Request: TOPIC_TITLE_EMPTY")
            chat.topics[thread_id] = str(name)
        return True

    def topics(self, chat_id: int) -> dict[int, str]:
        """A chat's forum topics: thread id -> name."""
        return dict(self._chats[chat_id].topics)

    async def _m_get_chat_member(self, ctx: _Ctx) -> dict[str, Any]:
        chat = self._chat(ctx.params)
        user_id = self._int(ctx.params, "user_id")
        user = self._users.get(user_id)
        if user is None:
            raise _TgError(400, "Bad Request: user not found")
        if chat.type == "private":
            status = "member" if user_id == chat.id else "left"
        else:
            status = chat.admins.get(user_id, "member")
        member: dict[str, Any] = {"user": user, "status": status}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            # ChatMemberAdministrator's required fields, as Telegram sends them.
            member |= {"can_be_edited": False, "is_anonymous": False}
            member |= dict.fromkeys(ADMINISTRATOR_RIGHTS, True)
        return member

    async def _m_get_file(self, ctx: _Ctx) -> dict[str, Any]:
        file_id = str(ctx.params.get("file_id") or "")
        stored = self._files.get(file_id)
        if stored is None:
            raise _TgError(400, "Bad Request: invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_SIZE:
            raise _TgError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    async def _m_set_my_description(self, ctx: _Ctx) -> bool:
        p = ctx.params
        self._descriptions[("description", str(p.get("language_code") or ""))] = str(
            p.get("description") or ""
        )
        return True

    async def _m_get_my_description(self, ctx: _Ctx) -> dict[str, Any]:
        lang = str(ctx.params.get("language_code") or "")
        return {"description": self._descriptions.get(("description", lang), "")}

    async def _m_set_my_short_description(self, ctx: _Ctx) -> bool:
        p = ctx.params
        self._descriptions[("short_description", str(p.get("language_code") or ""))] = str(
            p.get("short_description") or ""
        )
        return True

    async def _m_get_my_short_description(self, ctx: _Ctx) -> dict[str, Any]:
        lang = str(ctx.params.get("language_code") or "")
        return {"short_description": self._descriptions.get(("short_description", lang), "")}

    # ------------------------------------------------------------------ control API

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        body = json.loads(raw) if raw.strip() else {}
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="JSON object expected")
        return body

    async def _ctl_push_message(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        return web.json_response(self.push_message(**body))

    async def _ctl_push_callback(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        return web.json_response(self.push_callback(**body))

    async def _ctl_push_update(self, request: web.Request) -> web.Response:
        return web.json_response(self.push_update(await self._json_body(request)))

    async def _ctl_fail_next(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        self.fail_next(body.pop("method"), **body)
        return web.json_response({"ok": True})

    async def _ctl_reset_calls(self, request: web.Request) -> web.Response:
        self.reset_calls()
        return web.json_response({"ok": True})

    async def _ctl_stats(self, request: web.Request) -> web.Response:
        per_method: dict[str, int] = {}
        failed = 0
        for c in self.calls:
            per_method[c.method] = per_method.get(c.method, 0) + 1
            failed += c.failed
        return web.json_response(
            {
                "calls": per_method,
                "failed": failed,
                "pending_updates": len(self._updates),
                "chats": len(self._chats),
                "bot_messages": sum(len(c.bot_messages) for c in self._chats.values()),
            }
        )

    async def _ctl_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        chat_id = request.query.get("chat_id")
        calls = self.calls_of(method, chat_id) if method else list(self.calls)
        return web.json_response([c.summary() for c in calls], dumps=_dumps)

    async def _ctl_sent_messages(self, request: web.Request) -> web.Response:
        messages = self.sent_messages(request.query["chat_id"])
        return web.json_response([m.summary() for m in messages], dumps=_dumps)

    async def _ctl_drafts(self, request: web.Request) -> web.Response:
        drafts = self.drafts(request.query["chat_id"])
        return web.json_response([asdict(d) for d in drafts], dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> int:
    fake = FakeTelegram(
        tokens=args.token or None, bot_id=args.bot_id, bot_username=args.bot_username
    )
    await fake.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"FakeTelegram listening on {fake.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake Telegram Bot API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--token", action="append", help="accepted bot token (repeatable; default 123:ABC)"
    )
    parser.add_argument("--bot-id", type=int, default=None, help="default: the token's prefix")
    parser.add_argument("--bot-username", default="test_bot")
    return asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
