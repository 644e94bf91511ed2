"""Repository of personas and their memory entries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import MemoryEntry, Persona
from app.domain.enums import MemoryKind


class PersonaRepository:
    """Personas by id or name, and the memory entries of one persona in order."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, persona_id: int) -> Persona | None:
        return await self.session.get(Persona, persona_id)

    async def default(self) -> Persona | None:
        return await self.session.scalar(
            select(Persona).where(Persona.is_default.is_(True)).order_by(Persona.id).limit(1)
        )

    async def by_name(self, name: str) -> Persona | None:
        """Case-insensitively, as names are unique (see PersonaService.free_name)."""
        return await self.session.scalar(
            select(Persona).where(func.lower(Persona.name) == name.lower()).limit(1)
        )

    async def overview(self) -> Sequence[tuple[Persona, int, int]]:
        """Every persona with its number of memory entries and what its pairs cost, default
        first, then by name."""
        pairs = case((MemoryEntry.kind == MemoryKind.QA, MemoryEntry.token_count), else_=0)
        result = await self.session.execute(
            select(Persona, func.count(MemoryEntry.id), func.coalesce(func.sum(pairs), 0))
            .outerjoin(MemoryEntry, MemoryEntry.persona_id == Persona.id)
            .group_by(Persona.id)
            .order_by(Persona.is_default.desc(), Persona.name)
        )
        return [(persona, int(entries), int(tokens)) for persona, entries, tokens in result]

    async def add(self, persona: Persona) -> Persona:
        self.session.add(persona)
        await self.session.flush()
        return persona

    async def add_entry(self, entry: MemoryEntry) -> MemoryEntry:
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def entries(self, persona_id: int) -> Sequence[MemoryEntry]:
        result = await self.session.scalars(
            select(MemoryEntry)
            .where(MemoryEntry.persona_id == persona_id)
            .order_by(MemoryEntry.position, MemoryEntry.id)
        )
        return result.all()
