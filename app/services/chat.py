"""Answering one chat message: budget check, store, assemble, stream the model, store the answer."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiogram import Bot
from aiogram.utils.chat_action import ChatActionSender
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.config import ChatSettings, OpenAISettings
from app.db.engine import WriteGate
from app.db.models import AnswerLength, MemoryMode
from app.delivery.stream import AnswerStream, DraftSupport
from app.llm.chat import ChatRequest, LLMError, StreamReport, TokenUsage, stream_answer
from app.memory.context import (
    Assembled,
    ContextBuilder,
    MessageTooLong,
    PersonaTooLarge,
    Turn,
)
from app.memory.service import Conversation, MemoryService
from app.memory.summary import Summarizer
from app.services.refs import PersonaRef
from app.services.usage import UsageService
from app.views.usage import budget_refusal

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UserSettings:
    """A user's choices, with the owner's defaults filled in."""

    persona: PersonaRef
    model: str
    temperature: float
    mode: MemoryMode = MemoryMode.CHAT
    answer_length: AnswerLength = AnswerLength.NORMAL
    # Whether any budget limit applies (the user's own or the owner's; never to admins).
    limited: bool = False


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
        settings: UserSettings,
        text: str,
        draft_id: int,
        telegram_message_id: int | None = None,
    ) -> None:
        if await self._over_budget(bot, session, chat_id, user_id, settings):
            return
        turn = self.memory.user_turn(text)
        builder = await self._builder(bot, session, chat_id, settings, turn)
        if builder is None:
            return
        async with self.gate.section(session):
            conversation = await self.memory.conversation(session, user_id, settings.persona.id)
            # Read first, then write and commit at once: on SQLite the write lock is held for
            # the insert alone, not across the reads (bench/load.py showed writers queueing).
            assembled = await self.memory.assemble(session, builder, conversation, query=text)
            await self.memory.remember(session, conversation, turn, telegram_message_id)
            # The user's message is safe before the model is called, and no transaction is
            # held open while the answer streams.
            await session.commit()
        await self._answer(bot, session, chat_id, conversation, assembled, settings, draft_id)

    async def retry(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        settings: UserSettings,
        draft_id: int,
    ) -> None:
        """Answer the user's newest message again; the old answer leaves the history."""
        conversation = await self.memory.conversation(session, user_id, settings.persona.id)
        last = await self.memory.last_user_turn(session, conversation)
        if last is None or last.id is None:
            await bot.send_message(chat_id, texts.nothing_to_retry())
            return
        if await self._over_budget(bot, session, chat_id, user_id, settings):
            return
        builder = await self._builder(bot, session, chat_id, settings, last)
        if builder is None:
            return
        assembled = await self.memory.assemble(
            session, builder, conversation, before_id=last.id, query=last.content
        )
        await self.memory.forget_answer(session, conversation, last.id)
        await session.commit()
        await self._answer(bot, session, chat_id, conversation, assembled, settings, draft_id)

    async def edit(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        settings: UserSettings,
        text: str,
        telegram_message_id: int,
        draft_id: int,
    ) -> None:
        """An edited message: the newest one is answered anew, an older one only noted."""
        conversation = await self.memory.conversation(session, user_id, settings.persona.id)
        found = await self.memory.find_user_message(session, user_id, telegram_message_id)
        last = await self.memory.last_user_turn(session, conversation)
        if found is None or last is None or found != (conversation.id, last.id):
            await bot.send_message(chat_id, texts.edit_of_older_message())
            return
        if await self._over_budget(bot, session, chat_id, user_id, settings):
            return
        builder = await self._builder(bot, session, chat_id, settings, self.memory.user_turn(text))
        if builder is None:
            return
        assembled = await self.memory.assemble(
            session, builder, conversation, before_id=found[1], query=text
        )
        await self.memory.replace_user_turn(session, conversation, found[1], text)
        await session.commit()
        await self._answer(bot, session, chat_id, conversation, assembled, settings, draft_id)

    async def _over_budget(
        self, bot: Bot, session: AsyncSession, chat_id: int, user_id: int, settings: UserSettings
    ) -> bool:
        """True once a user over a limit is told which and when it resets: the message then
        goes neither to the model nor into the history."""
        if self.usage is None or not settings.limited:
            return False  # admins, and everyone while no budget is set: no query at all
        over = await self.usage.check(session, user_id)
        if over is None:
            return False
        await bot.send_message(chat_id, budget_refusal(over, self.usage.currency))
        return True

    async def _builder(
        self, bot: Bot, session: AsyncSession, chat_id: int, settings: UserSettings, turn: Turn
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
        persona = await self.memory.persona_memory(session, settings.persona)
        try:
            return self.memory.builder(
                persona, turn, settings.model, settings.mode, settings.answer_length
            )
        except PersonaTooLarge as exc:
            log.warning(
                "Persona %r (id %s) is too large for model %s: %s",
                persona.name,
                settings.persona.id,
                settings.model,
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
        conversation: Conversation,
        assembled: Assembled,
        settings: UserSettings,
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
            model=settings.model,
            messages=assembled.as_api(),
            max_answer_tokens=(
                assembled.breakdown.answer_reserve
                if assembled.breakdown
                else self.openai.max_answer_tokens
            ),
            temperature=settings.temperature,
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
                await self._record_alone(session, conversation.user_id, settings.model, usage)
            return
        if not answer.strip():
            log.warning("The model returned an empty answer for user %s", conversation.user_id)
            await bot.send_message(chat_id, texts.empty_answer())
            usage = report.usage or TokenUsage(
                assembled.prompt_tokens, self.memory.counter.text(answer)
            )
            await self._record_alone(session, conversation.user_id, settings.model, usage)
            return
        turn = Turn("assistant", answer, self.memory.counter.message("assistant", answer))
        # The server's own figures; without them our exact counts of what was sent and said.
        usage = report.usage or TokenUsage(
            assembled.prompt_tokens, turn.tokens - self._answer_overhead
        )
        # Stored while it is delivered: neither waits for the other, and a Telegram failure
        # cannot lose what the model said.
        results = await asyncio.gather(
            self._store(session, conversation, turn, settings.model, usage),
            stream.finish(answer),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self._summarise_later(conversation, assembled)

    def _summarise_later(self, conversation: Conversation, assembled: Assembled) -> None:
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
        conversation: Conversation,
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
            await self.usage.record(
                session,
                user_id=user_id,
                model=model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
