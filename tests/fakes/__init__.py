"""Fake Telegram Bot API and OpenAI servers for end-to-end tests and benchmarks.

The names are imported lazily so that ``python -m tests.fakes.telegram`` does not
import the module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.openai import FakeOpenAI, RequestRecord, count_prompt_tokens
    from tests.fakes.telegram import Call, Draft, FakeTelegram, SentMessage

__all__ = [
    "Call",
    "Draft",
    "FakeOpenAI",
    "FakeTelegram",
    "RequestRecord",
    "SentMessage",
    "count_prompt_tokens",
]

_LOCATIONS = {
    "FakeOpenAI": "tests.fakes.openai",
    "RequestRecord": "tests.fakes.openai",
    "count_prompt_tokens": "tests.fakes.openai",
    "Call": "tests.fakes.telegram",
    "Draft": "tests.fakes.telegram",
    "FakeTelegram": "tests.fakes.telegram",
    "SentMessage": "tests.fakes.telegram",
}


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
