"""Bot API failures told in one short line: what failed and why, never a body or a user's text.

aiogram's own `str()` of an undecodable answer carries the whole body (an HTML error page of
a proxy), and several of its exceptions add a second line; our logs say one line.
"""

from __future__ import annotations

import json
import re

from aiogram.exceptions import ClientDecodeError, TelegramAPIError

_TITLE = re.compile(r"<title[^>]*>([^<]{1,80})", re.IGNORECASE)


class NotBotApiAnswer(ClientDecodeError):
    """An answer below 500 whose body is not Bot API JSON: an HTML page, an empty body, some
    other server's JSON. A wrong TELEGRAM_API_URL, or a proxy's error page. (Such an answer
    with a 5xx status is raised as a TelegramServerError instead, and retried like one.)"""

    def __init__(self, status_code: int, content: str, original: Exception) -> None:
        self.status_code = status_code
        # The body is not kept: aiogram's ClientDecodeError would print all of it.
        super().__init__("Not a Bot API answer", original, describe_body(content))

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {self.data} instead of a Bot API answer"


def describe_body(content: str) -> str:
    """What a body that is not a Bot API answer looks like, in a few words."""
    text = content.strip()
    if not text:
        return "an empty body"
    if text.startswith("<"):
        title = _TITLE.search(text)
        return f'an HTML page ("{title.group(1).strip()}")' if title else "an HTML page"
    try:
        json.loads(text)
    except ValueError:
        return f"{len(text)} characters of text"
    return "JSON of another kind"


def brief(exc: BaseException) -> str:
    """The exception's type and, where it cannot carry a body or a text, its message."""
    if isinstance(exc, NotBotApiAnswer):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TelegramAPIError):
        # Telegram's descriptions ("Bad Request: chat not found") name no user's text.
        return f"{type(exc).__name__}: {exc.message}"
    if isinstance(exc, ClientDecodeError):
        return f"{type(exc).__name__}: {exc.message}"  # without its `data`: the body
    return type(exc).__name__  # other messages may quote anything
