"""End to end: photos, albums and images sent as files go to a model that sees them, counted
before the request the way the fake OpenAI server counts them; a follow-up question still
sees the image (also after a restart) while it fits, and a note stands in for it when it
no longer does. A model that cannot see, and an image that cannot be read, get one clear
sentence, and nothing is stored."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.models import Message, MessageImage, Usage
from app.domain.enums import MessageSource
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.openai import count_prompt_tokens
from tests.fakes.vision import fake_image_tokens
from tests.harness import ALLOWED, STRANGER, StartBot

NOT_SHOWN = "[The user sent {count} image(s) with this message; they are not shown here.]"


def picture(width: int, height: int, color: str = "teal", kind: str = "JPEG") -> bytes:
    image = Image.new("RGB", (width, height), color)
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


def seeing(make_settings: Callable[..., Settings], **options: Any) -> Settings:
    """Settings where the tests' model sees images (it is no known OpenAI model)."""
    return make_settings(vision_models=("test-model",), **options)


def image_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message["content"]
    if isinstance(content, str):
        return []
    return [part["image_url"] for part in content if part["type"] == "image_url"]


def decoded(url: str) -> Image.Image:
    header, data = url.split(",", 1)
    assert header.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


async def stored(db: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, MessageSource]]:
    async with db() as session:
        rows = await session.execute(
            select(Message.role, Message.content, Message.source).order_by(Message.id)
        )
        return [(role.value, content, source) for role, content, source in rows]


async def stored_images(db: async_sessionmaker[AsyncSession]) -> list[tuple[int, int, str]]:
    async with db() as session:
        rows = await session.execute(
            select(MessageImage.width, MessageImage.height, MessageImage.mime_type).order_by(
                MessageImage.id
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_photo_with_a_caption_is_sent_to_the_model_counted_and_stored(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(seeing(make_settings))
    update = telegram.push_photo(ALLOWED, picture(1600, 1200), caption="What colour is this?")
    await bot.idle()
    assert telegram.sent_messages(ALLOWED)[-1].text == "Echo: What colour is this?"
    # Only the largest of the sizes Telegram offers is fetched, once.
    largest = update["message"]["photo"][-1]["file_id"]
    assert [call.params["file_id"] for call in telegram.calls_of("getFile")] == [largest]
    last = llm.requests[-1]["messages"][-1]
    assert last["content"][0] == {"type": "text", "text": "What colour is this?"}
    [part] = image_parts(last)
    assert part["detail"] == "auto" and part["url"].startswith("data:image/jpeg;base64,")
    assert decoded(part["url"]).size == (1600, 1200)
    # The server counts the image as OpenAI does: the request is what the bot planned.
    image = fake_image_tokens("test-model", 1600, 1200, "auto")
    assert image == 85 + 170 * 4  # 1600x1200 -> 1024x768: 2x2 tiles
    text_only = count_prompt_tokens(
        [*llm.requests[-1]["messages"][:-1], {"role": "user", "content": "What colour is this?"}]
    )
    assert llm.records[-1].prompt_tokens == text_only + image
    assert llm.context_errors == 0
    assert await stored(db) == [
        ("user", "What colour is this?", MessageSource.PHOTO),
        ("assistant", "Echo: What colour is this?", MessageSource.TEXT),
    ]
    assert await stored_images(db) == [(1600, 1200, "image/jpeg")]


async def test_a_follow_up_question_sees_the_image_without_fetching_it_again_and_after_a_restart(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    settings = seeing(make_settings, image_detail="low")
    bot = await start_bot(settings)
    telegram.push_photo(ALLOWED, picture(800, 600))
    await bot.idle()
    assert telegram.sent_messages(ALLOWED)[-1].text  # a photo without a caption is answered
    telegram.push_message(ALLOWED, "And what is on the left?")
    await bot.idle()
    photo_turn = llm.requests[-1]["messages"][-3]
    [part] = image_parts(photo_turn)
    assert part["detail"] == "low"
    assert (
        llm.records[-1].prompt_tokens
        == count_prompt_tokens([m for m in llm.requests[-1]["messages"] if m is not photo_turn])
        + 3
        + 1
        + 85
    )  # the photo turn: framing, role, no text, and a low-detail image
    assert len(telegram.calls_of("getFile")) == 1  # the follow-up used the kept image
    await bot.stop()

    bot = await start_bot(settings)
    telegram.push_message(ALLOWED, "And on the right?")
    await bot.idle()
    assert len(image_parts(llm.requests[-1]["messages"][-5])) == 1
    assert len(telegram.calls_of("getFile")) == 2  # a new process fetched it once
    assert llm.context_errors == 0


async def test_an_album_is_answered_once_with_all_its_images(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(seeing(make_settings))
    telegram.push_photo(ALLOWED, picture(640, 480, "red"), media_group_id="g1")
    telegram.push_photo(
        ALLOWED, picture(640, 480, "green"), media_group_id="g1", caption="Which is best?"
    )
    telegram.push_photo(ALLOWED, picture(640, 480, "blue"), media_group_id="g1")
    await bot.idle()
    [request] = llm.requests
    parts = image_parts(request["messages"][-1])
    colours = [decoded(part["url"]).convert("RGB").getpixel((5, 5)) for part in parts]
    assert [max(range(3), key=lambda i: c[i]) for c in colours] == [0, 1, 2]  # in order sent
    assert [m.text for m in telegram.sent_messages(ALLOWED)] == ["Echo: Which is best?"]
    assert len(await stored(db)) == 2
    assert len(await stored_images(db)) == 3


async def test_a_model_that_cannot_see_is_named_and_nothing_is_fetched_or_stored(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot()  # test-model is no vision model
    telegram.push_photo(ALLOWED, picture(300, 200), caption="Look")
    await bot.idle()
    [refusal] = telegram.sent_messages(ALLOWED)
    assert "test-model cannot see images" in (refusal.text or "")
    assert telegram.calls_of("getFile") == [] and llm.requests == []
    assert await stored(db) == []


async def test_with_a_vision_model_set_a_photo_goes_to_it_and_text_stays_with_the_users_model(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(make_settings(vision_model="gpt-4.1"))
    telegram.push_photo(ALLOWED, picture(1024, 1024), caption="Describe it")
    await bot.idle()
    assert llm.requests[-1]["model"] == "gpt-4.1"
    telegram.push_message(ALLOWED, "/retry")
    await bot.idle()
    assert llm.requests[-1]["model"] == "gpt-4.1"
    assert len(image_parts(llm.requests[-1]["messages"][-1])) == 1
    telegram.push_message(ALLOWED, "Thanks")
    await bot.idle()
    follow_up = llm.requests[-1]
    assert follow_up["model"] == "test-model"
    # The blind model gets a note in the image's place, never an image part.
    assert follow_up["messages"][-3]["content"] == "Describe it\n\n" + NOT_SHOWN.format(count=1)
    assert llm.context_errors == 0


async def test_an_image_too_large_for_the_window_is_left_out_with_a_note(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    # 1,024 tokens, 256 for the answer: a high-detail 2048x2048 image (765) cannot fit.
    llm.context_window = 1024
    settings = seeing(
        make_settings, context_window=1024, max_answer_tokens=256, image_detail="high"
    )
    bot = await start_bot(settings)
    telegram.push_photo(ALLOWED, picture(2048, 2048), caption="Big one")
    await bot.idle()
    last = llm.requests[-1]["messages"][-1]
    assert last["content"] == "Big one\n\n" + NOT_SHOWN.format(count=1)
    assert llm.context_errors == 0


async def test_an_old_image_gives_way_to_a_note_when_the_conversation_outgrows_it(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    llm.context_window = 2000
    settings = seeing(make_settings, context_window=2000, max_answer_tokens=200)
    bot = await start_bot(settings)
    telegram.push_photo(ALLOWED, picture(1024, 1024), caption="Remember this")  # 765 tokens
    await bot.idle()
    words = "lorem ipsum dolor sit amet " * 30  # about 150 tokens a turn, twice with the echo
    for n in range(3):
        telegram.push_message(ALLOWED, f"{n} {words}")
        await bot.idle()
    contents = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "Remember this\n\n" + NOT_SHOWN.format(count=1) in contents
    assert all(isinstance(content, str) for content in contents)
    assert llm.context_errors == 0


async def test_images_sent_as_files_are_seen_and_a_format_the_model_lacks_is_sent_as_png(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(seeing(make_settings))
    telegram.push_document(ALLOWED, picture(300, 200, kind="PNG"), "chart.png", caption="A")
    telegram.push_document(ALLOWED, picture(120, 90, kind="BMP"), "scan.bmp", mime_type="image/bmp")
    await bot.idle()
    first, second = (image_parts(r["messages"][-1])[0] for r in llm.requests)
    assert first["url"].startswith("data:image/png;base64,")
    assert second["url"].startswith("data:image/png;base64,")
    assert decoded(second["url"]).format == "PNG" and decoded(second["url"]).size == (120, 90)
    assert llm.context_errors == 0 and all(r.status == 200 for r in llm.records)
    assert await stored_images(db) == [(300, 200, "image/png"), (120, 90, "image/png")]


async def test_a_broken_image_gets_one_sentence_and_nothing_is_stored(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(seeing(make_settings))
    telegram.push_document(ALLOWED, b"\x89PNG\r\n\x1a\nnot really", "x.png", mime_type="image/png")
    await bot.idle()
    [refusal] = telegram.sent_messages(ALLOWED)
    assert "could not read this image" in (refusal.text or "")
    assert llm.requests == [] and await stored(db) == []


async def test_retry_of_a_photo_sends_the_image_again(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(seeing(make_settings))
    telegram.push_photo(ALLOWED, picture(500, 500), caption="Again?")
    await bot.idle()
    telegram.push_message(ALLOWED, "/retry")
    await bot.idle()
    assert len(llm.requests) == 2
    assert len(image_parts(llm.requests[-1]["messages"][-1])) == 1
    assert llm.requests[-1]["messages"][-1]["content"][0]["text"] == "Again?"


async def test_a_photo_from_a_user_without_access_is_neither_fetched_nor_sent(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(seeing(make_settings))
    telegram.push_photo(STRANGER, picture(300, 200))
    await bot.idle()
    assert "/start lets you ask the admins" in (telegram.sent_messages(STRANGER)[-1].text or "")
    assert telegram.calls_of("getFile") == [] and llm.requests == []


async def test_what_a_photo_cost_is_recorded_with_its_image_tokens(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    bot = await start_bot(seeing(make_settings))
    telegram.push_photo(ALLOWED, picture(1024, 1024), caption="Cost?")
    await bot.idle()
    async with db() as session:
        [usage] = (await session.scalars(select(Usage))).all()
    assert usage.model == "test-model" and usage.requests == 1
    # The server's own count, which holds the image's 765 tokens.
    assert usage.prompt_tokens == llm.records[-1].prompt_tokens > 765


async def test_an_album_of_a_photo_and_a_video_answers_the_photo_and_says_what_it_left_out(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    bot = await start_bot(seeing(make_settings))
    telegram.push_photo(ALLOWED, picture(320, 240), media_group_id="g2", caption="Both")
    video = {"file_id": "v1", "file_unique_id": "v1", "width": 1, "height": 1, "duration": 3}
    telegram.push_message(ALLOWED, None, extra={"video": video, "media_group_id": "g2"})
    await bot.idle()
    note, answer = telegram.sent_messages(ALLOWED)
    assert "one part (a video, or a file of another kind) I leave out" in (note.text or "")
    assert answer.text == "Echo: Both"
    assert len(llm.requests) == 1
