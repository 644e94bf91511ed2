"""Recall and the summary's storage on a real database: SQLite FTS5 and PostgreSQL alike."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, OpenAISettings
from app.db.documents import DocumentRepository
from app.db.messages import MessageRepository
from app.db.models import Persona, User
from app.db.recall import RecallRepository
from app.db.users import UserRepository
from app.memory.service import CurrentConversation, MemoryService
from app.memory.tokens import load_counter
from app.services.personas import ensure_default_persona, persona_for

COUNTER = load_counter("test-model")
FILLER = "We talked about the weather and the plans for the weekend again. " * 3


def memory_service(window: int = 2_000) -> MemoryService:
    settings = OpenAISettings(
        api_key="k",
        base_url="http://127.0.0.1:1/v1",
        context_window=window,
        max_answer_tokens=100,
        safety_margin_tokens=0,
        _env_file=None,
    )
    return MemoryService(
        COUNTER, settings, MemorySettings(summary_share=0.15, recall_share=0.2, _env_file=None)
    )


async def setup(
    session: AsyncSession, memory: MemoryService, user_ids: tuple[int, ...] = (7, 8)
) -> tuple[int, int]:
    """Two users and two personas; returns (default persona id, other persona id)."""
    for user_id in user_ids:
        await UserRepository(session).add(User(id=user_id, first_name=f"u{user_id}"))
    persona = await ensure_default_persona(session, COUNTER)
    other = Persona(name="Other", system_prompt="You are another.", system_message_tokens=10)
    session.add(other)
    await session.flush()
    return persona.id, other.id


async def talk(
    session: AsyncSession,
    memory: MemoryService,
    conversation: CurrentConversation,
    texts: list[str],
) -> list[int]:
    ids = []
    for i, text in enumerate(texts):
        role = "user" if i % 2 == 0 else "assistant"
        turn = memory.user_turn(text) if role == "user" else None
        if turn is None:
            stored = await memory.remember(session, conversation, memory.answer_turn(text))
        else:
            stored = await memory.remember(session, conversation, turn)
        assert stored.id is not None
        ids.append(stored.id)
    return ids


async def test_search_finds_the_best_match_of_the_conversation_only(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    memory = memory_service()
    async with pool() as session, session.begin():
        persona_id, other_id = await setup(session, memory)
        mine = await memory.conversation(session, 7, persona_id)
        theirs = await memory.conversation(session, 8, persona_id)
        other_persona = await memory.conversation(session, 7, other_id)
        ids = await talk(
            session,
            memory,
            mine,
            ["My dentist is called Dr Oakridge.", "Noted.", FILLER, "Sure.", "Dentist again?"],
        )
        await talk(session, memory, theirs, ["My dentist is Dr Pinewood.", "Noted."])
        await talk(session, memory, other_persona, ["The dentist is Dr Elmsworth.", "Ok."])
    async with pool() as session:
        rows = await RecallRepository(session).search(
            mine.id, ["dentist", "called"], before_id=ids[-1], limit=5
        )
    contents = [row[2] for row in rows]
    assert contents[0] == "My dentist is called Dr Oakridge."
    assert all("Pinewood" not in c and "Elmsworth" not in c for c in contents)
    assert "Dentist again?" not in contents  # not older than before_id


async def test_search_follows_edits_and_deletes(pool: async_sessionmaker[AsyncSession]) -> None:
    memory = memory_service()
    async with pool() as session, session.begin():
        persona_id, _ = await setup(session, memory)
        conversation = await memory.conversation(session, 7, persona_id)
        ids = await talk(session, memory, conversation, ["I keep bees.", "Nice.", "More."])
        await memory.replace_user_turn(session, conversation, ids[0], "I keep goats.")
    async with pool() as session:
        recall = RecallRepository(session)
        assert await recall.search(conversation.id, ["bees"], before_id=10**9, limit=5) == []
        [row] = await recall.search(conversation.id, ["goats"], before_id=10**9, limit=5)
        assert row[2] == "I keep goats."
    async with pool() as session, session.begin():
        assert await memory.forget(session, 7, conversation.id)
    async with pool() as session:
        recall = RecallRepository(session)
        assert await recall.search(conversation.id, ["goats"], before_id=10**9, limit=5) == []


async def test_assembly_recalls_an_old_fact_that_recent_turns_left_out(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    memory = memory_service()
    async with pool() as session, session.begin():
        persona_id, _ = await setup(session, memory)
        conversation = await memory.conversation(session, 7, persona_id)
        fact = "My sister's cat is named Marzipan."
        await talk(session, memory, conversation, [fact, "Lovely name."] + [FILLER] * 80)
    async with pool() as session:
        persona = await memory.persona_memory(session, await persona_for(session, persona_id))
        question = "What is the name of my sister's cat?"
        builder = memory.builder(persona, memory.user_turn(question), "test-model")
        assembled = await memory.assemble(session, builder, conversation, query=question)
    contents = [t.content for t in assembled.turns]
    assert fact in contents
    assert assembled.truncated
    breakdown = assembled.breakdown
    assert breakdown is not None and breakdown.recalled_turns >= 1
    assert assembled.prompt_tokens <= breakdown.prompt_limit
    ids = [t.id for t in assembled.turns if t.id is not None]
    assert ids == sorted(set(ids))


async def test_a_summary_is_saved_only_over_the_one_it_was_made_from(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    memory = memory_service()
    async with pool() as session, session.begin():
        persona_id, _ = await setup(session, memory)
        conversation = await memory.conversation(session, 7, persona_id)
        messages = MessageRepository(session)
        assert await messages.save_summary(
            conversation.id, expected_until_id=None, summary="S1", tokens=5, until_id=3
        )
        # A second writer that read the summary before the first one saved.
        assert not await messages.save_summary(
            conversation.id, expected_until_id=None, summary="S2", tokens=5, until_id=4
        )
        assert tuple(await messages.summary_of(conversation.id) or ()) == ("S1", 5, 3)
        reread = await memory.conversation(session, 7, persona_id)
        assert (reread.summary, reread.summary_tokens, reread.summary_until_id) == ("S1", 5, 3)


async def test_document_parts_are_found_in_their_conversation_and_go_with_their_turn(
    pool: async_sessionmaker[AsyncSession],
) -> None:
    memory = memory_service()
    async with pool() as session, session.begin():
        persona_id, _ = await setup(session, memory)
        mine = await memory.conversation(session, 7, persona_id)
        theirs = await memory.conversation(session, 8, persona_id)
        [turn_id] = await talk(session, memory, mine, ['[Document "guide.md"]'])
        [their_turn] = await talk(session, memory, theirs, ['[Document "other.md"]'])
        parts = [(f"Part {n}: " + FILLER, 50) for n in range(1, 30)]
        parts[12] = ("Part 13: the boiler is serviced every October.", 12)
        await memory.remember_parts(session, mine, turn_id, "guide.md", parts)
        await memory.remember_parts(
            session, theirs, their_turn, "other.md", [("Their boiler is new.", 6)]
        )
    async with pool() as session:
        documents = DocumentRepository(session)
        [best, *_] = await documents.search(mine.id, ["boiler", "serviced"], limit=5)
        assert (best[1], best[2], best[3]) == ("guide.md", 13, 29)
        assert all(
            row[1] == "guide.md" for row in await documents.search(mine.id, ["boiler"], limit=9)
        )
        beginning = await documents.beginning(mine.id, limit=3)
        assert [row[2] for row in beginning] == [1, 2, 3]
        current = await memory.current_conversation(session, 7, persona_id)
        assert current is not None and current.documents == 1
    async with pool() as session, session.begin():
        await MessageRepository(session).delete_after(mine.id, 0)  # the turn goes, its parts too
    async with pool() as session:
        assert await DocumentRepository(session).search(mine.id, ["boiler"], limit=5) == []
