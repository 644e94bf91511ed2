"""End to end: the bot in groups. Added by a bot admin, a group is allowed at once; added by
anyone else, it waits for an admin's Approve. In an allowed group the bot answers a mention,
a reply to it and /ask, as a reply in the same topic, in one conversation the group shares
(the model sees who said what); everything else it leaves alone and never stores. Removed,
it stops."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from typing import Any

import aiohttp
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import BudgetSettings, Settings
from app.db.models import Conversation, Group, HeardMessage, Message, Persona, User
from app.domain.enums import BudgetUnit, GroupMembers
from app.keyboards.callbacks import (
    GroupCard,
    GroupCardAction,
    GroupDecision,
    GroupPersona,
    GroupsButton,
    GroupSetting,
    GroupSettingField,
)
from app.memory.tokens import load_counter
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, STRANGER, RunningBot, StartBot, UserChat, buttons

GROUP = -1001234567890
FORUM = -1009876543210


async def added_by_admin(bot: RunningBot, telegram: FakeTelegram, chat_id: int = GROUP) -> None:
    telegram.push_my_chat_member(chat_id, ADMIN, "left", "member", first_name="Admin")
    await bot.idle()


async def stored(db: async_sessionmaker[AsyncSession]) -> int:
    async with db() as session:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


def at(telegram: FakeTelegram) -> str:
    return "@" + telegram.bot_username


async def test_an_admin_adds_the_bot_and_it_answers_what_is_addressed_to_it_only(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.add_group(GROUP, "Family")
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    [hello] = telegram.sent_messages(GROUP)
    assert "Mention me" in (hello.text or "")
    telegram.push_group_message(GROUP, STRANGER, "Just chatting among us", first_name="Bob")
    await bot.idle()
    assert llm.requests == [] and len(telegram.sent_messages(GROUP)) == 1
    async with db() as session:  # an unaddressed message registers nobody
        assert await session.get(User, STRANGER) is None
    question = telegram.push_group_message(
        GROUP, STRANGER, f"{at(telegram)} what is the capital of France?", first_name="Bob"
    )
    await bot.idle()
    assert llm.requests[-1]["messages"][-1]["content"] == "Bob: what is the capital of France?"
    answer = telegram.sent_messages(GROUP)[-1]
    assert answer.text == "Echo: Bob: what is the capital of France?"
    assert answer.raw["reply_to_message"]["message_id"] == question["message"]["message_id"]
    assert telegram.drafts(GROUP) == []  # drafts are for private chats
    # A reply to the bot and /ask@bot are addressed to it too; another bot's /ask is not.
    telegram.push_group_message(
        GROUP, ALLOWED, "and of Spain?", first_name="Ann", reply_to=answer.message_id
    )
    await bot.idle()
    telegram.push_group_message(GROUP, ALLOWED, f"/ask{at(telegram)} and Italy?", first_name="Ann")
    await bot.idle()
    telegram.push_group_message(GROUP, ALLOWED, "/ask@other_bot and Peru?", first_name="Ann")
    await bot.idle()
    contents = [m["content"] for m in llm.requests[-1]["messages"]]
    assert contents[-1] == "Ann: and Italy?"
    # One conversation for the group: Bob's and Ann's turns, each named.
    assert "Bob: what is the capital of France?" in contents and "Ann: and of Spain?" in contents
    assert len(llm.requests) == 3
    async with db() as session:
        [conversation] = (await session.scalars(select(Conversation))).all()
    assert conversation.chat_id == GROUP
    assert await stored(db) == 6


async def test_a_group_added_by_someone_else_waits_for_an_admins_approval(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.add_group(GROUP, "Book club")
    bot = await start_bot()
    telegram.push_my_chat_member(GROUP, ALLOWED, "left", "member", first_name="Ann")
    await bot.idle()
    assert "must approve" in (telegram.sent_messages(GROUP)[-1].text or "")
    request = telegram.sent_messages(ADMIN)[-1]
    assert "Ann added me to the group <b>Book club</b>" in (request.text or "")
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} hello?", first_name="Ann")
    await bot.idle()
    assert "not approved this group yet" in (telegram.sent_messages(GROUP)[-1].text or "")
    assert llm.requests == [] and await stored(db) == 0  # an unapproved group costs nothing
    admin = UserChat(bot, telegram, ADMIN)
    await admin.press("Approve", request)
    assert "is approved" in (telegram.sent_messages(ADMIN)[-1].text or "")
    assert "Mention me" in (telegram.sent_messages(GROUP)[-1].text or "")
    stale = GroupDecision(chat_id=GROUP, approve=False).pack()  # the other admin, late
    assert "decided on already" in (await admin.press_data(stale, request.message_id) or "")
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} hello now?", first_name="Ann")
    await bot.idle()
    assert telegram.sent_messages(GROUP)[-1].text == "Echo: Ann: hello now?"


async def test_a_denied_group_and_a_removed_bot_stay_silent(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    telegram.add_group(GROUP, "Spam")
    bot = await start_bot()
    telegram.push_my_chat_member(GROUP, ALLOWED, "left", "member")
    await bot.idle()
    admin = UserChat(bot, telegram, ADMIN)
    await admin.press("Deny", telegram.sent_messages(ADMIN)[-1])
    before = len(telegram.sent_messages(GROUP))
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} anyone?")
    await bot.idle()
    assert len(telegram.sent_messages(GROUP)) == before and llm.requests == []
    # Added again by a non-admin, a denied group stays denied; removed, the bot stops.
    telegram.push_my_chat_member(GROUP, ALLOWED, "left", "member")
    await bot.idle()
    telegram.add_group(-100555, "Work")
    await added_by_admin(bot, telegram, -100555)
    telegram.push_my_chat_member(-100555, ADMIN, "member", "kicked")
    await bot.idle()
    telegram.push_group_message(-100555, ADMIN, f"{at(telegram)} still there?")
    await bot.idle()
    assert llm.requests == []


async def test_only_users_with_access_may_ask_where_the_owner_says_so(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    telegram.add_group(GROUP)
    bot = await start_bot(make_settings(access={"group_members": "allowed"}))
    await added_by_admin(bot, telegram)
    telegram.push_group_message(GROUP, STRANGER, f"{at(telegram)} may I?", first_name="Bob")
    await bot.idle()
    refusal = telegram.sent_messages(GROUP)[-1]
    assert "only people with access" in (refusal.text or "")
    assert refusal.ephemeral_for == STRANGER  # for Bob's eyes only
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} and I?", first_name="Ann")
    await bot.idle()
    assert [r["messages"][-1]["content"] for r in llm.requests] == ["Ann: and I?"]
    # A server that cannot send ephemeral messages: a short reply to Bob instead.
    telegram.refuse_ephemeral = True
    asked = telegram.push_group_message(GROUP, STRANGER, f"{at(telegram)} now?", first_name="Bob")
    await bot.idle()
    fallback = telegram.sent_messages(GROUP)[-1]
    assert "only people with access" in (fallback.text or "") and fallback.ephemeral_for is None
    assert fallback.raw["reply_to_message"]["message_id"] == asked["message"]["message_id"]


async def test_each_forum_topic_is_its_own_conversation_answered_in_its_topic(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    telegram.add_group(FORUM, "Forum", forum=True)
    bot = await start_bot()
    await added_by_admin(bot, telegram, FORUM)
    telegram.push_group_message(FORUM, ALLOWED, f"{at(telegram)} about cats", thread_id=7)
    await bot.idle()
    telegram.push_group_message(FORUM, ALLOWED, f"{at(telegram)} about dogs", thread_id=9)
    await bot.idle()
    answer = telegram.sent_messages(FORUM)[-1]
    assert answer.raw.get("message_thread_id") == 9
    history = [m["content"] for m in llm.requests[-1]["messages"]]
    assert "User: about cats" not in history  # the other topic's conversation
    telegram.push_group_message(FORUM, ALLOWED, f"{at(telegram)} more cats", thread_id=7)
    await bot.idle()
    assert "User: about cats" in [m["content"] for m in llm.requests[-1]["messages"]]


async def test_bots_anonymous_admins_and_empty_mentions_are_handled(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    telegram.add_group(GROUP)
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    other_bot: dict[str, Any] = {"id": 999, "is_bot": True, "first_name": "Other"}
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} hi", extra={"from": other_bot})
    anonymous = {"id": GROUP, "type": "supergroup", "title": "Team"}
    telegram.push_group_message(
        GROUP, ALLOWED, f"{at(telegram)} hi", extra={"sender_chat": anonymous}
    )
    await bot.idle()
    assert llm.requests == [] and len(telegram.sent_messages(GROUP)) == 1
    telegram.push_group_message(GROUP, ALLOWED, at(telegram))
    await bot.idle()
    assert "Write your question after the mention" in (telegram.sent_messages(GROUP)[-1].text or "")
    assert llm.requests == []


async def test_a_burst_of_questions_in_one_group_never_earns_a_429(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    # Telegram's 20 a minute, with the minute shrunk to 3 s on both sides to keep it short.
    telegram.group_rate_window = 3.0
    llm.reply = "word " * 40
    llm.token_interval = 0.02  # about 0.8 s an answer: previews all the way
    telegram.add_group(GROUP)
    bot = await start_bot(pace_window=3.0)
    await added_by_admin(bot, telegram)
    for n in range(10):
        telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} question {n}")
    await bot.idle(timeout=60)
    finals = [m for m in telegram.sent_messages(GROUP) if (m.text or "").startswith("word")]
    assert len(finals) == 10 and all(m.text == ("word " * 40).strip() for m in finals)
    assert telegram.group_flood_answers == 0
    edits = sum(m.edit_count for m in finals)
    assert edits > 0  # previews went out where there was room


async def test_without_pacing_the_fake_answers_429_as_telegram_does(
    telegram: FakeTelegram,
) -> None:
    """The fake's limit is real: 21 sends in its window, the last refused."""
    telegram.add_group(GROUP)
    async with aiohttp.ClientSession() as http:
        statuses = []
        for n in range(21):
            url = f"{telegram.base_url}/bot{telegram.token}/sendMessage"
            async with http.post(url, json={"chat_id": GROUP, "text": f"m{n}"}) as reply:
                statuses.append(reply.status)
                body = await reply.json()
    assert statuses[:20] == [200] * 20 and statuses[20] == 429
    assert body["parameters"]["retry_after"] >= 1


async def test_forget_in_a_group_is_for_its_admins_and_the_bots(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.add_group(GROUP, admins={ALLOWED})
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    telegram.push_group_message(GROUP, STRANGER, f"{at(telegram)} remember 42", first_name="Bob")
    await bot.idle()
    assert await stored(db) == 2
    telegram.push_group_message(GROUP, STRANGER, f"/forget{at(telegram)}", first_name="Bob")
    await bot.idle()
    refusal = telegram.sent_messages(GROUP)[-1]
    assert "Only this group's admins" in (refusal.text or "") and refusal.ephemeral_for == STRANGER
    assert await stored(db) == 2
    telegram.push_group_message(GROUP, ALLOWED, "/forget", first_name="Ann")  # a group admin
    await bot.idle()
    assert "Forgotten" in (telegram.sent_messages(GROUP)[-1].text or "")
    assert await stored(db) == 0
    telegram.push_group_message(GROUP, ALLOWED, "/forget", first_name="Ann")
    await bot.idle()
    assert "nothing to forget" in (telegram.sent_messages(GROUP)[-1].text or "")
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} what number?", first_name="Ann")
    await bot.idle()
    assert all("42" not in str(m["content"]) for m in llm.requests[-1]["messages"])


async def test_a_guest_query_is_answered_once_into_its_message_and_kept_in_the_askers_history(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.reply = "word " * 30
    llm.token_interval = 0.02  # long enough for a preview before the final text
    bot = await start_bot()
    telegram.push_guest_message(-100777, ALLOWED, f"{at(telegram)} how far is the Moon?")
    await bot.idle()
    [reply] = telegram.guest_answers.values()
    assert reply.texts[-1] == ("word " * 30).strip()
    assert len(reply.texts) >= 2  # sent once, then edited as the answer came in
    assert llm.requests[-1]["messages"][-1]["content"] == "how far is the Moon?"
    async with db() as session:
        rows = (await session.execute(select(Message.role, Message.source))).all()
    assert [(role.value, source.value) for role, source in rows] == [
        ("user", "guest"),
        ("assistant", "text"),
    ]
    telegram.push_guest_message(-100777, STRANGER, f"{at(telegram)} and me?")
    await bot.idle()
    refusal = list(telegram.guest_answers.values())[-1]
    assert "only people with access" in refusal.texts[-1] and len(llm.requests) == 1


async def test_admins_allow_and_block_groups_in_slash_groups(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    telegram.add_group(GROUP, "Family")
    telegram.add_group(FORUM, "Left us")
    bot = await start_bot()
    telegram.push_my_chat_member(GROUP, ALLOWED, "left", "member")  # waits for approval
    await added_by_admin(bot, telegram, FORUM)
    telegram.push_my_chat_member(FORUM, ADMIN, "member", "left")
    await bot.idle()
    admin = UserChat(bot, telegram, ADMIN)
    listing = await admin.send("/groups")
    assert "<b>Family</b>" in (listing.text or "") and "waiting for approval" in (
        listing.text or ""
    )
    assert "the bot was removed" in (listing.text or "")
    # Allow and the persona for Family; nothing for the group the bot left.
    assert [text for text, _ in buttons(listing)] == ["✅ Allow Family", "🎭", "⚙️"]
    await admin.press("Allow Family", listing)
    assert "Mention me" in (telegram.sent_messages(GROUP)[-1].text or "")
    assert [text for text, _ in buttons(admin.with_button("Block"))] == [
        "🚫 Block Family",
        "🎭",
        "⚙️",
    ]
    await admin.press("Block Family")
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} hello?")
    await bot.idle()
    assert llm.requests == []
    gone = GroupsButton(chat_id=FORUM, allow=True).pack()
    assert "no longer in that group" in (await admin.press_data(gone, listing.message_id) or "")
    stranger = UserChat(bot, telegram, ALLOWED)
    await stranger.send("/groups")  # not an admin: not their command
    assert "Family" not in (stranger.last.text or "")


async def test_a_photo_with_the_mention_in_its_caption_is_asked_about_with_its_image(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    telegram.add_group(GROUP)
    bot = await start_bot(make_settings(vision_models=("test-model",)))
    await added_by_admin(bot, telegram)
    image = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(image, format="JPEG")
    stored_photo = telegram.push_photo(ALLOWED, image.getvalue())["message"]["photo"]
    caption = f"{at(telegram)} what colour?"
    entities = [{"type": "mention", "offset": 0, "length": len(at(telegram))}]
    telegram.push_group_message(
        GROUP,
        ALLOWED,
        "",
        first_name="Ann",
        extra={"photo": stored_photo, "caption": caption, "caption_entities": entities},
    )
    await bot.idle()
    content = llm.requests[-1]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "Ann: what colour?"}
    assert content[1]["type"] == "image_url"


async def test_an_admin_chooses_the_persona_a_group_talks_to(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.add_group(GROUP, "Crew")
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    prompt = "You are a pirate."
    async with db() as session, session.begin():
        tokens = load_counter("test-model").message("system", prompt)
        session.add(Persona(name="Pirate", system_prompt=prompt, system_message_tokens=tokens))
    admin = UserChat(bot, telegram, ADMIN)
    listing = await admin.send("/groups")
    assert "persona Assistant" in (listing.text or "")
    await admin.press("🎭", listing)
    await admin.press("Pirate")
    assert "persona Pirate" in (telegram.sent_messages(ADMIN)[-1].text or "")
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} ahoy?", first_name="Ann")
    await bot.idle()
    assert llm.requests[-1]["messages"][0]["content"] == prompt
    forged = GroupPersona(chat_id=GROUP, persona_id=10_000).pack()
    assert "no longer works" in (await admin.press_data(forged, listing.message_id) or "")


def press_in_group(
    telegram: FakeTelegram, user_id: int, message: Any, label: str, chat_id: int = GROUP
) -> str:
    """The update id of `user_id` pressing the button `label` under a group message."""
    data = UserChat.button_data(message, label)
    update = telegram.push_callback(user_id, data, message.message_id, chat_id=chat_id)
    return str(update["callback_query"]["id"])


async def test_group_settings_are_for_its_admins_and_change_language_length_and_persona(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.add_group(GROUP, admins={ALLOWED})
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    telegram.push_group_message(GROUP, STRANGER, f"/settings{at(telegram)}", first_name="Bob")
    await bot.idle()
    refusal = telegram.sent_messages(GROUP)[-1]
    assert "Only this group's admins" in (refusal.text or "") and refusal.ephemeral_for == STRANGER
    telegram.push_group_message(GROUP, ALLOWED, "/settings", first_name="Ann")  # a group admin
    await bot.idle()
    screen = telegram.sent_messages(GROUP)[-1]
    assert "Settings of this group" in (screen.text or "")
    assert "Listen: off" in (screen.text or "") and "Answers: Normal" in (screen.text or "")
    # A member who is not the group's admin cannot press the buttons either.
    query = press_in_group(telegram, STRANGER, screen, "Answer length")
    await bot.idle()
    assert "Only this group's admins" in (telegram.callback_answers[query].get("text") or "")
    press_in_group(telegram, ALLOWED, screen, "Answer length")
    await bot.idle()
    press_in_group(telegram, ALLOWED, screen, "Short")
    await bot.idle()
    assert "Answers: Short" in (screen.text or "")
    # Forged values are refused; nothing changes.
    forged = GroupSetting(field=GroupSettingField.LENGTH, value="endless").pack()
    update = telegram.push_callback(ALLOWED, forged, screen.message_id, chat_id=GROUP)
    await bot.idle()
    assert "no longer works" in (
        telegram.callback_answers[update["callback_query"]["id"]].get("text") or ""
    )
    telegram.push_group_message(GROUP, STRANGER, f"{at(telegram)} tell me", first_name="Bob")
    await bot.idle()
    system = " ".join(str(m["content"]) for m in llm.requests[-1]["messages"][:-1])
    assert "short" in system.lower()  # the short-answer hint reached the model
    # Russian for the bot's notes in this group, whatever each member's own language.
    press_in_group(telegram, ALLOWED, screen, "Language")
    await bot.idle()
    press_in_group(telegram, ALLOWED, screen, "Русский")
    await bot.idle()
    assert "Настройки этой группы" in (screen.text or "")
    telegram.push_group_message(GROUP, STRANGER, f"/forget{at(telegram)}", first_name="Bob")
    await bot.idle()
    assert "только её администраторы" in (telegram.sent_messages(GROUP)[-1].text or "")
    # The persona, among those the pressing admin may use.
    prompt = "You are a pirate."
    async with db() as session, session.begin():
        tokens = load_counter("test-model").message("system", prompt)
        session.add(
            Persona(name="Pirate", system_prompt=prompt, system_message_tokens=tokens, shared=True)
        )
    press_in_group(telegram, ALLOWED, screen, "🎭")
    await bot.idle()
    press_in_group(telegram, ALLOWED, screen, "Pirate")
    await bot.idle()
    telegram.push_group_message(GROUP, STRANGER, f"{at(telegram)} ahoy?", first_name="Bob")
    await bot.idle()
    assert llm.requests[-1]["messages"][0]["content"].startswith(prompt)
    press_in_group(telegram, ALLOWED, screen, "✖️")
    await bot.idle()
    assert buttons(screen) == []


async def test_a_listening_group_gives_the_next_answer_what_was_said_and_forgets_it(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
    make_settings: Callable[..., Settings],
) -> None:
    telegram.add_group(GROUP, admins={ALLOWED})
    bot = await start_bot(make_settings(access={"group_listen_messages": 3}))
    await added_by_admin(bot, telegram)
    telegram.push_group_message(GROUP, STRANGER, "unheard: listen is off", first_name="Bob")
    await bot.idle()
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(HeardMessage)) == 0
    telegram.push_group_message(GROUP, ALLOWED, "/settings", first_name="Ann")
    await bot.idle()
    screen = telegram.sent_messages(GROUP)[-1]
    press_in_group(telegram, ALLOWED, screen, "Listen")
    await bot.idle()
    shown = screen.text or ""
    assert "Listen: on" in shown and "never answer them" in shown
    sent_before, requests = len(telegram.sent_messages(GROUP)), len(llm.requests)
    for number in range(1, 6):  # only the last 3 are kept
        telegram.push_group_message(GROUP, STRANGER, f"pizza idea {number}", first_name="Bob")
    await bot.idle()
    # Heard, never answered, and nothing asked of the model.
    assert len(telegram.sent_messages(GROUP)) == sent_before and len(llm.requests) == requests
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} which idea?", first_name="Ann")
    await bot.idle()
    asked = llm.requests[-1]["messages"][-1]["content"]
    assert "pizza idea 1" not in asked and "pizza idea 2" not in asked
    assert "Bob: pizza idea 3\nBob: pizza idea 4\nBob: pizza idea 5" in asked
    assert asked.endswith("Ann: which idea?")
    # Taken once: the next answer does not get them again as new.
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} and now?", first_name="Ann")
    await bot.idle()
    assert llm.requests[-1]["messages"][-1]["content"] == "Ann: and now?"
    # Heard again, then erased by /forget along with the conversation.
    telegram.push_group_message(GROUP, STRANGER, "secret plan", first_name="Bob")
    await bot.idle()
    telegram.push_group_message(GROUP, ALLOWED, "/forget", first_name="Ann")
    await bot.idle()
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(HeardMessage)) == 0
    # Off deletes what was heard and keeps nothing more.
    telegram.push_group_message(GROUP, STRANGER, "overheard before off", first_name="Bob")
    await bot.idle()
    press_in_group(telegram, ALLOWED, screen, "Stop listening")
    await bot.idle()
    telegram.push_group_message(GROUP, STRANGER, "after off", first_name="Bob")
    await bot.idle()
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(HeardMessage)) == 0
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} anything?", first_name="Ann")
    await bot.idle()
    assert "overheard" not in llm.requests[-1]["messages"][-1]["content"]


async def test_listening_under_privacy_mode_says_what_telegram_hands_over(
    start_bot: StartBot, telegram: FakeTelegram, llm: FakeOpenAI
) -> None:
    telegram.add_group(GROUP, admins={ALLOWED})
    telegram.privacy_mode = True
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    telegram.push_group_message(GROUP, ALLOWED, "/settings", first_name="Ann")
    await bot.idle()
    screen = telegram.sent_messages(GROUP)[-1]
    press_in_group(telegram, ALLOWED, screen, "Listen")
    await bot.idle()
    assert "privacy mode is on" in (screen.text or "")
    telegram.push_group_message(GROUP, STRANGER, "not handed to the bot", first_name="Bob")
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} what was said?", first_name="Ann")
    await bot.idle()
    assert llm.requests[-1]["messages"][-1]["content"] == "Ann: what was said?"


async def test_a_group_settings_button_pressed_in_a_private_chat_changes_nothing(
    start_bot: StartBot, telegram: FakeTelegram, db: async_sessionmaker[AsyncSession]
) -> None:
    telegram.add_group(GROUP, admins={ALLOWED})
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    admin = UserChat(bot, telegram, ADMIN)
    await admin.send("/start")
    forged = GroupSetting(field=GroupSettingField.LISTEN, value="1").pack()
    assert "no longer works" in (await admin.press_data(forged, admin.last.message_id) or "")
    async with db() as session:
        group = await session.get(Group, GROUP)
        assert group is not None and group.listen is False


async def group_row(db: async_sessionmaker[AsyncSession], chat_id: int = GROUP) -> Group:
    async with db() as session:
        group = await session.get(Group, chat_id)
    assert group is not None
    return group


async def open_card(bot: RunningBot, telegram: FakeTelegram) -> UserChat:
    admin = UserChat(bot, telegram, ADMIN)
    await admin.press("⚙️", await admin.send("/groups"))
    return admin


async def test_a_groups_card_shows_it_and_chooses_who_may_talk_there(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.add_group(GROUP, "Crew")
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    admin = await open_card(bot, telegram)
    card = admin.last.text or ""
    assert f"<b>Crew</b> · <code>{GROUP}</code>" in card
    assert "Status: allowed" in card and "Persona: Assistant" in card
    assert "Who may talk: every member (the owner's default)" in card
    assert "Budget: no limit of its own" in card
    assert "Used today: 0 in, 0 out" in card and "Used this month: 0 in, 0 out" in card
    await admin.press("Only users with access")
    assert "Who may talk: only users with access (this group's own choice)" in (
        admin.last.text or ""
    )
    assert (await group_row(db)).members is GroupMembers.ALLOWED
    telegram.push_group_message(GROUP, STRANGER, f"{at(telegram)} may I?", first_name="Bob")
    await bot.idle()
    refusal = telegram.sent_messages(GROUP)[-1]
    assert "only people with access" in (refusal.text or "")
    assert refusal.ephemeral_for == STRANGER and llm.requests == []
    # Back on the owner's default (every member): Bob is answered.
    await admin.press("Owner's default")
    assert "every member (the owner's default)" in (admin.last.text or "")
    assert (await group_row(db)).members is None
    telegram.push_group_message(GROUP, STRANGER, f"{at(telegram)} now?", first_name="Bob")
    await bot.idle()
    assert telegram.sent_messages(GROUP)[-1].text == "Echo: Bob: now?"
    await admin.press("Back")
    assert "The groups I know" in (admin.last.text or "")


async def test_a_daily_token_budget_typed_in_the_card_refuses_the_groups_questions_beyond_it(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    llm.fixed_usage = (300, 50)
    telegram.add_group(GROUP, "Crew")
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    admin = await open_card(bot, telegram)
    await admin.press("Tokens")
    await admin.press("Daily limit")
    assert "Send the group's daily limit" in (admin.last.text or "")
    for wrong in ("lots", "-5", "1.5"):
        assert "not a limit" in ((await admin.send(wrong)).text or "")
    card = (await admin.send("100")).text or ""
    assert "Budget (own): 100 tokens a day, no limit a month" in card
    group = await group_row(db)
    assert (group.budget_unit, group.budget_daily, group.budget_monthly) == (
        BudgetUnit.TOKENS,
        100,
        None,
    )
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} first?", first_name="Ann")
    await bot.idle()
    assert telegram.sent_messages(GROUP)[-1].text == "Echo: Ann: first?"
    asked, saved = len(llm.requests), await stored(db)
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} second?", first_name="Ann")
    await bot.idle()
    refusal = telegram.sent_messages(GROUP)[-1]
    assert "This group has reached its daily limit: 350 of 100 tokens" in (refusal.text or "")
    assert refusal.ephemeral_for == ALLOWED  # told to Ann alone
    assert len(llm.requests) == asked and await stored(db) == saved
    # The bot's admins are never limited, not even by a group's budget.
    telegram.push_group_message(GROUP, ADMIN, f"{at(telegram)} and me?", first_name="Boss")
    await bot.idle()
    assert telegram.sent_messages(GROUP)[-1].text == "Echo: Boss: and me?"


async def test_a_typed_limit_can_be_cancelled_and_a_forged_card_button_is_refused(
    start_bot: StartBot,
    telegram: FakeTelegram,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.add_group(GROUP, "Crew")
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    admin = await open_card(bot, telegram)
    card = admin.last
    await admin.press("Monthly limit")
    assert "cancel" in ((await admin.send("/cancel")).text or "").lower()
    assert bot.dp is not None and bot.bot is not None
    assert await bot.dp.fsm.get_context(bot.bot, ADMIN, ADMIN).get_state() is None
    assert "hello" in ((await admin.send("hello")).text or "").lower()  # a chat message again
    for forged in (
        GroupCard(chat_id=GROUP, action=GroupCardAction.UNIT, value="gold"),
        GroupCard(chat_id=GROUP, action=GroupCardAction.MEMBERS, value="nobody"),
        GroupCard(chat_id=GROUP, action=GroupCardAction.LIMIT, value="weekly"),
    ):
        answer = await admin.press_data(forged.pack(), card.message_id)
        assert "no longer works" in (answer or "")
    group = await group_row(db)
    assert (group.budget_unit, group.members) == (None, None)
    gone = GroupCard(chat_id=-100555).pack()
    assert "no longer in that group" in (await admin.press_data(gone, card.message_id) or "")


async def test_a_groups_card_shows_its_usage_rising_after_an_answer(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    llm.fixed_usage = (1000, 500)
    telegram.add_group(GROUP, "Crew")
    settings = make_settings()
    prices = BudgetSettings(prices={"test-model": (1.0, 2.0)}, _env_file=None)
    bot = await start_bot(dataclasses.replace(settings, budget=prices))
    await added_by_admin(bot, telegram)
    admin = await open_card(bot, telegram)
    assert "Used today: 0 in, 0 out · $0.00" in (admin.last.text or "")
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} hi", first_name="Ann")
    await bot.idle()
    await admin.press("⚙️", await admin.send("/groups"))
    card = admin.last.text or ""
    assert "Used today: 1,000 in, 500 out · $0.002" in card
    assert "Used this month: 1,000 in, 500 out · $0.002" in card


async def test_a_voice_reply_and_a_file_mentioning_the_bot_are_heard_and_read_in_a_group(
    start_bot: StartBot,
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: async_sessionmaker[AsyncSession],
) -> None:
    telegram.add_group(GROUP)
    bot = await start_bot()
    await added_by_admin(bot, telegram)
    telegram.push_group_message(GROUP, ALLOWED, f"{at(telegram)} hello", first_name="Ann")
    await bot.idle()
    answer = telegram.sent_messages(GROUP)[-1]
    recording = b"OggS" + bytes(range(256)) * 4
    llm.transcripts[recording] = "what about tomorrow?"
    voice = telegram.recording(recording, 3)
    said = telegram.push_group_message(
        GROUP, STRANGER, "", first_name="Bob", reply_to=answer.message_id, extra={"voice": voice}
    )
    await bot.idle()
    assert llm.requests[-1]["messages"][-1]["content"] == "Bob: what about tomorrow?"
    reply = telegram.sent_messages(GROUP)[-1]
    assert reply.raw["reply_to_message"]["message_id"] == said["message"]["message_id"]
    # A file with the mention in its caption is read, and asked about with its caption.
    caption = f"{at(telegram)} what is the total?"
    entities = [{"type": "mention", "offset": 0, "length": len(at(telegram))}]
    document = telegram.document(b"milk 2.50\nbread 1.20\ntotal 3.70\n", "receipt.txt")
    telegram.push_group_message(
        GROUP,
        ALLOWED,
        "",
        first_name="Ann",
        extra={"document": document, "caption": caption, "caption_entities": entities},
    )
    await bot.idle()
    asked = str(llm.requests[-1]["messages"][-1]["content"])
    assert asked.startswith("Ann: ") and "total 3.70" in asked and "what is the total?" in asked
    async with db() as session:
        sources = (await session.scalars(select(Message.source).order_by(Message.id))).all()
    assert [s.value for s in sources[::2]] == ["text", "voice", "document"]
