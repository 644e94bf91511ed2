"""The bot's HTTP session to the Bot API: retries, and response types built once."""

from __future__ import annotations

import inspect
from typing import Any

from aiogram import methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods.base import Response, TelegramMethod

from app.delivery.retry import RetryMiddleware


def create_session(api_url: str) -> AiohttpSession:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url))
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
