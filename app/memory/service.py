"""Persona memory and conversation history, read and written for one request at a time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import OpenAISettings
from app.db.messages import MessageRepository
from app.db.models import MemoryKind, Message, MessageRole
from app.db.personas import PersonaRepository
from app.memory.budget import Budget
from app.memory.context import (
    Assembled,
    ContextBuilder,
    PersonaMemory,
    QAPair,
    Turn,
    compose_system_message,
)
from app.memory.tokens import TokenCounter
from app.services.refs import PersonaRef

# History is read newest-first in pages: the first is usually enough; later ones grow so a
# large window is filled in a few queries.
FIRST_PAGE = 32
MAX_PAGE = 512
# Personas whose memory is kept in this process (a few hundred entries each at most).
PERSONA_CACHE = 256


@dataclass(frozen=True, slots=True)
class Conversation:
    """Whose conversation with which persona."""

    id: int
    user_id: int
    persona_id: int


class MemoryService:
    """Stores turns with their token counts and assembles requests within the budget."""

    def __init__(self, counter: TokenCounter, openai: OpenAISettings) -> None:
        self.counter = counter
        self._openai = openai
        self._budgets: dict[str, Budget] = {}
        self._personas: dict[int, tuple[int, PersonaMemory]] = {}

    def budget_for(self, model: str) -> Budget:
        budget = self._budgets.get(model)
        if budget is None:
            budget = self._budgets[model] = Budget.for_model(
                model,
                window=self._openai.context_window,
                answer_reserve=self._openai.max_answer_tokens,
                margin=self._openai.safety_margin_tokens,
            )
        return budget

    async def persona_memory(self, session: AsyncSession, persona: PersonaRef) -> PersonaMemory:
        """The persona's memory; kept between messages while its revision stays the same."""
        cached = self._personas.get(persona.id)
        if cached is not None and cached[0] == persona.revision:
            return cached[1]
        memory = await self._load_persona(session, persona.id)
        if len(self._personas) >= PERSONA_CACHE:
            self._personas.clear()
        self._personas[persona.id] = (persona.revision, memory)
        return memory

    async def _load_persona(self, session: AsyncSession, persona_id: int) -> PersonaMemory:
        personas = PersonaRepository(session)
        persona = await personas.get(persona_id)
        if persona is None:
            raise LookupError(f"persona {persona_id} does not exist")
        facts: list[str] = []
        pairs: list[QAPair] = []
        for entry in await personas.entries(persona_id):
            if entry.kind is MemoryKind.FACT:
                facts.append(entry.text)
            else:
                pairs.append(QAPair(entry.text, entry.answer or "", entry.token_count))
        return PersonaMemory(
            name=persona.name,
            system_message=compose_system_message(persona.system_prompt, facts),
            system_tokens=persona.system_message_tokens,
            pairs=pairs,
        )

    async def conversation(
        self, session: AsyncSession, user_id: int, persona_id: int
    ) -> Conversation:
        """The user's current conversation with the persona, started on first use."""
        messages = MessageRepository(session)
        conversation_id = await messages.current_conversation(user_id, persona_id)
        if conversation_id is None:
            conversation_id = await messages.start_conversation(user_id, persona_id)
        return Conversation(conversation_id, user_id, persona_id)

    async def new_conversation(
        self, session: AsyncSession, user_id: int, persona_id: int
    ) -> Conversation:
        """Start afresh: older turns stay stored but are no longer sent."""
        conversation_id = await MessageRepository(session).start_conversation(user_id, persona_id)
        return Conversation(conversation_id, user_id, persona_id)

    async def last_user_turn(
        self, session: AsyncSession, conversation: Conversation
    ) -> Turn | None:
        row = await MessageRepository(session).last_user_turn(conversation.id)
        return None if row is None else Turn("user", row.content, row.token_count, row.id)

    async def replace_user_turn(
        self, session: AsyncSession, conversation: Conversation, turn_id: int, text: str
    ) -> Turn:
        """The user's newest message, edited: new text and count, and the answer to the old
        text removed (a new answer follows)."""
        messages = MessageRepository(session)
        row = await session.get(Message, turn_id)
        if row is None or row.conversation_id != conversation.id:
            raise LookupError(f"message {turn_id} is not in conversation {conversation.id}")
        turn = self.user_turn(text)
        row.content, row.token_count = turn.content, turn.tokens
        await messages.delete_after(conversation.id, turn_id)
        await session.flush()
        return Turn("user", turn.content, turn.tokens, turn_id)

    async def forget_answer(
        self, session: AsyncSession, conversation: Conversation, turn_id: int
    ) -> None:
        """Remove the answer(s) after the user's turn, to be answered anew."""
        await MessageRepository(session).delete_after(conversation.id, turn_id)

    async def find_user_message(
        self, session: AsyncSession, user_id: int, telegram_message_id: int
    ) -> tuple[int, int] | None:
        """(conversation id, turn id) of the user's message sent as that Telegram message."""
        row = await MessageRepository(session).by_telegram_id(user_id, telegram_message_id)
        return None if row is None else (row.conversation_id, row.id)

    def user_turn(self, text: str) -> Turn:
        return Turn("user", text, self.counter.message("user", text))

    async def remember(
        self,
        session: AsyncSession,
        conversation: Conversation,
        turn: Turn,
        telegram_message_id: int | None = None,
    ) -> Turn:
        """Store a turn with the count it was given; returns it with its id."""
        message_id = await MessageRepository(session).add(
            conversation_id=conversation.id,
            user_id=conversation.user_id,
            persona_id=conversation.persona_id,
            role=MessageRole(turn.role),
            content=turn.content,
            token_count=turn.tokens,
            telegram_message_id=telegram_message_id,
        )
        return Turn(turn.role, turn.content, turn.tokens, message_id)

    async def remember_answer(
        self, session: AsyncSession, conversation: Conversation, text: str
    ) -> Turn:
        return await self.remember(
            session, conversation, Turn("assistant", text, self.counter.message("assistant", text))
        )

    def builder(self, persona: PersonaMemory, new_turn: Turn, model: str) -> ContextBuilder:
        """Raises PersonaTooLarge or MessageTooLong before anything is stored or sent."""
        return ContextBuilder(persona, new_turn, self.budget_for(model))

    async def assemble(
        self,
        session: AsyncSession,
        builder: ContextBuilder,
        conversation: Conversation,
        *,
        before_id: int | None = None,
    ) -> Assembled:
        """Fill the builder with the turns (older than `before_id`, if given), newest-first,
        reading only as far as they fit."""
        messages = MessageRepository(session)
        page = FIRST_PAGE
        while not builder.full:
            rows = await messages.newest(conversation.id, before_id=before_id, limit=page)
            builder.offer_all(
                Turn(role.value, content, tokens, row_id) for row_id, role, content, tokens in rows
            )
            if len(rows) < page:
                break
            before_id = rows[-1][0]
            page = min(page * 4, MAX_PAGE)
        return builder.build()
