"""Personas as their screens show them: the memory in the order the model sees it, and what
it costs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.domain.enums import MemoryKind


@dataclass(frozen=True, slots=True)
class EntryView:
    """A memory entry as the editor shows it."""

    id: int
    kind: MemoryKind
    text: str
    answer: str | None
    tokens: int


@dataclass(frozen=True, slots=True)
class PersonaView:
    """A persona with its memory in the order the model sees it, and its cost."""

    id: int
    name: str
    system_prompt: str
    owner_id: int | None
    is_default: bool
    shared: bool
    entries: Sequence[EntryView]
    memory_tokens: int  # exact: system message + pairs
    memory_limit: int  # most the memory may take
    conversation_room: int  # what the request's budget leaves for the conversation


@dataclass(frozen=True, slots=True)
class PersonaSummary:
    """A persona in a list: who owns it, who may use it, and what its memory costs."""

    id: int
    name: str
    owner_id: int | None  # None: the admins'
    is_default: bool
    shared: bool
    entries: int
    memory_tokens: int  # exact: system message + pairs
