"""End to end: usage recorded from the API's report, budgets before the model, and /usage."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import BudgetSettings, MemorySettings, Settings
from app.db.models import Message, Usage, User
from app.db.usage import UsageRepository
from app.domain.enums import BudgetUnit
from app.factory import resources_of
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.fakes.openai import count_tokens
from tests.harness import ADMIN, ALLOWED, StartBot, UserChat

Db = async_sessionmaker[AsyncSession]
# A fixed "now" for the bot: 2 h 30 min before the day ends, 16 days before the month does.
NOW = datetime(2030, 5, 15, 21, 30, tzinfo=UTC)
TODAY = NOW.date()
MODEL = "test-model"
SUMMARY = "The user plants tomatoes and keeps a diary."
FILLER = "and then we talked about the weather, the trains and the long weekend plans " * 4
UsageRow = tuple[int, date, str, int, int, int, float]


def with_budget(settings: Settings, **budget: Any) -> Settings:
    return dataclasses.replace(settings, budget=BudgetSettings(**budget, _env_file=None))


async def start(start_bot: StartBot, settings: Settings, telegram: FakeTelegram) -> UserChat:
    """The bot, living at NOW, and the allowed user's chat with it."""
    bot = await start_bot(settings)
    assert bot.dp is not None
    resources_of(bot.dp).usage.clock = lambda: NOW
    return UserChat(bot, telegram, ALLOWED)


async def usage_rows(db: Db) -> list[UsageRow]:
    async with db() as session:
        rows = await session.execute(
            select(
                Usage.user_id,
                Usage.day,
                Usage.model,
                Usage.requests,
                Usage.prompt_tokens,
                Usage.completion_tokens,
                Usage.cost,
            ).order_by(Usage.user_id, Usage.day, Usage.model)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def spent_before(
    db: Db, user_id: int, day: date, prompt: int, completion: int = 0, cost: float = 0.0
) -> None:
    async with db() as session, session.begin():
        await UsageRepository(session).add(
            user_id=user_id,
            day=day,
            model=MODEL,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=cost,
        )


async def set_own_budget(
    db: Db,
    user_id: int,
    unit: BudgetUnit | None,
    daily: float | None = None,
    monthly: float | None = None,
) -> None:
    async with db() as session, session.begin():
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(budget_unit=unit, budget_daily=daily, budget_monthly=monthly)
        )


async def stored_texts(db: Db) -> list[str]:
    async with db() as session:
        rows = await session.scalars(
            select(Message.content).where(Message.user_id == ALLOWED).order_by(Message.id)
        )
        return list(rows)


# --- recording -----------------------------------------------------------------------------------


async def test_a_streamed_answer_records_the_usage_the_server_reported(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    llm.fixed_usage = (1234, 56)  # not what we would count: proves whose numbers are kept
    user = await start(start_bot, make_settings(), telegram)
    assert (await user.send("hello")).plain_text == "Echo: hello"
    assert llm.requests[0]["stream_options"] == {"include_usage": True}
    assert await usage_rows(db) == [(ALLOWED, TODAY, MODEL, 1, 1234, 56, 0.0)]


async def test_a_server_that_refuses_stream_options_is_asked_without_them(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    llm.strict_fields = True
    user = await start(start_bot, make_settings(), telegram)
    assert (await user.send("hello")).plain_text == "Echo: hello"
    assert (await user.send("again")).plain_text == "Echo: again"
    # Refused once, asked again without the option, and never asked with it since.
    asked = ["stream_options" in body for body in llm.requests]
    assert asked == [True, False, False]
    rows = await usage_rows(db)
    assert len(rows) == 1 and rows[0][3] == 2  # both answers counted by us


async def test_without_a_reported_usage_our_exact_counts_are_recorded(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    llm.report_usage = False
    user = await start(start_bot, make_settings(), telegram)
    await user.send("hello there")
    await user.send("and again")
    prompt = sum(llm.prompt_tokens)  # the fake counts as OpenAI does
    completion = count_tokens("Echo: hello there") + count_tokens("Echo: and again")
    assert await usage_rows(db) == [(ALLOWED, TODAY, MODEL, 2, prompt, completion, 0.0)]


async def test_a_stream_cut_on_every_attempt_records_what_each_attempt_streamed(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    llm.reply = "alpha beta gamma delta epsilon zeta eta theta"
    user = await start(start_bot, make_settings(), telegram)
    llm.cut_stream_next(after_chunks=4, times=3)  # the role chunk and three words, thrice
    assert "cut off" in ((await user.send("greek letters")).plain_text or "")
    prompt = llm.prompt_tokens[0]
    assert await usage_rows(db) == [(ALLOWED, TODAY, MODEL, 3, 3 * prompt, 9, 0.0)]


async def test_a_failed_request_records_nothing(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    user = await start(start_bot, make_settings(), telegram)
    llm.fail_next(500)
    await user.send("hello")
    assert await usage_rows(db) == []


async def test_each_model_has_its_own_row_priced_from_the_table(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    # Per million tokens: 1 and 2 units a token for test-model, 10 and 20 for big-model.
    prices = {MODEL: (1_000_000.0, 2_000_000.0), "big-model": (10_000_000.0, 20_000_000.0)}
    llm.fixed_usage = (3, 4)
    settings = with_budget(make_settings(models=("big-model",)), prices=prices)
    user = await start(start_bot, settings, telegram)
    await user.send("one")
    async with db() as session, session.begin():
        await session.execute(update(User).where(User.id == ALLOWED).values(model="big-model"))
    await user.send("two")
    await user.send("three")
    assert await usage_rows(db) == [
        (ALLOWED, TODAY, "big-model", 2, 6, 8, 2 * (3 * 10 + 4 * 20)),
        (ALLOWED, TODAY, MODEL, 1, 3, 4, 3 * 1 + 4 * 2),
    ]


def memory_settings() -> MemorySettings:
    return MemorySettings(
        summary_share=0.3,
        summary_min_tokens=50,
        summary_max_tokens=120,
        summary_retry_seconds=0,
        summary_model="cheap-model",
        titles=False,
        profile=False,
        _env_file=None,
    )


async def summarised_conversation(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    """Talk until the conversation has been summarised a few times."""
    llm.reply = lambda body: SUMMARY if not body.get("stream") else "Noted."
    settings = make_settings(
        context_window=1_200,
        max_answer_tokens=150,
        safety_margin_tokens=0,
        memory=memory_settings(),
    )
    user = await start(start_bot, settings, telegram)
    assert user.bot.dp is not None
    summarizer = resources_of(user.bot.dp).summarizer
    for i in range(16):
        await user.send(f"note {i}: {FILLER}")
        await summarizer.drain(10.0)
    assert any(not r.stream for r in llm.records), "nothing was summarised"


async def test_the_summarisers_calls_are_recorded_for_the_user_from_the_servers_report(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    llm.fixed_usage = (1000, 100)
    await summarised_conversation(start_bot, make_settings, telegram, llm)
    calls = sum(1 for r in llm.records if not r.stream and r.status == 200)
    assert (ALLOWED, TODAY, "cheap-model", calls, 1000 * calls, 100 * calls, 0.0) in (
        await usage_rows(db)
    )


async def test_without_a_reported_usage_the_summarisers_calls_are_counted_exactly(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    llm.report_usage = False
    await summarised_conversation(start_bot, make_settings, telegram, llm)
    summaries = [r for r in llm.records if not r.stream and r.status == 200]
    prompt = sum(r.prompt_tokens for r in summaries)
    completion = sum(r.completion_tokens for r in summaries)
    rows = [row for row in await usage_rows(db) if row[2] == "cheap-model"]
    assert rows == [(ALLOWED, TODAY, "cheap-model", len(summaries), prompt, completion, 0.0)]


# --- budgets -------------------------------------------------------------------------------------


async def test_one_token_below_the_daily_limit_a_message_is_still_answered(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    llm.fixed_usage = (900, 99)
    user = await start(start_bot, with_budget(make_settings(), daily=1000), telegram)
    await user.send("first")
    assert (await user.send("second")).plain_text == "Echo: second"  # 999 of 1,000 spent
    assert len(llm.requests) == 2


async def test_at_the_daily_limit_a_message_is_refused_with_the_reset_time(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    llm.fixed_usage = (900, 100)
    user = await start(start_bot, with_budget(make_settings(), daily=1000), telegram)
    await user.send("first")
    refusal = (await user.send("second")).plain_text or ""
    assert "daily limit" in refusal
    assert "1,000 of 1,000 tokens" in refusal
    assert "2030-05-16 00:00 UTC (in 2 h 30 min)" in refusal


async def test_a_refused_message_is_neither_sent_to_the_model_nor_stored(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    user = await start(start_bot, with_budget(make_settings(), daily=1000), telegram)
    await spent_before(db, ALLOWED, TODAY, 1000)
    await user.send("over the limit")
    assert llm.requests == []
    assert await stored_texts(db) == []


async def test_retry_and_edits_are_refused_over_budget_too(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    user = await start(start_bot, with_budget(make_settings(), daily=1000), telegram)
    await user.send("question")
    await spent_before(db, ALLOWED, TODAY, 1000)
    assert "daily limit" in ((await user.send("/retry")).plain_text or "")
    sent = telegram.user_messages(ALLOWED)[0]
    telegram.push_edited_message(ALLOWED, sent["message_id"], "question, edited")
    await user.bot.idle()
    assert "daily limit" in (user.last.plain_text or "")
    assert len(llm.requests) == 1
    assert await stored_texts(db) == ["question", "Echo: question"]


async def test_at_the_limit_in_money_a_message_is_refused(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
) -> None:
    llm.fixed_usage = (2, 3)  # $5 at a dollar a token
    settings = with_budget(
        make_settings(),
        prices={MODEL: (1_000_000.0, 1_000_000.0)},
        unit=BudgetUnit.MONEY,
        daily=5,
    )
    user = await start(start_bot, settings, telegram)
    assert (await user.send("first")).plain_text == "Echo: first"
    refusal = (await user.send("second")).plain_text or ""
    assert "daily limit: $5.00 of $5.00 used today" in refusal
    assert len(llm.requests) == 1


async def test_spending_earlier_this_month_counts_against_the_monthly_limit(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    user = await start(start_bot, with_budget(make_settings(), monthly=5000), telegram)
    await spent_before(db, ALLOWED, date(2030, 4, 30), 100_000)  # last month: forgotten
    await spent_before(db, ALLOWED, date(2030, 5, 1), 4000)
    await spent_before(db, ALLOWED, TODAY, 1000)
    refusal = (await user.send("hello")).plain_text or ""
    assert "monthly limit: 5,000 of 5,000 tokens used this month" in refusal
    assert "2030-06-01 00:00 UTC (in 16 d 2 h)" in refusal
    assert llm.requests == []


async def test_yesterdays_spending_does_not_count_against_the_daily_limit(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    user = await start(start_bot, with_budget(make_settings(), daily=1000), telegram)
    await spent_before(db, ALLOWED, date(2030, 5, 14), 50_000)
    assert (await user.send("hello")).plain_text == "Echo: hello"


async def test_a_users_own_limits_replace_the_owners_defaults(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    user = await start(start_bot, with_budget(make_settings(), daily=1000), telegram)
    await spent_before(db, ALLOWED, TODAY, 5000)
    # Their own budget in tokens with no limits: unlimited, whatever the owner's default.
    await set_own_budget(db, ALLOWED, BudgetUnit.TOKENS)
    assert (await user.send("mine")).plain_text == "Echo: mine"
    # Their own lower limit applies instead of the default.
    await set_own_budget(db, ALLOWED, BudgetUnit.TOKENS, monthly=10)
    assert "monthly limit" in ((await user.send("lower")).plain_text or "")
    # Back to the owner's default.
    await set_own_budget(db, ALLOWED, None)
    assert "daily limit" in ((await user.send("default")).plain_text or "")
    assert len(llm.requests) == 1


async def test_admins_are_never_limited(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    bot = (await start(start_bot, with_budget(make_settings(), daily=1000), telegram)).bot
    await spent_before(db, ADMIN, TODAY, 50_000)
    await set_own_budget(db, ADMIN, BudgetUnit.TOKENS, daily=1)
    admin = UserChat(bot, telegram, ADMIN)
    assert (await admin.send("hello")).plain_text == "Echo: hello"


# --- /usage --------------------------------------------------------------------------------------


async def test_usage_shows_today_and_this_month_against_the_limits(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    llm.fixed_usage = (300, 50)
    user = await start(
        start_bot, with_budget(make_settings(), daily=1000, monthly=20_000), telegram
    )
    await spent_before(db, ALLOWED, date(2030, 5, 2), 1000, 200)
    await user.send("hello")
    text = (await user.send("/usage")).plain_text or ""
    today, month = text.split("This month")
    assert "Tokens: 300 in, 50 out" in today
    assert "Requests: 1" in today
    assert "Daily limit: 1,000 tokens; 650 tokens left; resets 2030-05-16 00:00 UTC" in today
    assert "in 2 h 30 min" in today
    assert "Tokens: 1,300 in, 250 out" in month
    assert "Requests: 2" in month
    assert "Monthly limit: 20,000 tokens; 18,450 tokens left; resets 2030-06-01 00:00" in month
    assert "Cost" not in text  # no prices configured
    assert "•" not in text  # one model: no breakdown


async def test_usage_without_limits_says_so_and_shows_cost_and_models(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
    llm: FakeOpenAI,
    db: Db,
) -> None:
    llm.fixed_usage = (1000, 500)
    prices = {MODEL: (1.0, 2.0), "big-model": (10.0, 20.0)}
    settings = with_budget(make_settings(models=("big-model",)), prices=prices)
    user = await start(start_bot, settings, telegram)
    await user.send("one")
    async with db() as session, session.begin():
        await session.execute(update(User).where(User.id == ALLOWED).values(model="big-model"))
    await user.send("two")
    text = (await user.send("/usage")).plain_text or ""
    assert "Daily limit: none." in text and "Monthly limit: none." in text
    assert "Cost: $0.022" in text  # 0.002 + 0.02
    assert "• big-model: 1,000 in, 500 out, $0.02, 1 request" in text
    assert "• test-model: 1,000 in, 500 out, $0.002, 1 request" in text


async def test_usage_tells_admins_they_are_not_limited(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
) -> None:
    bot = (await start(start_bot, with_budget(make_settings(), daily=1000), telegram)).bot
    text = (await UserChat(bot, telegram, ADMIN).send("/usage")).plain_text or ""
    assert "You are an admin: no limits apply to you." in text
    assert "limit:" not in text


async def test_usage_of_a_user_who_spent_nothing_shows_zeros(
    start_bot: StartBot,
    make_settings: Callable[..., Settings],
    telegram: FakeTelegram,
) -> None:
    user = await start(start_bot, make_settings(), telegram)
    text = (await user.send("/usage")).plain_text or ""
    assert text.count("Tokens: 0 in, 0 out") == 2
    assert text.count("Requests: 0") == 2
