"""Every handler asks only for names that something provides, typed as app/dependencies.py
types them: a misspelt parameter fails here, not as a missing argument at run time."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from typing import Any

from aiogram import Bot, Router
from aiogram.dispatcher.event.handler import HandlerObject
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import TelegramObject

import app.dependencies
from app.dependencies import HandlerData
from app.domain.media import AudioFile, DocumentFile, ImageFile
from app.filters import ActiveDialog, Document, Pictured, Spoken
from app.handlers import get_routers

# What aiogram itself hands to handlers (aiogram/dispatcher/dispatcher.py and
# aiogram/fsm/middleware.py), and the event each handler is registered for.
AIOGRAM = {
    "bot": Bot,
    "state": FSMContext,
    "event_update": TelegramObject,
    "raw_state": str | None,
}
EVENTS = {"message", "callback", "query", "event", "error"}


def handlers(router: Router) -> Iterator[tuple[str, HandlerObject]]:
    for name, observer in router.observers.items():
        for handler in observer.handlers:
            yield name, handler
    for sub in router.sub_routers:
        yield from handlers(sub)


def provided_by_filters(handler: HandlerObject) -> dict[str, Any]:
    """What the handler's own filters add: its callback data, its command, a dialog's data."""
    provided: dict[str, Any] = {}
    for flt in handler.filters or ():
        check = flt.callback
        if isinstance(check, CallbackQueryFilter):
            provided["callback_data"] = check.callback_data
        elif isinstance(check, Command):
            provided["command"] = CommandObject
        elif isinstance(check, ActiveDialog):
            provided[check.data_name] = check.model
        elif isinstance(check, Spoken):
            provided["audio"] = AudioFile
        elif isinstance(check, Pictured):
            provided["images"] = list[ImageFile]
        elif isinstance(check, Document):
            provided["document"] = DocumentFile
    return provided


def test_every_handler_parameter_is_provided_with_its_type() -> None:
    provided = typing.get_type_hints(HandlerData, vars(app.dependencies))
    problems: list[str] = []
    count = 0
    for router in get_routers():
        for _, handler in handlers(router):
            callback = handler.callback
            hints = typing.get_type_hints(callback)
            params = list(inspect.signature(callback).parameters.values())
            count += 1
            for param in params[1:]:  # the first is the event
                name = param.name
                if param.kind is param.VAR_KEYWORD:
                    continue
                expected: Any = {**AIOGRAM, **provided, **provided_by_filters(handler)}.get(name)
                if expected is None:
                    if param.default is not param.empty:
                        continue
                    problems.append(f"{callback.__qualname__}: nothing provides {name!r}")
                elif name in hints and hints[name] != expected:
                    problems.append(
                        f"{callback.__qualname__}: {name} is {hints[name]}, provided as {expected}"
                    )
    assert count > 20, "the walk found the handlers"
    assert not problems, "\n".join(problems)


def test_the_first_parameter_is_the_event() -> None:
    for router in get_routers():
        for _, handler in handlers(router):
            first = next(iter(inspect.signature(handler.callback).parameters))
            assert first in EVENTS, handler.callback.__qualname__
