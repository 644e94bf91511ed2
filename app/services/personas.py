"""Personas as the rest of the app sees them: the default one, and the one a user talks to."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import MemoryEntry, MemoryKind, Persona
from app.db.personas import PersonaRepository
from app.memory.context import compose_system_message, pair_tokens
from app.memory.tokens import TokenCounter

log = logging.getLogger(__name__)

DEFAULT_PERSONA_NAME = "Assistant"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, friendly assistant in a Telegram chat. Answer concisely and clearly, "
    "in the language the user writes in."
)


@dataclass(frozen=True, slots=True)
class PersonaRef:
    """A persona's identity, without its memory."""

    id: int
    name: str


async def ensure_default_persona(session: AsyncSession, counter: TokenCounter) -> PersonaRef:
    """A fresh install answers at once: make sure a default persona exists."""
    personas = PersonaRepository(session)
    persona = await personas.default()
    if persona is None:
        persona = await personas.add(
            Persona(
                name=DEFAULT_PERSONA_NAME,
                system_prompt=DEFAULT_SYSTEM_PROMPT,
                system_message_tokens=counter.message("system", DEFAULT_SYSTEM_PROMPT),
                is_default=True,
            )
        )
        log.info("Created the default persona %r", persona.name)
    return PersonaRef(persona.id, persona.name)


async def persona_for(session: AsyncSession, persona_id: int | None) -> PersonaRef:
    """The user's chosen persona, or the default one when none is chosen or it is gone."""
    personas = PersonaRepository(session)
    persona = await personas.get(persona_id) if persona_id is not None else None
    if persona is None:
        persona = await personas.default()
    if persona is None:
        raise LookupError("no default persona: the database was not initialised")
    return PersonaRef(persona.id, persona.name)


async def add_memory_entry(
    session: AsyncSession,
    counter: TokenCounter,
    persona_id: int,
    *,
    kind: MemoryKind,
    text: str,
    answer: str | None = None,
) -> MemoryEntry:
    """Append a fact or a question/answer pair, counting what it costs once, now."""
    personas = PersonaRepository(session)
    persona = await personas.get(persona_id)
    if persona is None:
        raise LookupError(f"persona {persona_id} does not exist")
    entries = list(await personas.entries(persona_id))
    if kind is MemoryKind.QA:
        if answer is None:
            raise ValueError("a question/answer pair needs an answer")
        tokens = pair_tokens(counter, text, answer)
    else:
        tokens = 0  # set below, as the fact's share of the system message
    entry = await personas.add_entry(
        MemoryEntry(
            persona_id=persona_id,
            kind=kind,
            text=text,
            answer=answer,
            position=max((e.position for e in entries), default=0) + 1,
            token_count=tokens,
        )
    )
    if kind is MemoryKind.FACT:
        facts = [e.text for e in entries if e.kind is MemoryKind.FACT]
        before = persona.system_message_tokens
        persona.system_message_tokens = counter.message(
            "system", compose_system_message(persona.system_prompt, [*facts, text])
        )
        entry.token_count = persona.system_message_tokens - before
        await session.flush()
    return entry
