"""Repository of personas and their memory entries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import MemoryEntry, Persona


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
