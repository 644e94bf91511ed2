"""The memory service on a real database: SQLite and PostgreSQL run the same code."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import OpenAISettings
from app.db.models import User
from app.db.users import UserRepository
from app.domain.enums import MemoryKind
from app.memory.service import MemoryService
from app.memory.tokens import REPLY_PRIMING, load_counter
from app.services.personas import PersonaService, ensure_default_persona, persona_for

COUNTER = load_counter("test-model")


def memory_service(window: int = 4_000) -> MemoryService:
    settings = OpenAISettings(
        api_key="k",
        base_url="http://127.0.0.1:1/v1",
        context_window=window,
        max_answer_tokens=100,
        safety_margin_tokens=0,
        _env_file=None,
    )
    return MemoryService(COUNTER, settings)


async def test_turns_round_trip_and_assembly_reads_newest_first(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    memory = memory_service()
    async with pool() as session, session.begin():
        await UserRepository(session).add(User(id=7, first_name="Ann"))
        persona = await ensure_default_persona(session, COUNTER)
        personas = PersonaService(COUNTER, lambda: memory.budget_for("test-model"))
        await personas.add_entry(session, persona.id, MemoryKind.FACT, "Tea.")
        await personas.add_entry(session, persona.id, MemoryKind.QA, "Hi?", "Hello!")
        conversation = await memory.conversation(session, 7, persona.id)
        for i in range(100):
            await memory.remember(session, conversation, memory.user_turn(f"turn {i}"))
    async with pool() as session:
        persona_memory = await memory.persona_memory(
            session, await persona_for(session, persona.id)
        )
        assert "Tea." in persona_memory.system_message
        new = await memory.remember(session, conversation, memory.user_turn("now"))
        builder = memory.builder(persona_memory, new, "test-model")
        assembled = await memory.assemble(session, builder, conversation, before_id=new.id or 0)
        await session.rollback()
    contents = [t.content for t in assembled.turns]
    assert contents[-3:] == ["turn 98", "turn 99", "now"]
    assert assembled.history_turns == 100  # all fit in 4,000 tokens
    assert assembled.prompt_tokens == REPLY_PRIMING + sum(t.tokens for t in assembled.turns)


async def test_the_same_conversation_is_found_again_until_a_new_one_starts(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    memory = memory_service()
    async with pool() as session, session.begin():
        await UserRepository(session).add(User(id=8, first_name="Bob"))
        persona = await ensure_default_persona(session, COUNTER)
        first = await memory.conversation(session, 8, persona.id)
        assert (await memory.conversation(session, 8, persona.id)).id == first.id
        fresh = await memory.new_conversation(session, 8, persona.id)
        assert (await memory.conversation(session, 8, persona.id)).id == fresh.id != first.id
