"""/new_persona, /persona, /export_persona and /import_persona through the real dispatcher."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import RedisSettings, Settings
from app.db.models import MemoryEntry, Persona, User
from app.fsm.personas import EditPersonaDialog, ImportPersonaDialog, NewPersonaDialog
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, StartBot, UserChat, skip_or_fail


@pytest.fixture
async def user(start_bot: StartBot, telegram: FakeTelegram) -> AsyncIterator[UserChat]:
    yield UserChat(await start_bot(), telegram, ALLOWED)


async def state_of(chat: UserChat) -> str | None:
    assert chat.bot.dp is not None and chat.bot.bot is not None
    key = StorageKey(bot_id=chat.bot.bot.id, chat_id=chat.user_id, user_id=chat.user_id)
    return await chat.bot.dp.storage.get_state(key)


async def personas(db: async_sessionmaker[AsyncSession]) -> dict[str, Persona]:
    async with db() as session:
        return {p.name: p for p in await session.scalars(select(Persona))}


async def create_captain(chat: UserChat, *, switch: bool = True) -> None:
    await chat.send("/new_persona")
    await chat.send("Captain")
    await chat.send("You are Captain Jack, a cheerful pirate.")
    await chat.press("➕ Fact")
    await chat.send("You sail the Black Pearl.")
    await chat.press("➕ Question/answer")
    await chat.send("What is your name?")
    await chat.send("Captain Jack, savvy?")
    await chat.press("Done")
    await chat.press("Talk to it now" if switch else "Later")


async def test_a_persona_is_created_switched_to_and_its_pair_reaches_the_model(
    user: UserChat, llm: FakeOpenAI, db: async_sessionmaker[AsyncSession]
) -> None:
    await create_captain(user)
    assert "Now you are talking to <b>Captain</b>" in (user.last.text or "")
    assert await state_of(user) is None
    captain = (await personas(db))["Captain"]
    assert captain.owner_id == ALLOWED and not captain.shared
    async with db() as session:
        chosen = await session.get(User, ALLOWED)
    assert chosen is not None and chosen.persona_id == captain.id

    await user.send("Ahoy!")
    request = llm.requests[-1]["messages"]
    assert request[0]["role"] == "system"
    assert "Captain Jack" in request[0]["content"] and "Black Pearl" in request[0]["content"]
    assert request[1:3] == [
        {"role": "user", "content": "What is your name?"},
        {"role": "assistant", "content": "Captain Jack, savvy?"},
    ]
    assert request[-1] == {"role": "user", "content": "Ahoy!"}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("assistant", "already exists"),
        ("   ", "empty"),
        ("x" * 41, "longer than 40"),
        ("<b>", "letters"),
    ],
)
async def test_a_bad_name_is_refused_and_asked_again(
    user: UserChat, db: async_sessionmaker[AsyncSession], name: str, problem: str
) -> None:
    await user.send("/new_persona")
    reply = await user.send(name)
    assert problem in (reply.text or "")
    assert await state_of(user) == NewPersonaDialog.typing_name.state
    assert set(await personas(db)) == {"Assistant"}


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4, 5])
async def test_cancel_at_any_step_of_new_persona_saves_nothing(
    user: UserChat, db: async_sessionmaker[AsyncSession], steps: int
) -> None:
    script = ["/new_persona", "Ghost", "A ghost.", "press:➕ Question/answer", "Boo?", "Boo!"]
    for step in script[: steps + 1]:
        if step.startswith("press:"):
            await user.press(step.removeprefix("press:"))
        else:
            await user.send(step)
    assert (await state_of(user) or "").startswith("NewPersonaDialog")
    assert "Cancelled" in ((await user.send("/cancel")).text or "")
    assert set(await personas(db)) == {"Assistant"}
    assert await state_of(user) is None


async def test_the_persona_list_switches_and_each_persona_has_its_own_history(
    user: UserChat, llm: FakeOpenAI
) -> None:
    await create_captain(user, switch=False)
    await user.send("Hello assistant")
    listing = await user.send("/persona")
    assert "You are talking to <b>Assistant</b>" in (listing.text or "")
    await user.press("Captain", listing)
    assert "Now you are talking to <b>Captain</b>" in (user.last.text or "")
    await user.send("Hello captain")
    contents = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "Hello assistant" not in contents
    await user.press("Assistant", user.with_button("Assistant"))
    await user.send("Back again")
    contents = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "Hello assistant" in contents and "Hello captain" not in contents


async def test_another_users_private_persona_cannot_be_chosen(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    owner = UserChat(bot, telegram, ADMIN)
    other = UserChat(bot, telegram, ALLOWED)
    await create_captain(owner, switch=False)
    captain = (await personas(db))["Captain"]
    listing = await other.send("/persona")
    assert "Captain" not in str(listing.reply_markup)
    answer = await other.press_data(f"ps:{captain.id}", listing.message_id)
    assert answer is not None and "not available" in answer
    async with db() as session:
        row = await session.get(User, ALLOWED)
    assert row is not None and row.persona_id is None


async def test_export_then_import_recreates_the_persona(
    user: UserChat, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    await create_captain(user)
    exported = await user.send("/export_persona")
    assert exported.document is not None and exported.document_bytes is not None
    document = json.loads(exported.document_bytes)
    assert document["name"] == "Captain"
    assert [e["kind"] for e in document["memory"]] == ["fact", "qa"]

    await user.send("/import_persona")
    assert await state_of(user) == ImportPersonaDialog.sending_file.state
    reply = await user.send_document(exported.document_bytes, "persona-Captain.json")
    assert "Imported persona <b>Captain 2</b> with 2 memory entries" in (reply.text or "")
    assert await state_of(user) is None
    copy = (await personas(db))["Captain 2"]
    async with db() as session:
        memory = (
            await session.scalars(select(MemoryEntry).where(MemoryEntry.persona_id == copy.id))
        ).all()
    assert [(e.text, e.answer) for e in memory] == [
        ("You sail the Black Pearl.", None),
        ("What is your name?", "Captain Jack, savvy?"),
    ]
    assert copy.system_prompt == "You are Captain Jack, a cheerful pirate."


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not json at all", "not JSON"),
        (b'{"name": "x"}', "not a persona export"),
        (
            json.dumps(
                {
                    "format": "telegram-bot-assistant/persona",
                    "version": 1,
                    "name": "X",
                    "system_prompt": "p",
                    "memory": [{"kind": "qa", "text": "q"}],
                }
            ).encode(),
            "no answer",
        ),
        (b"[" + b" " * 300_000 + b"]", "larger than 256 KB"),
    ],
    ids=["not-json", "wrong-shape", "pair-without-answer", "too-large"],
)
async def test_a_bad_import_file_is_explained_and_the_dialog_waits_for_another(
    user: UserChat, db: async_sessionmaker[AsyncSession], content: bytes, problem: str
) -> None:
    await user.send("/import_persona")
    reply = await user.send_document(content, "persona.json")
    assert problem in (reply.text or "")
    assert await state_of(user) == ImportPersonaDialog.sending_file.state
    assert set(await personas(db)) == {"Assistant"}


async def test_text_instead_of_the_import_file_is_explained(user: UserChat) -> None:
    await user.send("/import_persona")
    reply = await user.send("here it is")
    assert "send the .json file" in (reply.text or "")


async def test_a_user_cannot_export_a_persona_they_cannot_edit(user: UserChat) -> None:
    reply = await user.send("/export_persona")
    assert "can't edit" in (reply.text or "")
    assert reply.document is None


async def test_dialog_states_live_in_redis_when_redis_url_is_set(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
) -> None:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        skip_or_fail("Redis tests need TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
    from redis.asyncio import Redis

    client = Redis.from_url(str(url))
    try:
        await client.ping()
    except OSError as exc:
        skip_or_fail(f"Redis at TEST_REDIS_URL is unreachable: {exc}")
    await client.flushdb()
    settings = make_settings()
    settings = Settings(
        **{
            **{f: getattr(settings, f) for f in settings.__dataclass_fields__},
            "redis": RedisSettings(url=str(url), _env_file=None),
        }
    )
    first = await start_bot(settings)
    chat = UserChat(first, telegram, ADMIN)
    await chat.send("/edit_bot")
    await chat.press("➕ Fact")
    states = [await client.get(key) for key in await client.keys("fsm:*:state")]
    assert states == [b"EditPersonaDialog:typing_fact"]
    await first.stop()
    chat.bot = await start_bot(settings)
    assert await state_of(chat) == EditPersonaDialog.typing_fact.state
    assert "It costs" in ((await chat.send("Kept in Redis.")).text or "")
    await client.flushdb()
    await client.aclose()


async def test_a_reply_sent_right_after_a_dialog_command_is_taken_as_its_first_step(
    user: UserChat, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    # Both arrive before the first is handled: the second must see the state the first set,
    # so the dialog's state is read only once the user's turn has come.
    telegram.push_message(ALLOWED, "/new_persona")
    telegram.push_message(ALLOWED, "Captain")
    await user.bot.idle()
    assert await state_of(user) == NewPersonaDialog.typing_prompt.state
    assert "Captain" in (user.last.text or "")
    assert llm.requests == []
