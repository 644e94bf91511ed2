"""Retries of Bot API calls, in one place: a request middleware on the bot's session.

aiogram raises Telegram's flood control (429) and server errors to the caller and has no
retry of its own; handlers should not each carry a loop. A 5xx answer that is not Bot API
JSON (a proxy's HTML "502 Bad Gateway" page, an empty body) reaches this middleware as a
TelegramServerError too (app/delivery/session.py), so it is retried like any 5xx; the same
below 500 (a wrong URL's 404 page) is not.
"""

from __future__ import annotations

import asyncio
import logging
import random

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import GetUpdates, SendChatAction, SendMessageDraft, TelegramMethod
from aiogram.methods.base import Response, TelegramType

from app.delivery.errors import brief

log = logging.getLogger(__name__)

# Polling has its own backoff; a preview or a typing action is worth nothing late.
UNRETRIED = frozenset(m.__api_method__ for m in (GetUpdates, SendMessageDraft, SendChatAction))


class RetryMiddleware(BaseRequestMiddleware):
    """Waits out 429 (up to `max_wait` seconds in all) and retries 5xx and network errors
    with exponential backoff and jitter, `attempts` times at most.

    A network error after the request was sent may mean Telegram did act on it; a retried
    sendMessage can then show twice. A lost answer is the worse failure, so we retry.
    """

    def __init__(self, attempts: int = 4, base_delay: float = 0.5, max_wait: float = 60.0) -> None:
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_wait = max_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if method.__api_method__ in UNRETRIED:
            return await make_request(bot, method)
        waited = 0.0
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                delay = float(exc.retry_after)
                if waited + delay > self.max_wait:
                    raise
            except (TelegramServerError, TelegramNetworkError) as exc:
                if attempt == self.attempts:
                    raise
                delay = self.base_delay * 2 ** (attempt - 1) * (1 + random.random() / 2)
                log.warning(  # one line: never the body of an error page
                    "%s failed (%s); retry %d in %.1f s",
                    method.__api_method__,
                    brief(exc),
                    attempt,
                    delay,
                )
            waited += delay
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the last attempt returns or raises
