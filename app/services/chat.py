"""Answering one chat message: budget check, store, assemble, stream the model, store the answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.utils.chat_action import ChatActionSender
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.config import ChatSettings, OpenAISettings
from app.db.engine import WriteGate
from app.delivery.stream import AnswerStream, DraftSupport
from app.domain.users import Preferences
from app.llm.chat import ChatRequest, LLMError, StreamReport, TokenUsage, stream_answer
from app.memory.context import (
    Assembled,
    ContextBuilder,
    MessageTooLong,
    PersonaTooLarge,
    Turn,
)
from app.memory.service import CurrentConversation, MemoryService
from app.memory.summary import Summarizer
from app.services.usage import BudgetRefused, UsageService

log = logging.getLogger(__name__)


class ChatService:
    """The conversation pipeline behind every text message of an allowed user."""

    def __init__(
        self,
        memory: MemoryService,
        llm: AsyncOpenAI,
        openai_settings: OpenAISettings,
        chat_settings: ChatSettings,
        *,
        summarizer: Summarizer | None = None,
        usage: UsageService | None = None,
        gate: WriteGate | None = None,
        stream_interval: float = 1.0,
    ) -> None:
        self.memory = memory
        # The chat path's database work goes through it (app/db/engine.py WriteGate).
        self.gate = gate or WriteGate()
        self.summarizer = summarizer
        self.usage = usage
        self.llm = llm
        self.openai = openai_settings
        self.chat = chat_settings
        self.stream_interval = stream_interval
        self.drafts = DraftSupport()
        # An answer's stored count minus this is its completion tokens (our fallback count
        # when the server reports no usage).
        self._answer_overhead = memory.counter.message("assistant", "")

    async def reply(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        preferences: Preferences,
        text: str,
        draft_id: int,
        telegram_message_id: int | None = None,
    ) -> None:
        await self._check_budget(session, user_id, preferences)
        turn = self.memory.user_turn(text)
        builder = await self._builder(bot, session, chat_id, preferences, turn)
        if builder is None:
            return
        async with self.gate.section(session):
            conversation = await self.memory.conversation(session, user_id, preferences.persona.id)
            # Read first, then write and commit at once: on SQLite the write lock is held for
            # the insert alone, not across the reads (bench/load.py showed writers queueing).
            assembled = await self.memory.assemble(session, builder, conversation, query=text)
            await self.memory.remember(session, conversation, turn, telegram_message_id)
            # The user's message is safe before the model is called, and no transaction is
            # held open while the answer streams.
            await session.commit()
        await self._answer(bot, session, chat_id, conversation, assembled, preferences, draft_id)

    async def retry(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        preferences: Preferences,
        draft_id: int,
    ) -> None:
        """Answer the user's newest message again; the old answer leaves the history."""
        conversation = await self.memory.conversation(session, user_id, preferences.persona.id)
        last = await self.memory.last_user_turn(session, conversation)
        if last is None or last.id is None:
            await bot.send_message(chat_id, texts.nothing_to_retry())
            return
        turn_id = last.id

        async def forget_answer() -> None:
            await self.memory.forget_answer(session, conversation, turn_id)

        await self._answer_again(
            bot, session, chat_id, preferences, conversation, turn_id, last, forget_answer, draft_id
        )

    async def edit(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        preferences: Preferences,
        text: str,
        telegram_message_id: int,
        draft_id: int,
    ) -> None:
        """An edited message: the newest one is answered anew, an older one only noted."""
        conversation = await self.memory.conversation(session, user_id, preferences.persona.id)
        found = await self.memory.find_user_message(session, user_id, telegram_message_id)
        last = await self.memory.last_user_turn(session, conversation)
        if found is None or last is None or found != (conversation.id, last.id):
            await bot.send_message(chat_id, texts.edit_of_older_message())
            return
        turn_id = found[1]

        async def replace_turn() -> None:
            await self.memory.replace_user_turn(session, conversation, turn_id, text)

        turn = self.memory.user_turn(text)
        await self._answer_again(
            bot, session, chat_id, preferences, conversation, turn_id, turn, replace_turn, draft_id
        )

    async def _answer_again(
        self,
        bot: Bot,
        session: AsyncSession,
        chat_id: int,
        preferences: Preferences,
        conversation: CurrentConversation,
        turn_id: int,
        turn: Turn,
        change: Callable[[], Awaitable[None]],
        draft_id: int,
    ) -> None:
        """Answer stored turn `turn_id` anew, as `turn`, after `change` rewrites the history
        (the old answer dropped, or the turn's new text). Like a new message, its reads, write
        and commit take the write gate: on SQLite they contend for the same lock. Only reads
        come before it, since a conversation started just now has no turn to answer again."""
        await self._check_budget(session, conversation.user_id, preferences)
        builder = await self._builder(bot, session, chat_id, preferences, turn)
        if builder is None:
            return
        async with self.gate.section(session):
            assembled = await self.memory.assemble(
                session, builder, conversation, before_id=turn_id, query=turn.content
            )
            await change()
            await session.commit()
        await self._answer(bot, session, chat_id, conversation, assembled, preferences, draft_id)

    async def _check_budget(
        self, session: AsyncSession, user_id: int, preferences: Preferences
    ) -> None:
        """Raises BudgetRefused for a user over a limit: the message then goes neither to
        the model nor into the history."""
        if self.usage is None or not preferences.limited:
            return  # admins, and everyone while no budget is set: no query at all
        reached = await self.usage.check(session, user_id)
        if reached is not None:
            raise BudgetRefused(reached, self.usage.currency)

    async def _builder(
        self, bot: Bot, session: AsyncSession, chat_id: int, preferences: Preferences, turn: Turn
    ) -> ContextBuilder | None:
        """The request's budget for this message, or None once the user is told why not."""
        text = turn.content
        if not text.strip():
            await bot.send_message(chat_id, texts.empty_message())
            return None
        if len(text) > self.chat.max_input_chars:
            await bot.send_message(
                chat_id, texts.too_many_characters(len(text), self.chat.max_input_chars)
            )
            return None
        persona = await self.memory.persona_memory(session, preferences.persona)
        try:
            return self.memory.builder(
                persona, turn, preferences.model, preferences.mode, preferences.answer_length
            )
        except PersonaTooLarge as exc:
            log.warning(
                "Persona %r (id %s) is too large for model %s: %s",
                persona.name,
                preferences.persona.id,
                preferences.model,
                exc,
            )
            await bot.send_message(
                chat_id, texts.persona_too_large(persona.name, exc.persona_tokens, exc.limit)
            )
        except MessageTooLong as exc:
            await bot.send_message(chat_id, texts.message_too_long(exc.message_tokens, exc.limit))
        return None

    async def _answer(
        self,
        bot: Bot,
        session: AsyncSession,
        chat_id: int,
        conversation: CurrentConversation,
        assembled: Assembled,
        preferences: Preferences,
        draft_id: int,
    ) -> None:
        """Stream the model's answer to the chat, then store it: an error stores nothing."""
        log.debug(
            "Request for user %s: %d prompt tokens, %d history turns",
            conversation.user_id,
            assembled.prompt_tokens,
            assembled.history_turns,
        )
        request = ChatRequest(
            model=preferences.model,
            messages=assembled.as_api(),
            max_answer_tokens=(
                assembled.breakdown.answer_reserve
                if assembled.breakdown
                else self.openai.max_answer_tokens
            ),
            temperature=preferences.temperature,
            use_max_completion_tokens=self.openai.is_public_openai,
        )
        stream = AnswerStream(
            bot, chat_id, draft_id, drafts=self.drafts, interval=self.stream_interval
        )
        answer = ""
        report = StreamReport()
        try:
            chunks = stream_answer(self.llm, request, report)
            async with ChatActionSender.typing(bot=bot, chat_id=chat_id):
                answer = await anext(chunks, "")
            await stream.show(answer)
            async for delta in chunks:
                answer += delta
                await stream.show(answer)
        except LLMError as exc:
            log.warning(
                "Model call failed for user %s (%s): %s", conversation.user_id, exc.kind, exc
            )
            if answer.strip():
                await stream.finish(answer + "\n\n" + texts.answer_interrupted(exc.kind))
            else:
                await bot.send_message(chat_id, texts.model_failed(exc.kind))
            # What was streamed before the failure was paid for; a request that failed
            # before any output reports nothing and costs nothing.
            if report.usage is not None or answer:
                usage = report.usage or TokenUsage(
                    assembled.prompt_tokens, self.memory.counter.text(answer)
                )
                await self._record_alone(session, conversation.user_id, preferences.model, usage)
            return
        if not answer.strip():
            log.warning("The model returned an empty answer for user %s", conversation.user_id)
            await bot.send_message(chat_id, texts.empty_answer())
            usage = report.usage or TokenUsage(
                assembled.prompt_tokens, self.memory.counter.text(answer)
            )
            await self._record_alone(session, conversation.user_id, preferences.model, usage)
            return
        turn = self.memory.answer_turn(answer)
        # The server's own figures; without them our exact counts of what was sent and said.
        usage = report.usage or TokenUsage(
            assembled.prompt_tokens, turn.tokens - self._answer_overhead
        )
        # Stored while it is delivered: neither waits for the other, and a Telegram failure
        # cannot lose what the model said.
        results = await asyncio.gather(
            self._store(session, conversation, turn, preferences.model, usage),
            stream.finish(answer),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self._summarise_later(conversation, assembled)

    def _summarise_later(self, conversation: CurrentConversation, assembled: Assembled) -> None:
        """Turns left out of this request go into the summary, after the answer is out."""
        breakdown = assembled.breakdown
        if (
            self.summarizer is None
            or not assembled.truncated
            or assembled.oldest_recent_id is None
            or breakdown is None
        ):
            return
        limit = int(breakdown.conversation_budget * self.memory.shares.summary)
        self.summarizer.schedule(
            conversation.id, assembled.oldest_recent_id, limit, user_id=conversation.user_id
        )

    async def _store(
        self,
        session: AsyncSession,
        conversation: CurrentConversation,
        turn: Turn,
        model: str,
        usage: TokenUsage,
    ) -> None:
        """The answer and what it cost, in one commit: no round trip of its own for usage."""
        async with self.gate.section(session):
            await self.memory.remember(session, conversation, turn)
            await self._record(session, conversation.user_id, model, usage)
            await session.commit()

    async def _record_alone(
        self, session: AsyncSession, user_id: int, model: str, usage: TokenUsage
    ) -> None:
        """The usage of a request whose answer is not stored, after the user was told."""
        if self.usage is not None:
            await self._record(session, user_id, model, usage)
            await session.commit()

    async def _record(
        self, session: AsyncSession, user_id: int, model: str, usage: TokenUsage
    ) -> None:
        if self.usage is not None:
            await self.usage.record(session, user_id=user_id, model=model, usage=usage)
