"""A user's conversations with a persona, as /chats lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ConversationItem:
    id: int
    title: str | None  # None until one is written (or when titles are off)
    first_words: str | None  # of its first message: what an untitled one is shown as
    active_at: datetime  # when last started or chosen
    turns: int
    current: bool


@dataclass(frozen=True, slots=True)
class ConversationPage:
    items: list[ConversationItem]
    page: int  # from 0
    pages: int
    total: int
