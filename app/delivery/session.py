"""The bot's HTTP session to the Bot API: retries, answers that are not Bot API JSON told
apart by their status, and response types built once."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from aiogram import methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import ClientDecodeError, TelegramServerError
from aiogram.methods.base import Response, TelegramMethod, TelegramType

from app.delivery.errors import NotBotApiAnswer, describe_body
from app.delivery.retry import RetryMiddleware

if TYPE_CHECKING:
    from aiogram import Bot


class BotApiSession(AiohttpSession):
    """aiogram's session, except for an answer whose body is not Bot API JSON.

    aiogram raises ClientDecodeError for it whatever the status, with the whole body in its
    message and without the status. A 5xx one (a proxy's "502 Bad Gateway" page, Telegram
    during an outage, an empty body) is a server error like any other 5xx, so it becomes a
    TelegramServerError, which the retry middleware retries; any other (a wrong
    TELEGRAM_API_URL's 404 page) becomes NotBotApiAnswer, with the status and without the body.
    """

    def check_response(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        status_code: int,
        content: str,
    ) -> Response[TelegramType]:
        try:
            return super().check_response(bot, method, status_code, content)
        except ClientDecodeError as exc:
            if status_code >= 500:
                raise TelegramServerError(
                    method=method,
                    message=f"HTTP {status_code}: {describe_body(content)} instead of a "
                    "Bot API answer",
                ) from None
            raise NotBotApiAnswer(status_code, content, exc.original) from None


def create_session(api_url: str) -> AiohttpSession:
    session = BotApiSession(api=TelegramAPIServer.from_base(api_url))
    session.middleware(RetryMiddleware())
    return session


def _response_types() -> list[Any]:
    """`Response[T]` for every result type of the Bot API.

    aiogram writes `Response[method.__returning__]` for every call it makes, and pydantic
    keeps parametrized generic models only in a weak-valued cache: with nothing else holding
    them, each call rebuilt the model's schema (profiled: two thirds of a millisecond of CPU
    for every Bot API call). Holding one reference to each makes that a dictionary lookup.
    """
    returning: dict[str, Any] = {}
    for name in methods.__all__:
        method = getattr(methods, name)
        if not (inspect.isclass(method) and issubclass(method, TelegramMethod)):
            continue
        result = method.__dict__.get("__returning__")  # the base class declares none
        if result is not None and not isinstance(result, property):
            returning[repr(result)] = result
    return [Response[result] for result in returning.values()]  # type: ignore[valid-type]


_KEPT = _response_types()
