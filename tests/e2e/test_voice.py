"""End to end: voice messages, audio files and round videos are fetched from the fake
Telegram, transcribed by the fake OpenAI server, shown back and answered; every refusal is
one clear sentence, and nothing is stored for a recording that was not transcribed."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable

import pytest
from mutagen.oggopus import OggOpus
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import BudgetSettings, Settings, VoiceSettings
from app.db.models import Message, Persona, Usage
from app.domain.enums import MessageSource
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.telegram import SentMessage
from tests.harness import ALLOWED, STRANGER, StartBot, UserChat

OGG = b"OggS" + bytes(range(256)) * 8  # stands for a voice message's Ogg/Opus bytes


async def stored(db: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, MessageSource]]:
    async with db() as session:
        rows = await session.execute(
            select(Message.role, Message.content, Message.source).order_by(Message.id)
        )
        return [(role.value, content, source) for role, content, source in rows]


async def test_a_voice_message_is_transcribed_shown_answered_and_stored_as_spoken(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.transcripts[OGG] = "What is the capital of <France>?"
    bot = await start_bot()
    update = telegram.push_voice(ALLOWED, OGG, seconds=4)
    await bot.idle()
    quote, answer = telegram.sent_messages(ALLOWED)
    assert quote.text == "🎤 <blockquote>What is the capital of &lt;France&gt;?</blockquote>"
    [shown] = telegram.calls_of("sendMessage", ALLOWED)[:1]
    assert shown.params["reply_parameters"]["message_id"] == update["message"]["message_id"]
    assert answer.text == "Echo: What is the capital of <France>?"  # sent with entities
    [transcription] = llm.transcriptions
    assert (transcription.model, transcription.file_name) == ("gpt-4o-mini-transcribe", "voice.ogg")
    assert transcription.data == OGG
    assert llm.requests[-1]["messages"][-1] == {
        "role": "user",
        "content": "What is the capital of <France>?",
    }
    assert await stored(db) == [
        ("user", "What is the capital of <France>?", MessageSource.VOICE),
        ("assistant", "Echo: What is the capital of <France>?", MessageSource.TEXT),
    ]


async def test_a_long_transcript_folds_and_the_whole_of_it_is_answered(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    words = "and then we walked along the river " * 200  # about 7,000 characters
    llm.transcripts[OGG] = words.strip()
    bot = await start_bot()
    telegram.push_voice(ALLOWED, OGG, seconds=300)
    await bot.idle()
    quote = telegram.sent_messages(ALLOWED)[0].text or ""
    assert quote.startswith("🎤 <blockquote expandable>and then we walked")
    assert len(quote) < 4096 and quote.endswith(" …</blockquote>")
    assert llm.requests[-1]["messages"][-1]["content"] == words.strip()


@pytest.mark.parametrize(
    ("kind", "file_name", "mime_type", "sent_as"),
    [
        ("audio", "Interview 3.M4A", "audio/mp4", "Interview 3.M4A"),
        ("audio", "recording", "audio/mpeg", "audio.mp3"),
        ("video_note", None, None, "video_note.mp4"),
    ],
)
async def test_audio_files_and_round_videos_are_transcribed_under_a_name_the_server_reads(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    kind: str,
    file_name: str | None,
    mime_type: str | None,
    sent_as: str,
) -> None:
    bot = await start_bot()
    telegram.push_voice(ALLOWED, OGG, 30, kind=kind, file_name=file_name, mime_type=mime_type)
    await bot.idle()
    [transcription] = llm.transcriptions
    assert transcription.file_name == sent_as
    assert transcription.status == 200
    assert telegram.sent_messages(ALLOWED)[-1].text == f"Echo: Transcript of {len(OGG)} bytes."


async def test_a_recording_over_the_limit_is_refused_before_it_is_downloaded(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    settings = dataclasses.replace(
        make_settings(), voice=VoiceSettings(max_seconds=60, _env_file=None)
    )
    bot = await start_bot(settings)
    telegram.push_voice(ALLOWED, OGG, seconds=61)
    await bot.idle()
    [refusal] = telegram.sent_messages(ALLOWED)
    assert "1:01" in (refusal.text or "") and "1:00" in (refusal.text or "")
    assert telegram.calls_of("getFile") == []
    assert llm.transcriptions == [] and llm.requests == []
    assert await stored(db) == []


async def test_a_file_the_bot_api_will_not_hand_out_gets_a_sentence(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    """The fake Bot API refuses getFile past 20 MB, as the public one does."""
    bot = await start_bot()
    telegram.push_voice(ALLOWED, bytes(21 * 1024 * 1024), seconds=50, kind="audio")
    await bot.idle()
    [refusal] = telegram.sent_messages(ALLOWED)
    assert "larger than" in (refusal.text or "")
    assert llm.transcriptions == [] and await stored(db) == []


async def test_a_transcription_that_fails_is_explained_and_nothing_is_stored(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.fail_transcription_next(500)
    bot = await start_bot()
    telegram.push_voice(ALLOWED, OGG, seconds=3)
    await bot.idle()
    [sentence] = telegram.sent_messages(ALLOWED)
    assert "could not transcribe" in (sentence.text or "")
    assert "Nothing was saved" in (sentence.text or "")
    assert llm.requests == [] and await stored(db) == []


async def test_silence_is_told_and_nothing_is_answered(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.transcripts[OGG] = "   "
    bot = await start_bot()
    telegram.push_voice(ALLOWED, OGG, seconds=3)
    await bot.idle()
    [sentence] = telegram.sent_messages(ALLOWED)
    assert "heard no words" in (sentence.text or "")
    assert llm.requests == [] and await stored(db) == []


async def test_a_voice_from_a_user_without_access_is_never_downloaded_or_transcribed(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    bot = await start_bot()
    telegram.push_voice(STRANGER, OGG, seconds=3)
    await bot.idle()
    assert "/start lets you ask the admins" in (telegram.sent_messages(STRANGER)[-1].text or "")
    assert telegram.calls_of("getFile") == []
    assert llm.transcriptions == []


async def test_the_transcription_is_priced_per_minute_and_recorded_as_usage(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    """whisper-1 reports the seconds it heard; BUDGET_PRICES gives it a price per minute."""
    llm.transcription_usage, llm.transcript_seconds = "duration", 90.0
    settings = make_settings(transcribe_model="whisper-1")
    budget = BudgetSettings(prices="whisper-1=0.006/min", _env_file=None)
    bot = await start_bot(dataclasses.replace(settings, budget=budget))
    telegram.push_voice(ALLOWED, OGG, seconds=88)
    await bot.idle()
    async with db() as session:
        rows = {row.model: row for row in (await session.scalars(select(Usage))).all()}
    assert set(rows) == {"whisper-1", "test-model"}
    assert rows["whisper-1"].requests == 1
    assert rows["whisper-1"].cost == pytest.approx(90 / 60 * 0.006)
    assert rows["whisper-1"].prompt_tokens == rows["whisper-1"].completion_tokens == 0


def test_per_minute_prices_are_read_from_budget_prices() -> None:
    budget = BudgetSettings(prices="gpt-4o=2.5/10, whisper-1=0.006/min", _env_file=None)
    assert budget.prices == {"gpt-4o": (2.5, 10.0)}
    assert budget.minute_prices == {"whisper-1": 0.006}
    assert budget.cost("whisper-1", 0, 0, seconds=30) == pytest.approx(0.003)


async def test_a_voice_message_where_a_dialog_waits_for_text_is_taken_as_that_text(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    name, prompt = b"OggS name", b"OggS prompt"
    llm.transcripts[name] = "Captain"
    llm.transcripts[prompt] = "You are Captain Jack, a cheerful pirate."
    bot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    await chat.send("/new_persona")
    telegram.push_voice(ALLOWED, name, seconds=1)
    await bot.idle()
    assert telegram.sent_messages(ALLOWED)[-2].text == "🎤 <blockquote>Captain</blockquote>"
    telegram.push_voice(ALLOWED, prompt, seconds=3)
    await bot.idle()
    # Waiting for buttons now: a recording is not taken for a press, nor transcribed.
    telegram.push_voice(ALLOWED, OGG, seconds=3)
    await bot.idle()
    assert "You are in" in (chat.last.text or "")
    assert len(llm.transcriptions) == 2
    await chat.press("Done")
    async with db() as session:
        persona = (await session.scalars(select(Persona).filter_by(name="Captain"))).one()
    assert persona.system_prompt == "You are Captain Jack, a cheerful pirate."
    assert llm.requests == [] and await stored(db) == []  # a dialog step, not a chat turn


async def choose_voice_answers(chat: UserChat, label: str) -> None:
    await chat.send("/settings")
    await chat.press("Voice answers")
    await chat.press(label)


def voices(telegram: FakeTelegram) -> list[SentMessage]:
    return [m for m in telegram.sent_messages(ALLOWED) if m.voice is not None]


async def test_voice_answers_always_speak_the_answer_after_its_text(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    await choose_voice_answers(chat, "Always")
    assert "Voice answers: <b>Always</b>" in (chat.last.text or "")
    llm.reply = "Paris is the capital.\n\n```python\nprint('Paris')\n```\n\nIt is on the Seine."
    await chat.send("capital of France?")
    text, voice = telegram.sent_messages(ALLOWED)[-2:]
    assert (text.text or "").startswith("Paris is the capital.")
    assert voice.voice is not None and voice.document_bytes is not None
    length = OggOpus(io.BytesIO(voice.document_bytes)).info.length  # valid Ogg/Opus
    assert voice.voice["duration"] == max(1, round(length))
    [spoken] = llm.speeches
    assert spoken["input"] == "Paris is the capital.\n\nIt is on the Seine."  # no code read
    assert (spoken["model"], spoken["voice"], spoken["response_format"]) == (
        "gpt-4o-mini-tts",
        "alloy",
        "opus",
    )
    async with db() as session:
        models = set((await session.scalars(select(Usage.model))).all())
    assert models == {"test-model", "gpt-4o-mini-tts"}


async def test_voice_answers_when_i_send_voice_answer_only_spoken_messages(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    bot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    await choose_voice_answers(chat, "When I send voice")
    await chat.send("typed")
    assert voices(telegram) == [] and llm.speeches == []
    telegram.push_voice(ALLOWED, OGG, seconds=2)
    await bot.idle()
    assert len(voices(telegram)) == 1
    assert llm.speeches[0]["input"] == f"Echo: Transcript of {len(OGG)} bytes."


async def test_voice_answers_are_off_by_default_and_a_long_answer_speaks_its_first_part(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    bot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    telegram.push_voice(ALLOWED, OGG, seconds=2)
    await bot.idle()
    assert voices(telegram) == []
    await choose_voice_answers(chat, "Always")
    llm.reply = "The river runs past the old mill. " * 120
    await chat.send("tell me a long story")
    [voice] = voices(telegram)
    assert "first part" in (voice.caption or "")
    assert len(llm.speeches[0]["input"]) <= 1500


async def test_a_failed_speech_is_told_and_the_text_answer_stands(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    chat = UserChat(bot, telegram, ALLOWED)
    await choose_voice_answers(chat, "Always")
    llm.speech_failures = 1
    await chat.send("hello")
    answer, note = telegram.sent_messages(ALLOWED)[-2:]
    assert answer.text == "Echo: hello"
    assert "could not say this answer aloud" in (note.text or "")
    assert voices(telegram) == []
    assert [content for _, content, _ in await stored(db)] == ["hello", "Echo: hello"]
