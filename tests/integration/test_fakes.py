"""Self-tests of the fake Telegram and OpenAI servers, driven by the real clients."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from openai import AsyncOpenAI

from tests.fakes import FakeOpenAI, FakeTelegram, count_prompt_tokens
from tests.fakes.openai import get_encoding
from tests.fakes.telegram import EntityParseError, parse_formatted_text

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123:ABC"
USER = 42


class _QuickCloseSession(AiohttpSession):
    """aiogram's close() always sleeps 250 ms (for TLS); plain HTTP does not need it."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(tokens={TOKEN}, bot_id=123, bot_username="test_bot")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    session = _QuickCloseSession(api=TelegramAPIServer.from_base(tg.base_url))
    bot = Bot(TOKEN, session=session)
    yield bot
    await session.close()


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key="test-key")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(oa: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    c = AsyncOpenAI(api_key="test-key", base_url=oa.base_url, max_retries=0, timeout=5.0)
    yield c
    await c.close()


# ======================================================================================
# Telegram
# ======================================================================================


async def test_get_me_and_send_message(tg: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username, me.first_name) == (123, True, "test_bot", "Test Bot")

    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="go")]]
    )
    first = await bot.send_message(USER, "<b>Hi</b> &amp; welcome", parse_mode="HTML")
    second = await bot.send_message(USER, "123", reply_markup=keyboard)
    assert first.message_id + 1 == second.message_id
    assert first.chat.id == USER and first.chat.type == "private"
    assert first.from_user is not None and first.from_user.id == 123
    # Telegram answers with the parsed text and entities
    assert first.text == "Hi & welcome"
    assert first.entities is not None and first.entities[0].type == "bold"
    assert second.text == "123"  # a numeric text stays a string
    assert second.reply_markup is not None
    assert second.reply_markup.inline_keyboard[0][0].callback_data == "go"

    sent = tg.sent_messages(USER)
    assert [m.text for m in sent] == ["<b>Hi</b> &amp; welcome", "123"]
    assert sent[0].parse_mode == "HTML" and sent[0].plain_text == "Hi & welcome"
    assert sent[1].reply_markup == {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    [call, _] = tg.calls_of("sendMessage", chat_id=USER)
    assert call.params["chat_id"] == USER and call.token == TOKEN and not call.failed
    assert tg.calls_of("getMe")


async def test_edit_message_text_and_not_modified(tg: FakeTelegram, bot: Bot) -> None:
    msg = await bot.send_message(USER, "draft")
    edited = await bot.edit_message_text(text="final", chat_id=USER, message_id=msg.message_id)
    assert isinstance(edited, Message) and edited.text == "final"

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(text="final", chat_id=USER, message_id=msg.message_id)
    # trailing whitespace is trimmed by Telegram, so this is "not modified" as well
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(text="final \n", chat_id=USER, message_id=msg.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=USER, message_id=999)

    # adding a keyboard is a modification
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]]
    )
    await bot.edit_message_text(
        text="final", chat_id=USER, message_id=msg.message_id, reply_markup=keyboard
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=USER, message_id=msg.message_id, reply_markup=keyboard
        )
    await bot.edit_message_reply_markup(chat_id=USER, message_id=msg.message_id)

    [sent] = tg.sent_messages(USER)
    assert sent.text == "final" and sent.reply_markup is None
    assert sent.texts == ["draft", "final", "final", "final"]
    assert sent.edit_count == 3
    failed = [c for c in tg.calls_of("editMessageText") if c.failed]
    assert len(failed) == 3 and all(c.status == 400 for c in failed)

    assert await bot.delete_message(USER, msg.message_id) is True
    assert tg.sent_messages(USER) == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, msg.message_id)


async def test_send_message_draft(tg: FakeTelegram, bot: Bot) -> None:
    assert await bot.send_message_draft(chat_id=USER, draft_id=7, text="Hel") is True
    assert await bot.send_message_draft(chat_id=USER, draft_id=7, text="Hello") is True
    [draft] = tg.drafts(USER)
    assert (draft.draft_id, draft.text, draft.history) == (7, "Hello", ["Hel", "Hello"])

    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message_draft(chat_id=USER, draft_id=7, text="<b>x", parse_mode="HTML")

    tg.refuse_drafts = True
    with pytest.raises(TelegramBadRequest, match="sendMessageDraft is not available"):
        await bot.send_message_draft(chat_id=USER, draft_id=7, text="Hello!")
    assert tg.drafts(USER)[0].text == "Hello"


async def test_faults_retry_after_drop_and_delay(tg: FakeTelegram, bot: Bot) -> None:
    tg.fail_next("sendMessage", status=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as exc_info:
        await bot.send_message(USER, "hi")
    assert exc_info.value.retry_after == 3
    assert "Too Many Requests: retry after 3" in str(exc_info.value)
    await bot.send_message(USER, "hi")  # only the next call failed
    calls = tg.calls_of("sendMessage")
    assert [(c.failed, c.status) for c in calls] == [(True, 429), (False, 200)]

    tg.fail_next("sendMessage", status=403, chat_id=USER + 1)
    await bot.send_message(USER, "other chat is unaffected")
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER + 1, "blocked")

    tg.drop_connection_next("sendChatAction")
    with pytest.raises(TelegramNetworkError):
        await bot.send_chat_action(USER, "typing")
    assert tg.calls_of("sendChatAction")[-1].dropped
    assert await bot.send_chat_action(USER, "typing") is True

    tg.delay_next("sendMessage", 0.2)
    started = time.monotonic()
    await bot.send_message(USER, "slow")
    assert time.monotonic() - started >= 0.2


async def test_text_validation(tg: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "<b>x", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "1 < 2", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "<br>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "<b><i>x</b></i>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "fish & chips", parse_mode="HTML")
    ok = await bot.send_message(USER, "<b>x</b>", parse_mode="HTML")
    assert ok.text == "x"

    for mode in ("MarkdownV2", "Markdown"):  # the app sends HTML or entities only
        with pytest.raises(TelegramBadRequest, match="unsupported parse_mode"):
            await bot.send_message(USER, "*bold*", parse_mode=mode)

    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "  \n ")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode="HTML")
    emoji = "\U0001f600"  # two UTF-16 code units
    await bot.send_message(USER, emoji * 2048)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, emoji * 2048 + "x")
    # the limit applies to the text after entity parsing
    await bot.send_message(USER, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    assert len(tg.sent_messages(USER)) == 3  # the three accepted above, the refused not kept


async def test_get_updates_long_poll_wakes_promptly(tg: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.1)
    assert not poll.done()
    pushed_at = time.monotonic()
    update = tg.push_message(USER, "/start payload", first_name="Ann", username="ann")
    [got] = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - pushed_at < 0.25  # typically ~2 ms
    assert got.update_id == update["update_id"]
    assert got.message is not None and got.message.text == "/start payload"
    assert got.message.chat.id == USER and got.message.from_user is not None
    assert got.message.from_user.username == "ann"
    assert got.message.entities is not None
    assert (got.message.entities[0].type, got.message.entities[0].length) == ("bot_command", 6)

    # not confirmed yet: returned again; confirmed by offset: gone for good
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [got.update_id]
    assert await bot.get_updates(offset=got.update_id + 1, timeout=0) == []
    assert tg.pending_updates == []

    sticker = {"file_id": "s1", "file_unique_id": "u1", "type": "regular"}
    sticker.update(width=512, height=512, is_animated=False, is_video=False)
    tg.push_message(USER, extra={"sticker": sticker})
    [upd] = await bot.get_updates(timeout=1)
    assert upd.update_id == got.update_id + 1
    assert upd.message is not None and upd.message.text is None
    assert upd.message.sticker is not None and upd.message.message_id == 2


async def test_long_poll_ends_when_server_stops(tg: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=25))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await tg.stop()
    assert await asyncio.wait_for(poll, 2) == []
    assert time.monotonic() - started < 1.5


async def test_concurrent_polls_conflict(tg: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(bot.get_updates(timeout=5))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 2)
    tg.push_message(USER, "hi")
    assert len(await asyncio.wait_for(second, 2)) == 1


async def test_dispatcher_polling_roundtrip(tg: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Press", callback_data="pressed")]]
        )
        await message.answer("Hello, <b>world</b>!", parse_mode="HTML", reply_markup=keyboard)

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"You said: {message.text}")

    @dp.callback_query()
    async def on_button(query: CallbackQuery) -> None:
        await query.answer("ok")
        assert isinstance(query.message, Message)
        await query.message.edit_text(f"Button: {query.data}")

    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=5)
    )
    try:
        tg.push_message(USER, "/start")
        [hello] = await tg.wait_for_messages(USER, 1, timeout=5)
        assert hello.plain_text == "Hello, world!"
        tg.push_message(USER, "ping")
        _, echoed = await tg.wait_for_messages(USER, 2, timeout=5)
        assert echoed.text == "You said: ping"

        tg.push_callback(USER, "pressed", hello.message_id)
        await tg.wait_for(lambda: hello.edit_count == 1, timeout=5)
        assert hello.text == "Button: pressed" and hello.reply_markup is None
        assert [c.params.get("text") for c in tg.calls_of("answerCallbackQuery")] == ["ok"]
        polls = tg.calls_of("getUpdates")
        assert sorted(polls[0].params["allowed_updates"]) == ["callback_query", "message"]
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)


async def test_wait_for_timeout_lists_calls(tg: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(USER, "something")
    with pytest.raises(TimeoutError, match=r"(?s)Recent calls.*sendMessage\(chat_id=42"):
        await tg.wait_for(lambda: False, timeout=0.1)
    with pytest.raises(TimeoutError, match="2 bot message"):
        await tg.wait_for_messages(USER, 2, timeout=0.1)


async def test_raw_http_errors_and_param_decoding(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}/bot999:WRONG/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        async with http.get(f"{tg.base_url}/bot{TOKEN}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        body = {"chat_id": USER, "text": "true", "reply_markup": {"inline_keyboard": []}}
        async with http.post(f"{tg.base_url}/bot{TOKEN}/sendMessage", json=body) as resp:
            assert resp.status == 200
            assert (await resp.json())["result"]["text"] == "true"
        form = {"chat_id": str(USER), "text": "[1]", "disable_notification": "true"}
        async with http.post(f"{tg.base_url}/bot{TOKEN}/sendMessage", data=form) as resp:
            assert resp.status == 200
        async with http.get(
            f"{tg.base_url}/bot{TOKEN}/sendMessage", params={"chat_id": "-100", "text": "hi"}
        ) as resp:
            assert (await resp.json())["result"]["chat"]["type"] == "supergroup"
    json_call, form_call, query_call = tg.calls_of("sendMessage")
    assert json_call.params == body
    assert form_call.params == {"chat_id": USER, "text": "[1]", "disable_notification": True}
    assert query_call.params == {"chat_id": -100, "text": "hi"}


async def test_documents_files_and_commands(tg: FakeTelegram, bot: Bot) -> None:
    payload = "report ✓".encode()
    doc_msg = await bot.send_document(
        USER, BufferedInputFile(payload, filename="report.txt"), caption="<i>Your</i> report"
    )
    assert doc_msg.document is not None and doc_msg.document.file_name == "report.txt"
    assert doc_msg.document.file_size == len(payload)
    [sent] = tg.sent_messages(USER)
    assert sent.document_bytes == payload and sent.caption == "<i>Your</i> report"
    assert tg.file_content(doc_msg.document.file_id) == payload
    with pytest.raises(TelegramBadRequest, match="there is no text in the message"):
        await bot.edit_message_text(text="x", chat_id=USER, message_id=doc_msg.message_id)

    file_id = tg.add_file(b"%PDF-1.4 user file", "notes.pdf")
    tg.push_message(USER, extra={"document": {"file_id": file_id, "file_unique_id": "x"}})
    tg_file = await bot.get_file(file_id)
    assert tg_file.file_path is not None and tg_file.file_size == 18
    buffer = io.BytesIO()
    await bot.download_file(tg_file.file_path, buffer)
    assert buffer.getvalue() == b"%PDF-1.4 user file"
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")

    commands = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    assert await bot.set_my_commands(commands) is True
    assert await bot.set_my_commands(commands[:1], language_code="ru") is True
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    assert [c.command for c in await bot.get_my_commands(language_code="ru")] == ["start"]
    assert tg.commands() == [c.model_dump(exclude_none=True) for c in commands]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])
    assert await bot.delete_my_commands() is True
    assert await bot.get_my_commands() == []

    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.set_my_description("An assistant") is True
    assert tg.description() == "An assistant"


def test_the_html_parser_matches_tdlib() -> None:
    # error messages, from tdlib's own test-suite
    html_errors = {
        "🏟 🏟&lt;<abacaba": "Unclosed start tag at byte offset 13",
        "🏟 🏟&lt;<abac aba>": 'Unsupported start tag "abac" at byte offset 13',
        "🏟 🏟&lt;<i   =aba>": 'Empty attribute name in the tag "i" at byte offset 13',
        "🏟 🏟&lt;<i    aba>": 'Can\'t find end tag corresponding to start tag "i"',
        "🏟 🏟&lt;<i    aba  =  ": 'Unclosed start tag "i" at byte offset 13',
        "🏟 🏟&lt;<i    aba  =  190azAz-.,": "Unexpected end of name token at byte offset 27",
        "🏟 🏟&lt;</": "Unexpected end tag at byte offset 13",
        "🏟 🏟&lt;<i>a</i   ": "Unclosed end tag at byte offset 17",
        "🏟 🏟&lt;<i>a</em   >": (
            'Unmatched end tag at byte offset 17, expected "</i>", found "</em>"'
        ),
        "<span>x</span>": 'Tag "span" must have class "tg-spoiler" at byte offset 0',
    }
    for text, message in html_errors.items():
        with pytest.raises(EntityParseError) as exc_info:
            parse_formatted_text(text, "HTML")
        assert str(exc_info.value) == message, text
    assert parse_formatted_text("🏟 🏟<i>🏟 &lt🏟</i>", "HTML") == (
        "🏟 🏟🏟 <🏟",
        [{"type": "italic", "offset": 5, "length": 6}],
    )
    assert parse_formatted_text(
        '🏟 🏟&lt;<pre><code class="language-fift">🏟 🏟&lt;</></>', "HTML"
    ) == ("🏟 🏟<🏟 🏟<", [{"type": "pre", "offset": 6, "length": 6, "language": "fift"}])
    assert parse_formatted_text("<blockquote   expandable>a&lt;<pre  >b;</></>", "HTML") == (
        "a<b;",
        [
            {"type": "expandable_blockquote", "offset": 0, "length": 4},
            {"type": "pre", "offset": 2, "length": 2},
        ],
    )
    lenient = parse_formatted_text("&ge;&lt;&amp;&#128512;", "HTML", strict_html_ampersand=False)
    assert lenient == ("&ge;<&\U0001f600", [])


# ======================================================================================
# OpenAI
# ======================================================================================

MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Привет, wörld! 🎉 日本語"},
]


async def test_openai_stream_with_usage(oa: FakeOpenAI, client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="test-model",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    finish_reasons: list[str | None] = []
    usage = None
    roles = []
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            roles.append(choice.delta.role)
            finish_reasons.append(choice.finish_reason)
            if choice.delta.content:
                pieces.append(choice.delta.content)
    expected = "Echo: " + MESSAGES[1]["content"]
    assert "".join(pieces) == expected
    assert all("\ufffd" not in p for p in pieces) and len(pieces) > 5
    assert roles[0] == "assistant" and finish_reasons[-1] == "stop"
    assert usage is not None
    assert usage.prompt_tokens == count_prompt_tokens(MESSAGES) == oa.prompt_tokens[0]
    assert usage.completion_tokens == len(get_encoding().encode(expected))
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert oa.requests[0]["stream"] is True and oa.records[0].status == 200


async def test_openai_non_streaming_and_reply_sources(oa: FakeOpenAI, client: AsyncOpenAI) -> None:
    async def ask(text: str) -> openai.types.chat.ChatCompletion:
        return await client.chat.completions.create(
            model="any-model", messages=[{"role": "user", "content": text}]
        )

    first = await ask("hi")
    assert first.choices[0].message.content == "Echo: hi"
    assert first.choices[0].finish_reason == "stop" and first.model == "any-model"
    assert first.usage is not None and first.usage.prompt_tokens == 8  # 3 + (3 + 1 + 1)

    oa.reply = lambda body: f"{len(body['messages'])} message(s)"
    oa.queue_reply("queued one")
    oa.queue_reply("queued two")
    replies = [(await ask("x")).choices[0].message.content for _ in range(3)]
    assert replies == ["queued one", "queued two", "1 message(s)"]

    oa.reply = "one two three four five six"
    cut = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], max_completion_tokens=3
    )
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == "one two three"
    assert cut.usage is not None and cut.usage.completion_tokens == 3

    models = await client.models.list()
    assert [m.id for m in models.data] == ["test-model"]


async def test_openai_chunking_keeps_characters_whole(oa: FakeOpenAI, client: AsyncOpenAI) -> None:
    oa.reply = "日本語のテキスト 🎉🎉 ünïcödé"
    oa.chunk_tokens = 2
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    pieces = [
        c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == oa.reply
    assert all("\ufffd" not in p for p in pieces) and len(pieces) > 3


async def test_openai_error_faults(oa: FakeOpenAI, client: AsyncOpenAI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    bad_key = AsyncOpenAI(api_key="wrong", base_url=oa.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth_error:
        await bad_key.chat.completions.create(model="m", messages=messages)
    await bad_key.close()
    assert auth_error.value.code == "invalid_api_key"
    assert auth_error.value.body == {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
        "param": None,
    }

    oa.fail_next(429, retry_after=1)
    oa.fail_next(500)
    oa.fail_next(401)
    with pytest.raises(openai.RateLimitError) as rate:
        await client.chat.completions.create(model="m", messages=messages)
    assert rate.value.code == "rate_limit_exceeded" and rate.value.type == "requests"
    assert rate.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.InternalServerError) as server:
        await client.chat.completions.create(model="m", messages=messages, stream=True)
    assert server.value.type == "server_error"
    with pytest.raises(openai.AuthenticationError):
        await client.chat.completions.create(model="m", messages=messages)
    ok = await client.chat.completions.create(model="m", messages=messages)
    assert ok.choices[0].message.content == "Echo: hi"
    assert [r.fault for r in oa.records] == [None, "fail", "fail", "fail", None]
    assert [r.status for r in oa.records] == [401, 429, 500, 401, 200]


async def test_openai_cut_stream_raises(oa: FakeOpenAI, client: AsyncOpenAI) -> None:
    oa.cut_stream_next(after_chunks=3)
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a longer message here"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["Echo", ":"]
    assert oa.records[0].fault == "cut" and oa.records[0].chunks_sent == 3
    # the next stream is complete again
    again = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "ok"}], stream=True
    )
    assert "".join([c.choices[0].delta.content or "" async for c in again if c.choices]) == (
        "Echo: ok"
    )


async def test_openai_hang_triggers_client_timeout(oa: FakeOpenAI) -> None:
    oa.hang_next(5)
    impatient = AsyncOpenAI(api_key="test-key", base_url=oa.base_url, max_retries=0, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await impatient.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert time.monotonic() - started < 2
    await impatient.close()
    stopped_at = time.monotonic()
    await oa.stop()  # the hanging handler is released promptly
    assert time.monotonic() - stopped_at < 1.5


async def test_openai_context_window(client: AsyncOpenAI, oa: FakeOpenAI) -> None:
    messages = [{"role": "user", "content": "word " * 50}]
    prompt = count_prompt_tokens(messages)
    oa.context_window = prompt + 10
    with pytest.raises(openai.BadRequestError) as exc_info:
        await client.chat.completions.create(model="m", messages=messages, max_tokens=11)
    error = exc_info.value
    assert error.status_code == 400 and error.code == "context_length_exceeded"
    assert error.param == "messages"
    assert f"maximum context length is {prompt + 10} tokens" in error.message
    assert oa.context_errors == 1
    # without max_tokens the reply is cut to what still fits
    oa.reply = "a " * 40
    fit = await client.chat.completions.create(model="m", messages=messages)
    assert fit.choices[0].finish_reason == "length"
    assert fit.usage is not None and fit.usage.completion_tokens == 10


async def test_openai_stream_timing(oa: FakeOpenAI, client: AsyncOpenAI) -> None:
    oa.first_token_latency = 0.15
    oa.token_interval = 0.02
    oa.reply = "one two three four five"  # 5 tokens
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    arrivals: list[float] = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 5
    assert arrivals[0] >= 0.15
    assert arrivals[-1] - arrivals[0] >= 4 * 0.02 * 0.9


async def raw_stream(oa: FakeOpenAI, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON chunks of a streamed answer, as sent (the typed client hides `usage: null`)."""
    chunks = []
    headers = {"Authorization": f"Bearer {oa.api_key}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{oa.base_url}/chat/completions", json=body, headers=headers) as resp,
    ):
        async for line in resp.content:
            data = line.decode().strip().removeprefix("data: ")
            if data and data != "[DONE]":
                chunks.append(json.loads(data))
    return chunks


async def test_openai_usage_chunk_comes_last_with_no_choices(oa: FakeOpenAI) -> None:
    oa.reply = "one two three"
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    with_usage = await raw_stream(oa, {**body, "stream_options": {"include_usage": True}})
    assert with_usage[-1]["choices"] == []
    assert with_usage[-1]["usage"] == {
        **with_usage[-1]["usage"],
        "prompt_tokens": count_prompt_tokens(MESSAGES),
        "completion_tokens": 3,
        "total_tokens": count_prompt_tokens(MESSAGES) + 3,
    }
    assert all(chunk["usage"] is None for chunk in with_usage[:-1])
    without = await raw_stream(oa, body)
    assert all("usage" not in chunk and chunk["choices"] for chunk in without)


async def test_openai_usage_can_be_omitted_like_some_compatible_servers(
    oa: FakeOpenAI, client: AsyncOpenAI
) -> None:
    oa.report_usage = False
    oa.reply = "one two three"
    chunks = await raw_stream(
        oa,
        {
            "model": "m",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == oa.reply
    assert all("usage" not in chunk and chunk["choices"] for chunk in chunks)
    plain = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert plain.usage is None
    assert oa.records[-1].completion_tokens == 3  # still counted for the tests' own use


async def test_openai_usage_can_report_fixed_numbers(oa: FakeOpenAI, client: AsyncOpenAI) -> None:
    oa.fixed_usage = (1234, 56)
    stream = await client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    reported = [chunk.usage async for chunk in stream if chunk.usage is not None]
    assert [(u.prompt_tokens, u.completion_tokens, u.total_tokens) for u in reported] == [
        (1234, 56, 1290)
    ]
    plain = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert plain.usage is not None
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (1234, 56)
    assert oa.records[-1].prompt_tokens == count_prompt_tokens(MESSAGES)  # the real count


async def test_openai_usage_switches_are_in_the_control_api(oa: FakeOpenAI) -> None:
    async with aiohttp.ClientSession() as http:
        config = f"http://127.0.0.1:{oa.port}/_fake/config"
        async with http.post(config, json={"fixed_usage": [7, 8]}) as resp:
            assert resp.status == 200
        assert oa.fixed_usage == (7, 8)
        async with http.post(config, json={"report_usage": False, "fixed_usage": None}) as resp:
            assert resp.status == 200
    assert (oa.report_usage, oa.fixed_usage) == (False, None)


def test_count_prompt_tokens_formula() -> None:
    enc = get_encoding()
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "name": "alice", "content": "Hello <|endoftext|> there"},
        {"role": "assistant", "content": [{"type": "text", "text": "part one"}]},
    ]

    def n(text: str) -> int:
        return len(enc.encode(text, disallowed_special=()))

    expected = 3
    expected += 3 + n("system") + n("Be brief.")
    expected += 3 + n("user") + n("Hello <|endoftext|> there") + 1 + n("alice")
    expected += 3 + n("assistant") + n("part one")
    assert count_prompt_tokens(messages) == expected
    assert count_prompt_tokens([]) == 3


# ======================================================================================
# CLIs
# ======================================================================================


async def test_cli_servers_serve_and_exit_cleanly() -> None:
    commands = {
        "telegram": ["tests.fakes.telegram", "--port", "0", "--token", "555:XYZ"],
        "openai": ["tests.fakes.openai", "--port", "0", "--api-key", "k", "--context-window", "99"],
    }
    procs = {
        name: await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for name, args in commands.items()
    }
    try:
        urls = {}
        for name, proc in procs.items():
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 15)
            assert b"listening on" in line, line
            urls[name] = line.decode().split()[-1]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{urls['telegram']}/bot555:XYZ/getMe") as resp:
                assert (await resp.json())["result"]["id"] == 555
            async with http.post(
                f"{urls['telegram']}/_fake/push_message", json={"user_id": 1, "text": "hi"}
            ) as resp:
                assert (await resp.json())["message"]["text"] == "hi"
            headers = {"Authorization": "Bearer k"}
            async with http.get(f"{urls['openai']}/models", headers=headers) as resp:
                assert (await resp.json())["data"][0]["id"] == "test-model"
            big = {"model": "m", "messages": [{"role": "user", "content": "x " * 200}]}
            async with http.post(
                f"{urls['openai']}/chat/completions", headers=headers, json=big
            ) as resp:
                assert resp.status == 400
                assert json.loads(await resp.text())["error"]["code"] == "context_length_exceeded"
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        codes = {name: await asyncio.wait_for(p.wait(), 10) for name, p in procs.items()}
    assert codes == {"telegram": 0, "openai": 0}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[int, str | None]], list[int]]]:
    """A webhook that records (update_id, secret header) and answers the statuses queued in
    the list it yields (200 once they run out)."""
    received: list[tuple[int, str | None]] = []
    statuses: list[int] = []

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
        update = await request.json()
        received.append(
            (int(update["update_id"]), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return aiohttp.web.json_response({}, status=statuses.pop(0) if statuses else 200)

    app = aiohttp.web.Application()
    app.router.add_post("/hook", handle)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/hook", received, statuses
    await runner.cleanup()


async def test_the_fake_pushes_updates_to_a_webhook_in_order_re_sending_failures(
    tg: FakeTelegram,
    bot: Bot,
    receiver: tuple[str, list[tuple[int, str | None]], list[int]],
) -> None:
    url, received, statuses = receiver
    tg.webhook_retry_delay = 0.05
    statuses.extend([500, 401])  # the first update is refused twice, then accepted
    assert await bot.set_webhook(url, secret_token="hush", allowed_updates=["message"])
    info = await bot.get_webhook_info()
    assert (info.url, info.allowed_updates, info.max_connections) == (url, ["message"], 40)
    first, second, third = (tg.push_message(USER, f"m{n}")["update_id"] for n in range(3))
    await tg.wait_for(lambda: not tg.pending_updates, timeout=10)
    assert received == [(first, "hush")] * 3 + [(second, "hush"), (third, "hush")]
    assert [d.status for d in tg.webhook_deliveries_of(first)] == [500, 401, 200]
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()


async def test_the_fake_re_sends_after_a_connection_failure_and_stops_on_delete(
    tg: FakeTelegram,
    bot: Bot,
    receiver: tuple[str, list[tuple[int, str | None]], list[int]],
) -> None:
    url, received, _ = receiver
    tg.webhook_retry_delay = 0.05
    assert await bot.set_webhook("http://127.0.0.1:1/hook", secret_token="hush")
    update_id = tg.push_message(USER, "hello")["update_id"]
    await tg.wait_for(lambda: len(tg.webhook_deliveries) >= 2, timeout=10)
    assert {d.status for d in tg.webhook_deliveries_of(update_id)} == {0}
    assert (await bot.get_webhook_info()).last_error_message.startswith("Connection failed")
    assert await bot.set_webhook(url, secret_token="hush")  # the same update, now delivered
    await tg.wait_for(lambda: not tg.pending_updates, timeout=10)
    assert received == [(update_id, "hush")]
    assert await bot.delete_webhook()
    tg.push_message(USER, "polled again")
    [polled] = await bot.get_updates(timeout=1)
    assert polled.message is not None and polled.message.text == "polled again"
    assert received == [(update_id, "hush")]


async def test_with_parallel_delivery_the_fake_keeps_up_to_max_connections_posts_in_flight(
    tg: FakeTelegram, bot: Bot
) -> None:
    """As Telegram may: several updates POSTed at once, a refused one sent again."""
    accepted: list[int] = []
    in_flight, most = 0, 0
    refuse = {2}  # the second update is refused once

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
        nonlocal in_flight, most
        update_id = int((await request.json())["update_id"])
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.2)
        in_flight -= 1
        if update_id in refuse:
            refuse.discard(update_id)
            return aiohttp.web.json_response({}, status=502)
        accepted.append(update_id)
        return aiohttp.web.json_response({})

    app = aiohttp.web.Application()
    app.router.add_post("/hook", handle)
    runner = aiohttp.web.AppRunner(app, access_log=None)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        tg.webhook_parallel, tg.webhook_retry_delay = True, 0.05
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        assert await bot.set_webhook(url, max_connections=3)
        pushed = [tg.push_message(USER, f"m{n}")["update_id"] for n in range(7)]
        await tg.wait_for(lambda: not tg.pending_updates, timeout=10)
    finally:
        await runner.cleanup()
    assert most == 3
    assert sorted(accepted) == pushed  # each taken once
    assert [d.status for d in tg.webhook_deliveries_of(2)] == [502, 200]
