"""End to end: the real polling loop against the fake Telegram and OpenAI servers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, Settings
from app.db.models import Message, PendingAnswer
from app.domain.enums import MemoryKind, MessageRole
from app.memory.tokens import load_counter
from app.memory.window import ContextBudget
from app.services.personas import PersonaService, ensure_default_persona
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.openai import count_prompt_tokens
from tests.harness import ADMIN, ALLOWED, STRANGER, RunningBot, StartBot

COUNTER = load_counter("test-model")
PERSONAS = PersonaService(COUNTER, lambda: ContextBudget(16_000, 500, 0))


async def stored(db: async_sessionmaker[AsyncSession], user_id: int) -> list[tuple[str, str, int]]:
    async with db() as session:
        rows = await session.execute(
            select(Message.role, Message.content, Message.token_count)
            .where(Message.user_id == user_id)
            .order_by(Message.id)
        )
        return [(role.value, content, tokens) for role, content, tokens in rows]


async def in_progress(db: async_sessionmaker[AsyncSession]) -> int:
    """Answers recorded as being written (app/services/recovery.py): none once one ended."""
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(PendingAnswer)) or 0)


async def say(bot: RunningBot, user_id: int, text: str | None, **kw: Any) -> str:
    """Send a message and return the text of the bot's next message to that user, once the
    update is fully handled (so a streamed answer has its final text)."""
    before = len(bot.telegram.sent_messages(user_id))
    bot.telegram.push_message(user_id, text, **kw)
    await bot.idle()
    messages = bot.telegram.sent_messages(user_id)
    assert len(messages) > before, f"the bot did not answer {text!r}"
    return messages[before].text or ""


async def test_start_tells_an_allowed_user_their_id_access_and_persona(start_bot: StartBot) -> None:
    bot = await start_bot()
    answer = await say(bot, ALLOWED, "/start")
    assert str(ALLOWED) in answer
    assert "You have access" in answer
    assert "Assistant" in answer


async def test_a_stranger_learns_their_id_and_nothing_reaches_the_model(
    start_bot: StartBot,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    greeting = await say(bot, STRANGER, "/start")
    assert str(STRANGER) in greeting
    assert "don't have access" in greeting
    refusal = await say(bot, STRANGER, "hello, model?")
    assert str(STRANGER) in refusal and "/start" in refusal
    assert llm.requests == []
    assert await stored(db, STRANGER) == []


async def test_an_answer_streams_as_drafts_then_arrives_and_is_stored(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = "one two three four five six seven eight nine ten eleven twelve"
    llm.first_token_latency = 0.2
    llm.token_interval = 0.03
    bot = await start_bot()
    answer = await say(bot, ALLOWED, "count to twelve")
    assert answer == llm.reply

    calls = [c for c in telegram.calls if c.params.get("chat_id") in (ALLOWED, str(ALLOWED))]
    methods = [c.method for c in calls]
    assert methods[0] == "sendChatAction"
    assert calls[0].params["action"] == "typing"
    drafts = [c.params["text"] for c in calls if c.method == "sendMessageDraft"]
    assert len(drafts) >= 2, methods
    assert all(llm.reply.startswith(d) for d in drafts)  # a growing prefix of the answer
    assert methods[-1] == "sendMessage"
    assert methods.index("sendMessage") > methods.index("sendMessageDraft")

    assert await stored(db, ALLOWED) == [
        ("user", "count to twelve", COUNTER.message("user", "count to twelve")),
        ("assistant", llm.reply, COUNTER.message("assistant", llm.reply)),
    ]
    assert await in_progress(db) == 0


async def test_where_drafts_are_refused_one_message_is_edited_instead(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    telegram.refuse_drafts = True
    llm.reply = " ".join(f"w{i}" for i in range(40))
    llm.token_interval = 0.02
    bot = await start_bot()
    await say(bot, ALLOWED, "talk")
    await telegram.wait_for(lambda: telegram.sent_messages(ALLOWED)[-1].text == llm.reply)
    messages = telegram.sent_messages(ALLOWED)
    assert len(messages) == 1
    assert len(telegram.calls_of("editMessageText")) >= 1


async def test_persona_memory_is_in_the_request_and_counted_exactly(
    start_bot: StartBot,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot()
    async with bot.pool() as session, session.begin():
        persona = await ensure_default_persona(session, COUNTER)
        await PERSONAS.add_entry(session, persona.id, MemoryKind.FACT, "Your name is Ann.")
        await PERSONAS.add_entry(
            session, persona.id, MemoryKind.QA, "What do you drink?", "Only green tea."
        )
    await say(bot, ALLOWED, "first")
    await say(bot, ALLOWED, "Who are you?")
    request = llm.requests[-1]["messages"]
    assert request[0]["role"] == "system"
    assert "Your name is Ann." in request[0]["content"]
    assert request[1:3] == [
        {"role": "user", "content": "What do you drink?"},
        {"role": "assistant", "content": "Only green tea."},
    ]
    assert [m["content"] for m in request[3:]] == ["first", "Echo: first", "Who are you?"]
    # What the bot counted equals what the server counts from the request it received.
    async with bot.pool() as session:
        history = (await session.scalars(select(Message.token_count))).all()
    memory_cost = count_prompt_tokens(request[:3]) - 3
    assert llm.prompt_tokens[-1] == memory_cost + sum(history[:3]) + 3


async def test_history_is_cut_exactly_at_the_budget_and_the_window_is_never_exceeded(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    window, reserve = 800, 200
    llm.context_window = window
    llm.reply = lambda body: "Sure. " + "lorem ipsum " * 12
    bot = await start_bot(
        make_settings(
            context_window=window,
            max_answer_tokens=reserve,
            safety_margin_tokens=0,
            # Recent turns alone: the summary and recall have tests of their own.
            memory=MemorySettings(
                summary_share=0, recall_share=0, titles=False, profile=False, _env_file=None
            ),
        )
    )
    for i in range(14):
        await say(bot, ALLOWED, f"message {i}: " + "dolor sit amet " * (i % 4 + 1))
    assert llm.context_errors == 0
    prompt = llm.prompt_tokens[-1]
    limit = window - reserve
    assert prompt <= limit
    # The request holds the newest turns; the turn before them would not have fitted.
    sent = llm.requests[-1]["messages"]
    history = await stored(db, ALLOWED)
    kept = len(sent) - 2  # minus system prompt and the new message
    assert 0 < kept < len(history) - 1
    assert [m["content"] for m in sent[1:-1]] == [c for _, c, _ in history[-1 - kept - 1 : -2]]
    next_older = history[-1 - kept - 2]
    assert prompt + next_older[2] > limit


@pytest.mark.parametrize(
    ("fault", "sentence"),
    [
        ({"status": 401, "message": "bad key", "code": "invalid_api_key"}, "credentials"),
        ({"status": 429, "message": "slow down", "code": "rate_limit_exceeded"}, "overloaded"),
        ({"status": 500, "message": "boom", "code": "server_error"}, "internal error"),
    ],
)
async def test_an_api_error_is_explained_and_keeps_only_the_users_message(
    start_bot: StartBot,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    sentence: str,
) -> None:
    bot = await start_bot()
    llm.fail_next(**fault)
    with caplog.at_level(logging.INFO):
        answer = await say(bot, ALLOWED, "a private thought")
    assert sentence in answer
    assert "saved" in answer
    assert await stored(db, ALLOWED) == [
        ("user", "a private thought", COUNTER.message("user", "a private thought"))
    ]
    assert await in_progress(db) == 0  # told why, so not an interrupted answer
    assert str(fault["status"]) in caplog.text  # the details are in the log...
    assert "a private thought" not in caplog.text  # ...the message text is not


async def test_a_model_timeout_is_explained(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(make_settings(timeout=0.5))
    llm.hang_next(3.0)
    answer = await say(bot, ALLOWED, "hello?")
    assert "did not answer in time" in answer
    assert [role for role, _, _ in await stored(db, ALLOWED)] == ["user"]


async def test_a_stream_cut_on_every_attempt_keeps_what_arrived_marked_and_stores_no_answer(
    start_bot: StartBot,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = "alpha beta gamma delta epsilon zeta eta theta"
    bot = await start_bot()
    llm.cut_stream_next(after_chunks=4, times=3)  # the first try and both retries
    answer = await say(bot, ALLOWED, "greek letters")
    assert answer.startswith("alpha")
    assert "cut off" in answer
    assert [role for role, _, _ in await stored(db, ALLOWED)] == ["user"]


async def test_history_survives_a_restart(start_bot: StartBot, llm: FakeOpenAI) -> None:
    first = await start_bot()
    await say(first, ALLOWED, "remember the word pineapple")
    await first.stop()
    second = await start_bot()
    await say(second, ALLOWED, "what was the word?")
    contents = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "remember the word pineapple" in contents
    assert "Echo: remember the word pineapple" in contents


async def test_two_fast_messages_are_answered_one_after_the_other_in_order(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    llm.first_token_latency = 0.3
    await start_bot()
    telegram.push_message(ALLOWED, "first")
    telegram.push_message(ALLOWED, "second")
    await telegram.wait_for_messages(ALLOWED, 2, timeout=15)
    assert [m.text for m in telegram.sent_messages(ALLOWED)] == ["Echo: first", "Echo: second"]
    second_request = [m["content"] for m in llm.requests[1]["messages"]]
    assert second_request[-3:] == ["first", "Echo: first", "second"]


async def test_new_starts_a_fresh_conversation_and_keeps_the_old_turns(
    start_bot: StartBot,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    await say(bot, ALLOWED, "old topic")
    assert "new conversation" in await say(bot, ALLOWED, "/new")
    await say(bot, ALLOWED, "new topic")
    contents = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "old topic" not in contents
    assert len(await stored(db, ALLOWED)) == 4


async def test_a_huge_message_is_refused_with_the_limit_and_nothing_is_stored(
    start_bot: StartBot,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    answer = await say(bot, ALLOWED, "x" * 50_000)
    assert "50,000" in answer and "16,000" in answer
    assert llm.requests == []
    assert await stored(db, ALLOWED) == []


async def test_a_message_over_the_token_budget_is_refused_without_a_call(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(make_settings(context_window=1_000, max_answer_tokens=200))
    answer = await say(bot, ALLOWED, "word " * 1_500)
    assert "too long for the model" in answer
    assert llm.requests == []


async def test_a_persona_too_large_for_the_model_is_reported(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    llm: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = await start_bot(make_settings(context_window=1_000, max_answer_tokens=200))
    async with bot.pool() as session, session.begin():
        persona = await ensure_default_persona(session, COUNTER)
        for i in range(40):
            # Written while the owner used a larger model; now the window is 1,000 tokens.
            await PERSONAS.add_entry(session, persona.id, MemoryKind.FACT, f"fact {i} " * 10)
    with caplog.at_level(logging.WARNING):
        answer = await say(bot, ALLOWED, "hi")
    assert "leaves no room for a conversation" in answer
    assert "too large" in caplog.text
    assert llm.requests == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {
                "sticker": {
                    "file_id": "s",
                    "file_unique_id": "s",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                }
            },
            "videos and this kind of message are not supported",
        ),
    ],
)
async def test_unsupported_content_gets_a_note(
    start_bot: StartBot, extra: dict[str, Any], expected: str
) -> None:
    bot = await start_bot()
    assert expected in await say(bot, ALLOWED, None, extra=extra)


async def test_a_voice_from_a_user_without_access_is_told_how_to_get_it(
    start_bot: StartBot,
) -> None:
    # A message without text is no command: it falls through to "no access", not a crash.
    bot = await start_bot()
    voice = {"voice": {"file_id": "v", "file_unique_id": "v", "duration": 3}}
    assert "/start lets you ask the admins" in await say(bot, STRANGER, None, extra=voice)


async def test_whitespace_only_text_is_answered_politely_without_a_call(
    start_bot: StartBot, llm: FakeOpenAI
) -> None:
    bot = await start_bot()
    assert "empty" in await say(bot, ALLOWED, "   \n ")
    assert llm.requests == []


async def test_an_unknown_command_points_to_help(start_bot: StartBot, llm: FakeOpenAI) -> None:
    bot = await start_bot()
    assert "/help" in await say(bot, ALLOWED, "/frobnicate now")
    assert llm.requests == []


async def test_help_lists_only_what_the_user_may_use(start_bot: StartBot) -> None:
    bot = await start_bot()
    allowed_help = await say(bot, ALLOWED, "/help")
    stranger_help = await say(bot, STRANGER, "/help")
    assert "/new" in allowed_help
    assert "/new" not in stranger_help and "/start" in stranger_help


async def test_cancel_outside_a_dialog_says_there_is_nothing_to_cancel(start_bot: StartBot) -> None:
    bot = await start_bot()
    assert "nothing to cancel" in await say(bot, ALLOWED, "/cancel")


async def test_the_command_menu_is_registered_at_start_up(
    start_bot: StartBot, telegram: FakeTelegram
) -> None:
    await start_bot()
    everyone = [
        "start",
        "help",
        "new",
        "chats",
        "retry",
        "stop",
        "persona",
        "edit_bot",
        "new_persona",
        "export_persona",
        "import_persona",
        "memory",
        "mode",
        "forget",
        "settings",
        "usage",
        "cancel",
    ]
    admins = [*everyone[:-1], "users", "groups", "cancel"]  # only in the admins' own menus
    private, admin_chat = {"type": "all_private_chats"}, {"type": "chat", "chat_id": ADMIN}
    groups = {"type": "all_group_chats"}
    for language in ("", "ru"):  # the default (English) and Russian
        assert [c["command"] for c in telegram.commands(private, language)] == everyone
        assert [c["command"] for c in telegram.commands(admin_chat, language)] == admins
        assert [c["command"] for c in telegram.commands(groups, language)] == [
            "ask",
            "settings",
            "forget",
        ]
    assert len(telegram.calls_of("setMyCommands")) == 6


async def test_admins_and_allowed_users_are_seeded_into_the_database(
    start_bot: StartBot, llm: FakeOpenAI
) -> None:
    bot = await start_bot()
    assert await say(bot, ADMIN, "hi") == "Echo: hi"


async def test_everyone_may_talk_when_allowed_users_is_a_star(
    start_bot: StartBot, make_settings: Callable[..., Settings]
) -> None:
    bot = await start_bot(make_settings(allowed="*"))
    assert await say(bot, STRANGER, "hi") == "Echo: hi"


async def test_messages_are_counted_once_when_stored(
    start_bot: StartBot, db: async_sessionmaker[AsyncSession]
) -> None:
    bot = await start_bot()
    await say(bot, ALLOWED, "count me")
    async with db() as session:
        total = await session.scalar(select(func.sum(Message.token_count)))
        roles = (await session.scalars(select(Message.role))).all()
    assert roles == [MessageRole.USER, MessageRole.ASSISTANT]
    assert total == COUNTER.message("user", "count me") + COUNTER.message(
        "assistant", "Echo: count me"
    )
