"""Nothing is lost: Bot API servers as unkind as real ones, handlers that fail, SQL that fails.

Each test runs the real polling loop against the fakes and checks what the user sees, what is
stored, and that the log holds no traceback (and no user's text).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.messages import MessageRepository
from app.db.models import Message as StoredMessage
from app.delivery.errors import NotBotApiAnswer
from app.domain.enums import MessageRole
from app.factory import create_bot
from app.runner import quiet_libraries
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.telegram import DRAFTS_UNAVAILABLE
from tests.harness import ADMIN, ALLOWED, StartBot, UserChat

SECRET = "my-pin-is-4711"
WORDS = " ".join(f"w{i}" for i in range(30))


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def assert_no_traceback(log: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in log.text
    assert [r.getMessage() for r in log.records if r.exc_info] == []


def lines(log: pytest.LogCaptureFixture, level: int, containing: str) -> list[str]:
    return [
        r.getMessage() for r in log.records if r.levelno == level and containing in r.getMessage()
    ]


async def history(db: async_sessionmaker[AsyncSession], user_id: int) -> list[tuple[str, str]]:
    async with db() as session:
        rows = await session.execute(
            select(StoredMessage.role, StoredMessage.content)
            .where(StoredMessage.user_id == user_id)
            .order_by(StoredMessage.id)
        )
        return [(role.value, content) for role, content in rows]


@pytest.fixture
def streaming(llm: FakeOpenAI) -> FakeOpenAI:
    """Answers long enough to be previewed a few times before the final message."""
    llm.reply = WORDS
    llm.token_interval = 0.01
    return llm


# --- start-up niceties -------------------------------------------------------------------------


async def test_a_server_without_set_my_commands_starts_the_bot_and_it_answers(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    log: pytest.LogCaptureFixture,
) -> None:
    telegram.unknown_methods.add("setMyCommands")
    user = UserChat(await start_bot(), telegram, ALLOWED)
    answer = await user.send("hello")
    assert answer.text == "Echo: hello"
    assert await history(db, ALLOWED) == [("user", "hello"), ("assistant", "Echo: hello")]
    assert len(lines(log, logging.WARNING, "Command menu not set")) == 1
    assert_no_traceback(log)


# --- previews --------------------------------------------------------------------------------


async def test_a_server_without_drafts_answers_twenty_messages_in_a_row_by_edits(
    start_bot: StartBot,
    telegram: FakeTelegram,
    streaming: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    log: pytest.LogCaptureFixture,
) -> None:
    telegram.unknown_methods.add("sendMessageDraft")
    user = UserChat(await start_bot(), telegram, ALLOWED)
    for number in range(20):
        await user.send(f"question {number}")
    assert [m.text for m in user.messages] == [WORDS] * 20
    # The first answer learnt it; it and every later one streamed by edits instead.
    assert len(telegram.calls_of("sendMessageDraft")) == 1
    assert telegram.calls_of("editMessageText")
    assert len(await history(db, ALLOWED)) == 40
    assert len(lines(log, logging.WARNING, "does not know sendMessageDraft")) == 1
    assert_no_traceback(log)


async def test_a_draft_refused_in_one_chat_still_streams_drafts_in_another(
    start_bot: StartBot, telegram: FakeTelegram, streaming: FakeOpenAI
) -> None:
    telegram.fail_next(
        "sendMessageDraft", status=400, description=DRAFTS_UNAVAILABLE, chat_id=ALLOWED, times=99
    )
    bot = await start_bot()
    refused, other = UserChat(bot, telegram, ALLOWED), UserChat(bot, telegram, ADMIN)
    assert (await refused.send("one")).text == WORDS
    assert (await other.send("two")).text == WORDS
    assert (await refused.send("three")).text == WORDS
    assert len(telegram.calls_of("sendMessageDraft", ALLOWED)) == 1  # learnt for that chat
    assert telegram.calls_of("editMessageText", ALLOWED)
    assert telegram.drafts(ADMIN)
    assert not telegram.calls_of("editMessageText", ADMIN)


@pytest.mark.parametrize(
    "fault",
    ["server error", "HTML page", "empty body", "dropped connection", "forbidden"],
)
async def test_drafts_that_keep_failing_cost_only_the_previews(
    fault: str,
    start_bot: StartBot,
    telegram: FakeTelegram,
    streaming: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    log: pytest.LogCaptureFixture,
) -> None:
    inject: dict[str, Callable[[], None]] = {
        "server error": lambda: telegram.fail_next("sendMessageDraft", status=500, times=99),
        "HTML page": lambda: telegram.answer_html_next("sendMessageDraft", times=99),
        "empty body": lambda: telegram.answer_empty_next("sendMessageDraft", status=200, times=99),
        "dropped connection": lambda: telegram.drop_connection_next("sendMessageDraft", 99),
        "forbidden": lambda: telegram.fail_next("sendMessageDraft", status=403, times=99),
    }
    inject[fault]()
    user = UserChat(await start_bot(), telegram, ALLOWED)
    assert (await user.send("go")).text == WORDS
    assert len(user.messages) == 1
    assert len(telegram.calls_of("sendMessageDraft")) > 1  # tried again: not switched off
    assert await history(db, ALLOWED) == [("user", "go"), ("assistant", WORDS)]
    assert len(lines(log, logging.WARNING, "Preview for chat")) == 1
    assert "<html" not in log.text
    assert_no_traceback(log)


async def test_an_edited_preview_that_fails_does_not_cost_the_answer(
    start_bot: StartBot,
    telegram: FakeTelegram,
    streaming: FakeOpenAI,
    log: pytest.LogCaptureFixture,
) -> None:
    telegram.refuse_drafts = True
    telegram.fail_next(
        "editMessageText", status=400, description="Bad Request: message can't be edited"
    )
    user = UserChat(await start_bot(), telegram, ALLOWED)
    assert (await user.send("go")).text == WORDS
    assert len(user.messages) == 1
    assert len(lines(log, logging.WARNING, "Preview for chat")) == 1
    assert_no_traceback(log)


# --- answers that are not Bot API JSON ------------------------------------------------------


@pytest.mark.parametrize("body", ["HTML page", "empty body"])
async def test_one_unreadable_502_on_the_answer_is_retried_and_it_arrives_once(
    body: str,
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    log: pytest.LogCaptureFixture,
) -> None:
    user = UserChat(await start_bot(), telegram, ALLOWED)
    if body == "HTML page":
        telegram.answer_html_next("sendMessage", chat_id=ALLOWED)
    else:
        telegram.answer_empty_next("sendMessage", chat_id=ALLOWED)
    assert (await user.send("hello")).text == "Echo: hello"
    assert [m.text for m in user.messages] == ["Echo: hello"]
    assert [c.status for c in telegram.calls_of("sendMessage", ALLOWED)] == [502, 200]
    assert await history(db, ALLOWED) == [("user", "hello"), ("assistant", "Echo: hello")]
    [retry] = lines(log, logging.WARNING, "sendMessage failed")
    assert "HTTP 502" in retry and "retry 1" in retry
    assert "<html" not in log.text and "nginx" not in log.text
    assert_no_traceback(log)


async def test_a_4xx_page_that_is_not_bot_api_json_is_not_retried(
    make_settings: Callable[..., Settings], telegram: FakeTelegram
) -> None:
    telegram.push_message(ALLOWED, "hi")  # the chat exists
    telegram.answer_html_next("sendMessage", status=404)
    bot = create_bot(make_settings())
    try:
        with pytest.raises(NotBotApiAnswer) as raised:
            await bot.send_message(ALLOWED, "an answer")
    finally:
        await bot.session.close()
    assert str(raised.value) == (
        'HTTP 404: an HTML page ("404 Not Found") instead of a Bot API answer'
    )
    assert len(telegram.calls_of("sendMessage")) == 1


# --- the error handler ---------------------------------------------------------------------------


def exploding_router() -> Router:
    """A feature with a bug: it raises, with the user's text in the exception."""
    router = Router(name="exploding")

    @router.message(F.text.startswith("boom"))
    async def explode(message: Message) -> None:
        raise RuntimeError(f"cannot handle {message.text}")

    @router.callback_query(F.data == "boom")
    async def explode_on_press(callback: CallbackQuery) -> None:
        raise RuntimeError(f"cannot handle {callback.data} {SECRET}")

    return router


@pytest.fixture
async def exploding(start_bot: StartBot, telegram: FakeTelegram) -> AsyncIterator[UserChat]:
    yield UserChat(await start_bot(first_routers=[exploding_router()]), telegram, ALLOWED)


async def test_a_handler_that_raises_tells_the_user_and_logs_no_text(
    exploding: UserChat,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    log: pytest.LogCaptureFixture,
) -> None:
    answer = await exploding.send(f"boom {SECRET}")
    assert answer.text == (
        "Something went wrong on my side; your message is kept, /retry answers it again."
    )
    assert llm.requests == []
    assert await history(db, ALLOWED) == []  # nothing the model did not say
    [line] = lines(log, logging.ERROR, "failed in")
    assert "exploding_router.<locals>.explode" in line and "RuntimeError" in line
    assert "test_resilience:" in line  # where it was raised
    assert SECRET not in log.text
    assert_no_traceback(log)
    # The bot goes on.
    assert (await exploding.send("hello")).text == "Echo: hello"


async def test_the_sentence_comes_in_the_users_language(
    exploding: UserChat, telegram: FakeTelegram
) -> None:
    telegram.language_codes[ALLOWED] = "ru"
    answer = await exploding.send("boom")
    assert answer.text == (
        "Что-то пошло не так с моей стороны; ваше сообщение сохранено, /retry ответит на него "
        "заново."
    )


async def test_a_button_whose_handler_raises_is_answered(
    exploding: UserChat, telegram: FakeTelegram, log: pytest.LogCaptureFixture
) -> None:
    await exploding.send("/start")
    text = await exploding.press_data("boom", exploding.last.message_id)
    assert text == "Something went wrong on my side; please try again."
    assert not telegram._open_callbacks  # no button left spinning
    [line] = lines(log, logging.ERROR, "failed in")
    assert "explode_on_press" in line
    assert SECRET not in log.text
    assert_no_traceback(log)


# --- SQL errors ---------------------------------------------------------------------------------


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything every logger says, as `LOG_LEVEL=DEBUG` configures them."""
    names = ("httpx", "httpx2", "openai", "aiohttp.access", "sqlalchemy", "aiosqlite")
    levels = {name: logging.getLogger(name).level for name in (*names, "aiogram.event")}
    caplog.set_level(logging.DEBUG)
    quiet_libraries(logging.DEBUG)
    yield caplog
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def storing_router() -> Router:
    """A handler storing a turn that breaks a constraint: no such conversation."""
    router = Router(name="storing")

    @router.message(F.text.startswith("store"))
    async def store_badly(message: Message, session: AsyncSession) -> None:
        assert message.from_user is not None and message.text is not None
        await MessageRepository(session).add(
            conversation_id=987_654,
            user_id=message.from_user.id,
            persona_id=987_654,
            role=MessageRole.USER,
            content=message.text,
            token_count=1,
        )

    return router


async def test_a_failing_sql_statement_logs_no_text_at_any_level(
    start_bot: StartBot,
    telegram: FakeTelegram,
    db: async_sessionmaker[AsyncSession],
    debug_log: pytest.LogCaptureFixture,
) -> None:
    user = UserChat(await start_bot(first_routers=[storing_router()]), telegram, ALLOWED)
    answer = await user.send(f"store {SECRET}")
    assert answer.text.startswith("Something went wrong on my side")
    assert await history(db, ALLOWED) == []
    [line] = lines(debug_log, logging.ERROR, "failed in")
    assert "IntegrityError" in line
    # The statement is in the DEBUG traceback, without its values.
    assert "INSERT INTO messages" in debug_log.text
    assert "SQL parameters hidden" in debug_log.text
    assert SECRET not in debug_log.text
