"""End to end: documents sent to the bot are fetched from the fake Telegram, read, and made
part of the conversation: whole when they fit their share of the budget, otherwise kept in
parts of which each question gets the matching ones; a scanned PDF goes to a vision model
as images; every file that cannot be read gets one sentence, and nothing is stored."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import MemorySettings, Settings
from app.db.models import DocumentChunk, Message
from app.domain.enums import MessageSource
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ALLOWED, StartBot

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "documents"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def last_user(llm: FakeOpenAI) -> Any:
    return llm.requests[-1]["messages"][-1]["content"]


async def stored(db: async_sessionmaker[AsyncSession]) -> list[tuple[str, MessageSource]]:
    async with db() as session:
        rows = await session.execute(select(Message.role, Message.source).order_by(Message.id))
        return [(role.value, source) for role, source in rows]


async def parts(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(DocumentChunk)) or 0)


async def test_a_pdf_with_cyrillic_text_goes_into_the_conversation_whole(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    telegram.push_document(
        ALLOWED, fixture("cyrillic.pdf"), "отчёт.pdf", caption="О чём этот файл?"
    )
    await bot.idle()
    content = last_user(llm)
    assert content.startswith('[Document "отчёт.pdf", 1 pages]\n')
    assert "Съешь же ещё этих мягких французских булок" in content
    assert content.endswith('[End of document "отчёт.pdf"]\n\nО чём этот файл?')
    assert await stored(db) == [("user", MessageSource.DOCUMENT), ("assistant", MessageSource.TEXT)]
    telegram.push_message(ALLOWED, "А подробнее?")
    await bot.idle()
    # The document stays in the history like any turn.
    assert "французских булок" in llm.requests[-1]["messages"][-3]["content"]
    assert llm.context_errors == 0 and await parts(db) == 0


async def test_a_word_document_and_a_windows_1251_text_file_read_as_their_text(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    document = docx.Document()
    document.add_heading("Отчёт за квартал", level=1)
    document.add_paragraph("Выручка выросла на треть.")
    buffer = io.BytesIO()
    document.save(buffer)
    bot = await start_bot()
    telegram.push_document(ALLOWED, buffer.getvalue(), "report.docx")
    await bot.idle()
    assert "# Отчёт за квартал" in last_user(llm) and "Выручка выросла" in last_user(llm)
    text = "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю."
    telegram.push_document(ALLOWED, text.encode("cp1251"), "заметка.txt", mime_type="text/plain")
    await bot.idle()
    assert text in last_user(llm)


async def test_a_long_document_is_kept_in_parts_and_each_question_gets_the_matching_ones(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.context_window = 4000
    settings = make_settings(context_window=4000, max_answer_tokens=300)
    sections = [
        f"Chapter {n}.\n\n" + " ".join([f"This chapter is about the topic number {n}."] * 40)
        for n in range(1, 41)
    ]
    sections[17] += "\n\nThe secret ingredient of the soup is saffron."
    book = "\n\n".join(sections)  # about 20,000 tokens: five times the window
    bot = await start_bot(settings)
    telegram.push_document(ALLOWED, book.encode(), "book.md", caption="Read this")
    await bot.idle()
    notice, answer = telegram.sent_messages(ALLOWED)
    assert notice.text is not None and "book.md" in notice.text and "too long" in notice.text
    assert answer.text and answer.text.startswith("Echo:")
    assert await parts(db) > 10
    first = llm.requests[-1]["messages"]
    assert first[-1]["content"].startswith('[Document "book.md", about ')
    # Nothing matched "Read this": the beginning of the document is shown with it.
    assert "Chapter 1." in first[-2]["content"]
    telegram.push_message(ALLOWED, "What is the secret ingredient of the soup?")
    await bot.idle()
    excerpts = llm.requests[-1]["messages"][-2]
    assert excerpts["role"] == "system"
    assert "saffron" in excerpts["content"] and '"book.md", part ' in excerpts["content"]
    assert llm.context_errors == 0
    # No part is left out of what is stored: the document is never silently cut.
    async with db() as session:
        rows = await session.scalars(select(DocumentChunk.content).order_by(DocumentChunk.id))
        assert "".join(rows) == book


async def test_a_scanned_pdf_goes_to_a_vision_model_as_images_of_its_pages(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(make_settings(vision_models=("test-model",)))
    telegram.push_document(ALLOWED, fixture("scanned.pdf"), "scan.pdf", caption="What is it?")
    await bot.idle()
    content = last_user(llm)
    assert content[0]["text"].startswith('[Document "scan.pdf": a scanned PDF')
    images = [part for part in content if part["type"] == "image_url"]
    assert images and images[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert llm.context_errors == 0 and all(r.status == 200 for r in llm.records)


async def test_a_scanned_pdf_without_a_vision_model_gets_a_clear_answer(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    telegram.push_document(ALLOWED, fixture("scanned.pdf"), "scan.pdf")
    await bot.idle()
    [refusal] = telegram.sent_messages(ALLOWED)
    assert "scan with no text" in (refusal.text or "") and "test-model" in (refusal.text or "")
    assert llm.requests == [] and await stored(db) == []


def archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("a.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "file_name", "expected"),
    [
        (archive(), "files.zip", "I do not open archives"),
        (b"MZ\x90\x00" + bytes(200), "setup.txt", "This is a program"),
        (fixture("password.pdf"), "statement.pdf", "protected by a password"),
        (fixture("truncated.pdf"), "broken.pdf", "This file is damaged"),
        (fixture("blank.pdf"), "blank.pdf", "There is no text in this document"),
        (b"\x00\x01\x02\x03" * 64, "data.bin", "I cannot read this kind of file"),
    ],
)
async def test_files_that_cannot_be_read_get_one_sentence_and_nothing_is_stored(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    content: bytes,
    file_name: str,
    expected: str,
) -> None:
    bot = await start_bot()
    telegram.push_document(ALLOWED, content, file_name)
    await bot.idle()
    [refusal] = telegram.sent_messages(ALLOWED)
    assert expected in (refusal.text or "")
    assert llm.requests == [] and await stored(db) == []


async def test_a_file_over_the_limit_is_refused_before_it_is_downloaded(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    bot = await start_bot()
    telegram.push_document(ALLOWED, b"small", "huge.pdf", size=21 * 1024 * 1024)
    await bot.idle()
    [refusal] = telegram.sent_messages(ALLOWED)
    assert "too large" in (refusal.text or "") and "20 MB" in (refusal.text or "")
    assert telegram.calls_of("getFile") == [] and llm.requests == []


async def test_a_long_document_is_counted_within_a_small_share(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    llm.context_window = 3000
    settings = make_settings(
        context_window=3000,
        max_answer_tokens=200,
        memory=MemorySettings(document_share=0.2, titles=False, profile=False, _env_file=None),
    )
    bot = await start_bot(settings)
    text = " ".join(f"word{n} appears in sentence {n}." for n in range(3000))
    telegram.push_document(ALLOWED, text.encode(), "words.txt", caption="word1500")
    await bot.idle()
    excerpts = llm.requests[-1]["messages"][-2]["content"]
    assert "word1500" in excerpts
    # Within a fifth of what the persona leaves (about 2,800 tokens).
    assert llm.records[-1].prompt_tokens < 3000 - 200
    assert llm.context_errors == 0


async def test_documents_sent_together_are_each_read_and_answered(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()
    telegram.push_document(ALLOWED, b"First file: apples.", "a.txt", media_group_id="d1")
    telegram.push_document(
        ALLOWED, b"Second file: pears.", "b.txt", media_group_id="d1", caption="Compare"
    )
    await bot.idle()
    assert len(llm.requests) == 2
    assert "apples" in llm.requests[0]["messages"][-1]["content"]
    second = llm.requests[1]["messages"]
    assert second[-1]["content"].endswith('pears.\n[End of document "b.txt"]\n\nCompare')
    assert "apples" in second[-3]["content"]  # the first is in the history by then
    assert [s for _, s in await stored(db)].count(MessageSource.DOCUMENT) == 2
