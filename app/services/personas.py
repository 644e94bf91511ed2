"""Personas: who may use and edit them, their memory entries with exact costs, import/export."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

from aiogram.utils.i18n import I18n
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import MemoryEntry, Persona
from app.db.personas import PersonaRepository
from app.db.users import UserRepository
from app.domain.enums import MemoryKind
from app.domain.personas import EntryView, PersonaSummary, PersonaView
from app.domain.refs import PersonaRef
from app.domain.users import UserContext
from app.i18n import N_
from app.memory.context import compose_system_message, pair_tokens
from app.memory.tokens import REPLY_PRIMING, TokenCounter
from app.memory.window import ContextBudget
from app.texts import number

log = logging.getLogger(__name__)

DEFAULT_PERSONA_NAME = "Assistant"
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, friendly assistant in a Telegram chat. Answer concisely and clearly, "
    "in the language the user writes in."
)
NAME_MAX = 40
PROMPT_MAX = 4_000
ENTRY_MAX = 2_000
EXPORT_FORMAT = "telegram-bot-assistant/persona"
IMPORT_MAX_BYTES = 256 * 1024
_NAME = re.compile(r"^[\w][\w .,'()\-]*$")


class PersonaError(Exception):
    """A change that cannot be made; `str()` of it is the reason, for the user.

    The reason is translated when it is shown, not when it is raised: into the language of
    the update being handled, and left in English outside one (the command line).
    """

    def __init__(self, reason: str, **values: str | int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values

    def __str__(self) -> str:
        i18n = I18n.get_current(no_error=True)
        if i18n is None:
            reason = self.reason
            values = {k: f"{v:,}" if isinstance(v, int) else v for k, v in self.values.items()}
        else:
            reason = i18n.gettext(self.reason)
            values = {k: number(v) if isinstance(v, int) else v for k, v in self.values.items()}
        # A reason without values may hold braces of its own (a name the user typed).
        return reason.format(**values) if values else reason


class NameInvalid(PersonaError):
    """The name is empty, too long or has odd characters."""


class NameTaken(PersonaError):
    """Another persona has this name."""


class TextInvalid(PersonaError):
    """Empty or too long text."""


class MemoryTooLarge(PersonaError):
    """The change would leave too little room for conversations."""

    def __init__(self, tokens: int, limit: int) -> None:
        self.tokens = tokens
        self.limit = limit
        super().__init__(
            N_("memory would take {tokens} tokens; at most {limit}"), tokens=tokens, limit=limit
        )


class NotFound(PersonaError):
    """The persona or entry is gone."""


class BadImport(PersonaError):
    """The file is not a persona export."""


class _EntryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["fact", "qa"]
    text: str = Field(min_length=1, max_length=ENTRY_MAX)
    answer: str | None = Field(default=None, max_length=ENTRY_MAX)


class PersonaFile(BaseModel):
    """The JSON a persona is exported as and imported from."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["telegram-bot-assistant/persona"]
    version: Literal[1]
    name: str = Field(min_length=1, max_length=NAME_MAX)
    system_prompt: str = Field(min_length=1, max_length=PROMPT_MAX)
    memory: list[_EntryFile] = Field(default_factory=list, max_length=1_000)


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise NameInvalid(N_("the name is empty"))
    if len(name) > NAME_MAX:
        raise NameInvalid(N_("the name is longer than {limit} characters"), limit=NAME_MAX)
    if not _NAME.match(name):
        raise NameInvalid(N_("use letters, digits, spaces and . , ' ( ) - _ only"))
    return name


def check_text(text: str, limit: int = ENTRY_MAX) -> str:
    text = text.strip()
    if not text:
        raise TextInvalid(N_("the text is empty"))
    if len(text) > limit:
        raise TextInvalid(
            N_("the text has {count} characters; at most {limit} fit"), count=len(text), limit=limit
        )
    return text


def entry_order(entry: MemoryEntry) -> tuple[int, int, int]:
    """Facts first (they are in the system message), then pairs; each by position."""
    return (0 if entry.kind is MemoryKind.FACT else 1, entry.position, entry.id)


class PersonaService:
    """Reads and changes personas; every change recounts what the memory costs, once."""

    def __init__(self, counter: TokenCounter, budget: Callable[[], ContextBudget]) -> None:
        self.counter = counter
        self._budget = budget

    # --- reading -----------------------------------------------------------------------------

    @property
    def budget(self) -> ContextBudget:
        return self._budget()

    async def view(self, session: AsyncSession, persona_id: int) -> PersonaView:
        persona = await self._persona(session, persona_id)
        entries = sorted(await PersonaRepository(session).entries(persona_id), key=entry_order)
        views = [EntryView(e.id, e.kind, e.text, e.answer, e.token_count) for e in entries]
        pairs = sum(e.token_count for e in entries if e.kind is MemoryKind.QA)
        memory = persona.system_message_tokens + pairs  # exact: system message + pairs
        return PersonaView(
            id=persona.id,
            name=persona.name,
            system_prompt=persona.system_prompt,
            owner_id=persona.owner_id,
            is_default=persona.is_default,
            shared=persona.shared,
            entries=views,
            memory_tokens=memory,
            memory_limit=self.budget.persona_limit,
            conversation_room=max(0, self.budget.prompt_limit - REPLY_PRIMING - memory),
        )

    async def list_all(self, session: AsyncSession) -> list[PersonaSummary]:
        """Every persona, the default one first, then by name (for the owner's tools)."""
        return [
            PersonaSummary(
                id=persona.id,
                name=persona.name,
                owner_id=persona.owner_id,
                is_default=persona.is_default,
                shared=persona.shared,
                entries=entries,
                memory_tokens=persona.system_message_tokens + pairs,
            )
            for persona, entries, pairs in await PersonaRepository(session).overview()
        ]

    async def find(self, session: AsyncSession, name: str) -> PersonaRef:
        """The persona with this name, in any case; raises NotFound."""
        persona = await PersonaRepository(session).by_name(" ".join(name.split()))
        if persona is None:
            raise NotFound(f"no persona is named “{name}”")
        return PersonaRef(persona.id, persona.name, persona.revision)

    @staticmethod
    def can_edit(user: UserContext, view: PersonaView | Persona) -> bool:
        """Owners edit their personas; admins edit all, the default one included."""
        return user.is_admin or (view.owner_id is not None and view.owner_id == user.id)

    async def usable(self, session: AsyncSession, user: UserContext) -> list[PersonaRef]:
        query = select(Persona.id, Persona.name).order_by(Persona.is_default.desc(), Persona.name)
        if not user.is_admin:
            query = query.where(
                or_(
                    Persona.shared.is_(True),
                    Persona.owner_id == user.id,
                    Persona.id == (user.persona_id or 0),
                )
            )
        return [PersonaRef(pid, name) for pid, name in await session.execute(query)]

    # --- personas ----------------------------------------------------------------------------

    async def create(
        self,
        session: AsyncSession,
        *,
        owner_id: int | None,
        name: str,
        prompt: str,
        memory: Sequence[tuple[MemoryKind, str, str | None]] = (),
    ) -> PersonaRef:
        """Create a persona with its first memory, all or nothing."""
        name = await self.free_name(session, name)
        prompt = check_text(prompt, PROMPT_MAX)
        self.new_memory_tokens(prompt, memory)
        facts = [text for kind, text, _answer in memory if kind is MemoryKind.FACT]
        system_tokens = self.counter.message("system", compose_system_message(prompt, facts))
        persona = await PersonaRepository(session).add(
            Persona(
                name=name,
                system_prompt=prompt,
                system_message_tokens=system_tokens,
                owner_id=owner_id,
            )
        )
        for position, (kind, text, answer) in enumerate(memory, start=1):
            await PersonaRepository(session).add_entry(
                MemoryEntry(
                    persona_id=persona.id,
                    kind=kind,
                    text=text,
                    answer=answer if kind is MemoryKind.QA else None,
                    position=position,
                    token_count=self._entry_tokens(kind, text, answer),
                )
            )
        return PersonaRef(persona.id, persona.name)

    def new_memory_tokens(
        self, prompt: str, memory: Sequence[tuple[MemoryKind, str, str | None]]
    ) -> int:
        """What a persona not yet saved would cost; raises MemoryTooLarge."""
        facts = [text for kind, text, _answer in memory if kind is MemoryKind.FACT]
        total = self.counter.message("system", compose_system_message(prompt, facts))
        total += sum(
            pair_tokens(self.counter, text, answer or "")
            for kind, text, answer in memory
            if kind is MemoryKind.QA
        )
        self._within_budget(total)
        return total

    async def free_name(
        self, session: AsyncSession, name: str, *, exclude_id: int | None = None
    ) -> str:
        """A valid name no other persona has (case-insensitively)."""
        name = check_name(name)
        query = select(Persona.id).where(func.lower(Persona.name) == name.lower())
        if exclude_id is not None:
            query = query.where(Persona.id != exclude_id)
        if await session.scalar(query.limit(1)) is not None:
            raise NameTaken(N_("a persona named “{name}” already exists"), name=name)
        return name

    async def rename(self, session: AsyncSession, persona_id: int, name: str) -> None:
        persona = await self._persona(session, persona_id)
        persona.name = await self.free_name(session, name, exclude_id=persona_id)
        persona.revision += 1
        await session.flush()

    async def set_prompt(self, session: AsyncSession, persona_id: int, prompt: str) -> None:
        persona = await self._persona(session, persona_id)
        prompt = check_text(prompt, PROMPT_MAX)
        entries = await PersonaRepository(session).entries(persona_id)
        system = self._system_tokens(prompt, entries)
        self._within_budget(system + _pairs_tokens(entries))
        persona.system_prompt, persona.system_message_tokens = prompt, system
        persona.revision += 1
        await session.flush()

    async def set_shared(self, session: AsyncSession, persona_id: int, shared: bool) -> None:
        (await self._persona(session, persona_id)).shared = shared
        await session.flush()

    async def switch(self, session: AsyncSession, user_id: int, persona_id: int) -> None:
        await UserRepository(session).set_persona(user_id, persona_id)

    # --- memory entries ----------------------------------------------------------------------

    async def entry_cost(
        self,
        session: AsyncSession,
        persona_id: int,
        kind: MemoryKind,
        text: str,
        answer: str | None,
    ) -> tuple[int, int]:
        """What a new entry would cost, and the memory's total with it; raises MemoryTooLarge."""
        persona = await self._persona(session, persona_id)
        entries = await PersonaRepository(session).entries(persona_id)
        if kind is MemoryKind.FACT:
            facts = [*(e.text for e in entries if e.kind is MemoryKind.FACT), text]
            system = self.counter.message(
                "system", compose_system_message(persona.system_prompt, facts)
            )
            total = system + _pairs_tokens(entries)
        else:
            total = persona.system_message_tokens + _pairs_tokens(entries)
            total += self._entry_tokens(kind, text, answer)
        self._within_budget(total)
        return self._entry_tokens(kind, text, answer), total

    async def add_entry(
        self,
        session: AsyncSession,
        persona_id: int,
        kind: MemoryKind,
        text: str,
        answer: str | None = None,
    ) -> EntryView:
        text = check_text(text)
        if kind is MemoryKind.QA:
            answer = check_text(answer or "")
        await self.entry_cost(session, persona_id, kind, text, answer)
        entries = await PersonaRepository(session).entries(persona_id)
        entry = await PersonaRepository(session).add_entry(
            MemoryEntry(
                persona_id=persona_id,
                kind=kind,
                text=text,
                answer=answer if kind is MemoryKind.QA else None,
                position=max((e.position for e in entries), default=0) + 1,
                token_count=self._entry_tokens(kind, text, answer),
            )
        )
        await self._recount(session, persona_id)
        return EntryView(entry.id, entry.kind, entry.text, entry.answer, entry.token_count)

    async def entry(self, session: AsyncSession, persona_id: int, entry_id: int) -> EntryView:
        entry = await self._entry(session, persona_id, entry_id)
        return EntryView(entry.id, entry.kind, entry.text, entry.answer, entry.token_count)

    async def update_entry(
        self,
        session: AsyncSession,
        persona_id: int,
        entry_id: int,
        *,
        text: str | None = None,
        answer: str | None = None,
    ) -> None:
        entry = await self._entry(session, persona_id, entry_id)
        old = (entry.text, entry.answer, entry.token_count)
        if text is not None:
            entry.text = check_text(text)
        if answer is not None and entry.kind is MemoryKind.QA:
            entry.answer = check_text(answer)
        entry.token_count = self._entry_tokens(entry.kind, entry.text, entry.answer)
        try:
            await self._recount(session, persona_id)
        except MemoryTooLarge:
            entry.text, entry.answer, entry.token_count = old
            await self._recount(session, persona_id, check=False)
            raise

    async def move_entry(
        self, session: AsyncSession, persona_id: int, entry_id: int, step: int
    ) -> None:
        """Swap with the neighbour of the same kind (facts and pairs are ordered apart)."""
        entry = await self._entry(session, persona_id, entry_id)
        same = [
            e
            for e in sorted(await PersonaRepository(session).entries(persona_id), key=entry_order)
            if e.kind is entry.kind
        ]
        index = next(i for i, e in enumerate(same) if e.id == entry_id)
        other = index + step
        if not 0 <= other < len(same):
            return
        same[index], same[other] = same[other], same[index]
        positions = sorted(e.position for e in same)
        if len(set(positions)) < len(positions):
            positions = list(range(1, len(same) + 1))
        for position, item in zip(positions, same, strict=True):
            item.position = position
        await self._recount(session, persona_id, check=False)

    async def delete_entry(self, session: AsyncSession, persona_id: int, entry_id: int) -> None:
        entry = await self._entry(session, persona_id, entry_id)
        await session.delete(entry)
        await session.flush()
        await self._recount(session, persona_id, check=False)

    # --- files -------------------------------------------------------------------------------

    async def export(self, session: AsyncSession, persona_id: int) -> bytes:
        view = await self.view(session, persona_id)
        document = PersonaFile(
            format=EXPORT_FORMAT,
            version=1,
            name=view.name,
            system_prompt=view.system_prompt,
            memory=[
                _EntryFile(kind=e.kind.value, text=e.text, answer=e.answer) for e in view.entries
            ],
        )
        return json.dumps(document.model_dump(), ensure_ascii=False, indent=2).encode()

    async def import_file(
        self, session: AsyncSession, owner_id: int | None, raw: bytes
    ) -> tuple[PersonaRef, int]:
        """Recreate a persona from an export; a taken name gets a number. Returns the entries.
        `owner_id=None`: the persona belongs to the admins (an import from the command line)."""
        document = parse_persona_file(raw)
        name = check_name(document.name)
        for suffix in range(2, 100):
            try:
                name = await self.free_name(session, name)
                break
            except NameTaken:
                name = check_name(f"{document.name[: NAME_MAX - 4]} {suffix}")
        memory = [
            (
                MemoryKind(e.kind),
                check_text(e.text),
                check_text(e.answer or "") if e.kind == "qa" else None,
            )
            for e in document.memory
        ]
        ref = await self.create(
            session, owner_id=owner_id, name=name, prompt=document.system_prompt, memory=memory
        )
        return ref, len(memory)

    # --- internals ---------------------------------------------------------------------------

    def _within_budget(self, total: int) -> None:
        if total > self.budget.persona_limit:
            raise MemoryTooLarge(total, self.budget.persona_limit)

    def _entry_tokens(self, kind: MemoryKind, text: str, answer: str | None) -> int:
        if kind is MemoryKind.QA:
            return pair_tokens(self.counter, text, answer or "")
        # A fact's share of the system message: its own line. The persona's total is the
        # exact count of the whole message, kept on the persona.
        return self.counter.text(f"- {text}\n")

    def _system_tokens(self, prompt: str, entries: Sequence[MemoryEntry]) -> int:
        facts = [e.text for e in sorted(entries, key=entry_order) if e.kind is MemoryKind.FACT]
        return self.counter.message("system", compose_system_message(prompt, facts))

    async def _recount(self, session: AsyncSession, persona_id: int, *, check: bool = True) -> None:
        await session.flush()
        persona = await self._persona(session, persona_id)
        entries = await PersonaRepository(session).entries(persona_id)
        system = self._system_tokens(persona.system_prompt, entries)
        if check:
            self._within_budget(system + _pairs_tokens(entries))
        persona.system_message_tokens = system
        persona.revision += 1
        await session.flush()

    async def _persona(self, session: AsyncSession, persona_id: int) -> Persona:
        persona = await PersonaRepository(session).get(persona_id)
        if persona is None:
            raise NotFound(N_("this persona no longer exists"))
        return persona

    async def _entry(self, session: AsyncSession, persona_id: int, entry_id: int) -> MemoryEntry:
        entry = await session.get(MemoryEntry, entry_id)
        if entry is None or entry.persona_id != persona_id:
            raise NotFound(N_("this entry no longer exists"))
        return entry


def _pairs_tokens(entries: Sequence[MemoryEntry]) -> int:
    return sum(e.token_count for e in entries if e.kind is MemoryKind.QA)


def parse_persona_file(raw: bytes) -> PersonaFile:
    if len(raw) > IMPORT_MAX_BYTES:
        raise BadImport(N_("the file is larger than {size} KB"), size=IMPORT_MAX_BYTES // 1024)
    try:
        data: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadImport(N_("the file is not JSON")) from exc
    try:
        document = PersonaFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise BadImport(
            N_("it is not a persona export ({where}: {detail})"), where=where, detail=first["msg"]
        ) from exc
    for entry in document.memory:
        if entry.kind == "qa" and not (entry.answer or "").strip():
            raise BadImport(N_("a question/answer pair has no answer"))
    return document


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
                shared=True,
            )
        )
        log.info("Created the default persona %r", persona.name)
    return PersonaRef(persona.id, persona.name, persona.revision)


async def persona_for(session: AsyncSession, persona_id: int | None) -> PersonaRef:
    """The user's chosen persona, or the default one when none is chosen or it is gone."""
    personas = PersonaRepository(session)
    persona = await personas.get(persona_id) if persona_id is not None else None
    if persona is None:
        persona = await personas.default()
    if persona is None:
        raise LookupError("no default persona: the database was not initialised")
    return PersonaRef(persona.id, persona.name, persona.revision)
