"""Answering one chat message: budget check, store, assemble, stream the model, store the answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.chat_action import ChatActionSender
from aiogram.utils.i18n import get_i18n
from openai import AsyncOpenAI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app import texts
from app.config import ChatSettings, OpenAISettings
from app.db.engine import WriteGate
from app.delivery.errors import NotBotApiAnswer
from app.delivery.guest import GuestAnswer
from app.delivery.pacing import ChatPacer
from app.delivery.stream import AnswerStream, DraftSupport
from app.domain.enums import MessageSource, ReasoningDisplay
from app.domain.groups import ChatPlace
from app.domain.media import ImageFile, Picture
from app.domain.tools import ToolCall, round_messages
from app.domain.users import Preferences
from app.llm.chat import (
    ChatRequest,
    Delta,
    FailureKind,
    LLMError,
    StreamReport,
    TokenUsage,
    stream_answer,
)
from app.memory.context import Assembled, ContextBuilder, MessageTooLong, PersonaTooLarge, Turn
from app.memory.profile import ProfileWriter
from app.memory.service import CurrentConversation, MemoryService, Sight
from app.memory.summary import Summarizer
from app.services.documents import ReadDocument
from app.services.generations import Generation, Generations
from app.services.pictures import PictureRefused, Pictures
from app.services.recovery import InterruptedAnswers
from app.services.shared_stops import SharedStops
from app.services.tools import Round, ToolOffer, ToolService
from app.services.usage import UsageService
from app.tools.base import ToolContext

log = logging.getLogger(__name__)

# Where an answer streams to: a chat, or a guest query's one message.
Delivery = AnswerStream | GuestAnswer

# Failures a second attempt almost always cures: the stream broke off, or the connection
# dropped. (Timeouts are not among them: a slow server would keep the user waiting twice.)
HEALABLE = frozenset({FailureKind.INTERRUPTED, FailureKind.CONNECTION})
# Seconds before the first new attempt at a cut stream; doubled for each one after it.
STREAM_RETRY_DELAY = 0.25
# Said to the model, not to the user, when the user asks it to go on with an answer cut at
# the length limit: English, like the answer-length instructions.
CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off by the length limit. Continue it exactly where it "
    "stopped, without repeating anything and without any preamble."
)


@dataclass(slots=True)
class _Attempt:
    """What one request to the model has produced so far."""

    content: str = ""
    reasoning: str = ""
    report: StreamReport = field(default_factory=StreamReport)
    stopped: bool = False  # the user pressed stop (or sent /stop)
    # What the request's prompt takes by our count (the answer's earlier tool rounds and
    # the tools' schemas included): its usage when the server reports none.
    prompt_tokens: int = 0

    @property
    def produced(self) -> bool:
        return bool(self.content or self.reasoning)

    def add(self, delta: Delta) -> None:
        self.content += delta.content
        self.reasoning += delta.reasoning


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
        continue_keyboard: Callable[[int], InlineKeyboardMarkup | None] = lambda _: None,
        shared_stops: SharedStops | None = None,
        recovery: InterruptedAnswers | None = None,
        pictures: Pictures | None = None,
        pacer: ChatPacer | None = None,
        profile_writer: ProfileWriter | None = None,
        tools: ToolService | None = None,
    ) -> None:
        self.memory = memory
        # The tools offered to the model, and running its calls (app/services/tools.py).
        self.tools = tools
        # Keeps each user's profile up to date from their private messages.
        self.profile_writer = profile_writer
        # Keeps each group under Telegram's per-group limit (app/delivery/pacing.py).
        self.pacer = pacer or ChatPacer()
        # The bytes of the images users send (app/services/pictures.py).
        self.pictures = pictures or Pictures(download_limit=None)
        # The chat path's database work goes through it (app/db/engine.py WriteGate).
        self.gate = gate or WriteGate()
        self.summarizer = summarizer
        self.usage = usage
        self.llm = llm
        self.openai = openai_settings
        self.chat = chat_settings
        self.stream_interval = stream_interval
        self.drafts = DraftSupport()
        # With REDIS_URL a stop reaches the answers of other processes too.
        self.shared_stops = shared_stops
        self.generations = shared_stops.generations if shared_stops else Generations()
        self.continue_keyboard = continue_keyboard
        # Records each answer in progress, so that one a crash interrupts is noticed.
        self.recovery = recovery

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
        source: MessageSource = MessageSource.TEXT,
        images: Sequence[ImageFile] = (),
        document: ReadDocument | None = None,
        place: ChatPlace | None = None,
    ) -> str | None:
        """Answer a new message (typed, the transcript of a spoken one, images or a document
        with their caption: `source`); the answer when it was delivered whole and stored,
        else None (refused, failed, stopped)."""
        await self._check_budget(session, user_id, preferences)
        pictures: list[Picture] = []
        sight: Sight | None
        scan = document.pages if document is not None else []
        if images or scan:
            seeing = await self._seeing(bot, chat_id, preferences, scan=bool(scan))
            if seeing is None:
                return None
            preferences, sight = seeing
            if document is not None and scan:
                pictures = self.pictures.keep_pages(document.file, scan)
            else:
                received = await self._receive(bot, chat_id, images)
                if received is None:
                    return None
                pictures = received
        else:
            sight = self.memory.sight(preferences.model)
        turn = self.memory.user_turn(text, pictures, sight)
        # A document's length is held to its share of the budget instead.
        builder = await self._builder(
            bot,
            session,
            chat_id,
            preferences,
            turn,
            any_length=document is not None,
            thread_id=_thread(place),
        )
        if builder is None:
            return None
        # The reads come before the write gate, which then holds only the insert and its
        # commit (bench/load.py at 50 users queued at the gate): WAL lets them run beside a
        # writer, and this user's other messages wait for this one, so what they read stays.
        persona_id = preferences.persona.id
        conversation: CurrentConversation | None
        if place is not None and place.guest_query_id is None:  # a group's, or a topic's
            conversation = await self._in_chat(session, place, persona_id, user_id)
        else:
            conversation = await self.memory.current_conversation(session, user_id, persona_id)
        if conversation is None:  # the first message to this persona starts one: a write
            async with self.gate.section(session):
                conversation = await self.memory.conversation(session, user_id, persona_id)
                await session.commit()
        profile = await self._profile(session, user_id, preferences, place)
        stored: asyncio.Task[Turn] | None = None
        if document is not None and document.parts:
            # A long document's parts are stored first: this message is answered from them.
            kept = await self._store_turn(
                session, conversation, turn, telegram_message_id, source, chat_id, (), document
            )
            conversation = replace(conversation, documents=conversation.documents + 1)
            assembled = await self.memory.assemble(
                session,
                builder,
                conversation,
                before_id=kept.id,
                query=document.query,
                everywhere=preferences.recall_everywhere,
                profile=profile,
            )
        else:
            assembled = await self.memory.assemble(
                session,
                builder,
                conversation,
                query=text,
                sight=sight,
                everywhere=preferences.recall_everywhere,
                profile=profile,
            )
            # The user's message is stored while the model is asked, not before: nothing
            # else uses the session until it is, and the answer, or what a failure cost, is
            # stored only after it. No transaction is held open while the answer streams.
            stored = asyncio.create_task(
                self._store_turn(
                    session, conversation, turn, telegram_message_id, source, chat_id, pictures
                )
            )
        try:
            answer = await self._answer(
                bot,
                session,
                chat_id,
                conversation,
                assembled,
                preferences,
                draft_id,
                stored=stored,
                place=place,
            )
        finally:
            if stored is not None:
                await stored
        if answer is not None and self._keeps_profile(preferences, place, conversation):
            assert self.profile_writer is not None
            self.profile_writer.noted(user_id)
        return answer

    def _keeps_profile(
        self,
        preferences: Preferences,
        place: ChatPlace | None,
        conversation: CurrentConversation | None = None,
    ) -> bool:
        """Whether the user's profile is read and sent here: their own private chat (or a
        topic of it) with the profile on; never a group's conversation, nor a guest answer
        that others in that chat would read."""
        if self.profile_writer is None or not preferences.profile:
            return False
        if conversation is not None and conversation.group_id is not None:
            return False
        return place is None or (place.guest_query_id is None and place.chat_id > 0)

    async def _profile(
        self,
        session: AsyncSession,
        user_id: int,
        preferences: Preferences,
        place: ChatPlace | None,
    ) -> Turn | None:
        if not self._keeps_profile(preferences, place):
            return None
        return await self.memory.profile_turn(session, user_id)

    async def _in_chat(
        self, session: AsyncSession, place: ChatPlace, persona_id: int, user_id: int
    ) -> CurrentConversation:
        found = await self.memory.chat_conversation(
            session, place.chat_id, place.thread_id, persona_id, user_id=user_id
        )
        if found is None:
            async with self.gate.section(session):
                found = await self.memory.chat_conversation(
                    session, place.chat_id, place.thread_id, persona_id, user_id=user_id, start=True
                )
                await session.commit()
            assert found is not None
        # Group chats have negative ids, private chats (and their topics) positive ones.
        return replace(found, group_id=place.chat_id) if place.chat_id < 0 else found

    async def _store_turn(
        self,
        session: AsyncSession,
        conversation: CurrentConversation,
        turn: Turn,
        telegram_message_id: int | None,
        source: MessageSource,
        chat_id: int,
        pictures: Sequence[Picture] = (),
        document: ReadDocument | None = None,
    ) -> Turn:
        """The user's message (with a long document's parts), with the record that its
        answer is being written, in one commit (app/services/recovery.py)."""
        async with self.gate.section(session):
            kept = await self.memory.remember(
                session, conversation, turn, telegram_message_id, source, pictures
            )
            if document is not None and document.parts and kept.id is not None:
                await self.memory.remember_parts(
                    session, conversation, kept.id, document.file.file_name, document.parts
                )
            self._begin(session, conversation, chat_id, telegram_message_id)
            await session.commit()
        return kept

    async def retry(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        preferences: Preferences,
        draft_id: int,
        place: ChatPlace | None = None,
    ) -> None:
        """Answer the user's newest message again (in the topic `place`, if given); the old
        answer leaves the history."""
        if place is not None:
            conversation = await self._in_chat(session, place, preferences.persona.id, user_id)
        else:
            conversation = await self.memory.conversation(session, user_id, preferences.persona.id)
        sight = self.memory.sight(preferences.model)
        last = await self.memory.last_user_turn(session, conversation, sight)
        vision_model = self.openai.vision_model
        if sight is None and vision_model is not None and last is not None:
            # A photo answered by OPENAI_VISION_MODEL is answered again by it.
            seeing = self._vision_sight(vision_model)
            seen = await self.memory.last_user_turn(session, conversation, seeing)
            if seen is not None and seen.pictures:
                preferences, last, sight = replace(preferences, model=vision_model), seen, seeing
        if last is None or last.id is None:
            await bot.send_message(
                chat_id, texts.nothing_to_retry(), message_thread_id=_thread(place)
            )
            return
        turn_id = last.id

        async def forget_answer() -> None:
            await self.memory.forget_answer(session, conversation, turn_id)

        await self._answer_again(
            bot,
            session,
            chat_id,
            preferences,
            conversation,
            turn_id,
            last,
            forget_answer,
            draft_id,
            sight=sight,
            place=place,
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
        place: ChatPlace | None = None,
    ) -> None:
        """An edited message: the newest one is answered anew (in the topic `place`, if it
        is in one), an older one only noted."""
        if place is not None:
            conversation = await self._in_chat(session, place, preferences.persona.id, user_id)
        else:
            conversation = await self.memory.conversation(session, user_id, preferences.persona.id)
        found = await self.memory.find_user_message(session, user_id, telegram_message_id)
        last = await self.memory.last_user_turn(session, conversation)
        if found is None or last is None or found != (conversation.id, last.id):
            await bot.send_message(
                chat_id, texts.edit_of_older_message(), message_thread_id=_thread(place)
            )
            return
        turn_id = found[1]

        async def replace_turn() -> None:
            await self.memory.replace_user_turn(session, conversation, turn_id, text)

        turn = self.memory.user_turn(text)
        await self._answer_again(
            bot,
            session,
            chat_id,
            preferences,
            conversation,
            turn_id,
            turn,
            replace_turn,
            draft_id,
            place=place,
        )

    async def _answer_again(
        self,
        bot: Bot,
        session: AsyncSession,
        chat_id: int,
        preferences: Preferences,
        conversation: CurrentConversation,
        turn_id: int | None,
        turn: Turn,
        change: Callable[[], Awaitable[None]] | None,
        draft_id: int,
        *,
        recall: bool = True,
        extending: Turn | None = None,
        sight: Sight | None = None,
        place: ChatPlace | None = None,
    ) -> None:
        """Answer `turn` with the history before stored turn `turn_id` (all of it for None),
        after `change` rewrites the history (the old answer dropped, or the turn's new text).
        Like a new message, its reads, write and commit take the write gate: on SQLite they
        contend for the same lock. Only reads come before it, since a conversation started
        just now has no turn to answer again. `recall`: search older turns for the words of
        `turn`; `extending` is passed on to `_answer`."""
        await self._check_budget(session, conversation.user_id, preferences)
        builder = await self._builder(
            bot, session, chat_id, preferences, turn, thread_id=_thread(place)
        )
        if builder is None:
            return
        profile = None
        if self._keeps_profile(preferences, place, conversation):
            profile = await self.memory.profile_turn(session, conversation.user_id)
        async with self.gate.section(session):
            assembled = await self.memory.assemble(
                session,
                builder,
                conversation,
                before_id=turn_id,
                query=turn.content if recall else None,
                sight=sight if sight is not None else self.memory.sight(preferences.model),
                everywhere=preferences.recall_everywhere,
                profile=profile,
            )
            if change is not None:
                await change()
            self._begin(session, conversation, chat_id, None)
            await session.commit()
        await self._answer(
            bot,
            session,
            chat_id,
            conversation,
            assembled,
            preferences,
            draft_id,
            extending=extending,
            place=place,
        )

    async def continue_answer(
        self,
        bot: Bot,
        session: AsyncSession,
        *,
        chat_id: int,
        user_id: int,
        preferences: Preferences,
        answer_id: int,
        draft_id: int,
        place: ChatPlace | None = None,
    ) -> bool:
        """Go on with an answer cut at the length limit (in the topic `place`, if given);
        False when that answer is no longer the conversation's newest turn (the button is
        stale)."""
        if place is not None:
            conversation = await self._in_chat(session, place, preferences.persona.id, user_id)
        else:
            conversation = await self.memory.conversation(session, user_id, preferences.persona.id)
        last = await self.memory.last_answer(session, conversation)
        if last is None or last.id != answer_id:
            return False
        # The instruction is the new turn, never stored: the answer so far ends the history.
        instruction = self.memory.user_turn(CONTINUE_INSTRUCTION)
        await self._answer_again(
            bot,
            session,
            chat_id,
            preferences,
            conversation,
            None,
            instruction,
            None,
            draft_id,
            recall=False,  # the instruction's words say nothing of what to recall
            extending=last,
            place=place,
        )
        return True

    async def stop(self, chat_id: int, draft_id: int | None = None) -> bool:
        """End the answer being generated in the chat (the one of that draft, if given) at
        once, on whichever process streams it; False when none is."""
        if self.shared_stops is not None:
            return await self.shared_stops.stop(chat_id, draft_id)
        return self.generations.stop(chat_id, draft_id)

    async def _seeing(
        self, bot: Bot, chat_id: int, preferences: Preferences, *, scan: bool = False
    ) -> tuple[Preferences, Sight] | None:
        """The preferences an image is answered with, and how their model sees it: the
        user's model if it sees, else OPENAI_VISION_MODEL; None once the user is told that
        their model cannot see."""
        sight = self.memory.sight(preferences.model)
        if sight is not None:
            return preferences, sight
        vision_model = self.openai.vision_model
        if vision_model is None:
            refusal = texts.document_scan_unseen if scan else texts.model_cannot_see
            await bot.send_message(chat_id, refusal(preferences.model))
            return None
        sight = self._vision_sight(vision_model)
        return replace(preferences, model=vision_model), sight

    def _vision_sight(self, vision_model: str) -> Sight:
        """OPENAI_VISION_MODEL sees: the owner named it so, whether or not we know it."""
        return self.memory.sight(vision_model) or Sight(vision_model, self.openai.image_detail)

    async def _receive(
        self, bot: Bot, chat_id: int, images: Sequence[ImageFile]
    ) -> list[Picture] | None:
        """The images fetched and checked; None once the user is told why they cannot be."""
        try:
            async with ChatActionSender.upload_photo(bot=bot, chat_id=chat_id):
                return await self.pictures.receive(bot, images)
        except PictureRefused as refused:
            if refused.reason == "too_big":
                await bot.send_message(chat_id, texts.file_too_big(self.pictures.download_limit))
            elif refused.reason == "download":
                await bot.send_message(chat_id, texts.download_failed())
            else:
                await bot.send_message(chat_id, texts.image_unreadable())
            return None

    async def _check_budget(
        self, session: AsyncSession, user_id: int, preferences: Preferences
    ) -> None:
        """Raises BudgetRefused for a user over a limit: the message then goes neither to
        the model nor into the history."""
        if self.usage is None or not preferences.limited:
            return  # admins, and everyone while no budget is set: no query at all
        await self.usage.refuse_over_limit(session, user_id)

    async def _builder(
        self,
        bot: Bot,
        session: AsyncSession,
        chat_id: int,
        preferences: Preferences,
        turn: Turn,
        *,
        any_length: bool = False,
        thread_id: int | None = None,
    ) -> ContextBuilder | None:
        """The request's budget for this message, or None once the user is told why not (in
        the topic `thread_id`, when it came from one)."""
        text = turn.content
        if not text.strip() and not turn.pictures and turn.fallback is None:
            await bot.send_message(chat_id, texts.empty_message(), message_thread_id=thread_id)
            return None
        if len(text) > self.chat.max_input_chars and not any_length:
            await bot.send_message(
                chat_id,
                texts.too_many_characters(len(text), self.chat.max_input_chars),
                message_thread_id=thread_id,
            )
            return None
        persona = await self.memory.persona_memory(session, preferences.persona)
        offer = self.tools.offer(preferences) if self.tools is not None else None
        try:
            return self.memory.builder(
                persona,
                turn,
                preferences.model,
                preferences.mode,
                preferences.answer_length,
                tools=offer.reserve if offer is not None else 0,
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
                chat_id,
                texts.persona_too_large(persona.name, exc.persona_tokens, exc.limit),
                message_thread_id=thread_id,
            )
        except MessageTooLong as exc:
            await bot.send_message(
                chat_id,
                texts.message_too_long(exc.message_tokens, exc.limit),
                message_thread_id=thread_id,
            )
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
        *,
        extending: Turn | None = None,
        stored: asyncio.Task[Turn] | None = None,
        place: ChatPlace | None = None,
    ) -> str | None:
        """Stream the model's answer to the chat, then store it: an error stores nothing.

        A stream cut before its finish reason is asked for again (OPENAI_STREAM_RETRIES)
        before anything final is sent, its preview replaced by the new attempt. `extending`
        is an answer cut at the length limit that this one continues: the continuation is
        appended to it in the history. `stored`: the user's message being stored meanwhile,
        awaited before the session is used.

        Recorded as in progress until it ends one way or another (`InterruptedAnswers`):
        cancelled (at shutdown), it stays recorded, and its user is told to /retry."""
        try:
            answer = await self._generate(
                bot,
                session,
                chat_id,
                conversation,
                assembled,
                preferences,
                draft_id,
                extending,
                stored,
                place,
            )
        except asyncio.CancelledError:
            if self.recovery is not None:
                self.recovery.abandon(conversation.id)
            raise
        except Exception:
            # The error handler tells the user; the record goes unless the database is away.
            # (The user's message first: until it is stored the session is its alone.)
            if stored is not None:
                with contextlib.suppress(Exception):
                    await stored
            with contextlib.suppress(Exception):
                await session.rollback()
            await self._settle(session, conversation)
            raise
        if stored is not None:
            await stored  # before the record can be settled: it is written with the message
        await self._settle(session, conversation)
        return answer

    def _begin(
        self,
        session: AsyncSession,
        conversation: CurrentConversation,
        chat_id: int,
        reply_to: int | None,
    ) -> None:
        if self.recovery is not None:
            self.recovery.begin(
                session,
                conversation_id=conversation.id,
                user_id=conversation.user_id,
                chat_id=chat_id,
                reply_to=reply_to,
            )

    async def _settle(self, session: AsyncSession, conversation: CurrentConversation) -> None:
        """The answer ended without being stored (the user was told why): not in progress."""
        if self.recovery is None or not self.recovery.writing(conversation.id):
            return  # none recorded, or `_store` deleted it with the answer
        try:
            async with self.gate.section(session):
                await self.recovery.end(session, conversation.id)
                await session.commit()
        except SQLAlchemyError as exc:
            log.warning(
                "The answer of conversation %s stays recorded as interrupted: %s",
                conversation.id,
                type(exc).__name__,
            )
            self.recovery.abandon(conversation.id)

    async def _generate(
        self,
        bot: Bot,
        session: AsyncSession,
        chat_id: int,
        conversation: CurrentConversation,
        assembled: Assembled,
        preferences: Preferences,
        draft_id: int,
        extending: Turn | None,
        stored: asyncio.Task[Turn] | None = None,
        place: ChatPlace | None = None,
    ) -> str | None:
        log.debug(
            "Request for user %s: %d prompt tokens, %d history turns",
            conversation.user_id,
            assembled.prompt_tokens,
            assembled.history_turns,
        )
        messages, assembled = await self._with_pictures(bot, assembled)
        request = ChatRequest(
            model=preferences.model,
            messages=messages,
            max_answer_tokens=(
                assembled.breakdown.answer_reserve
                if assembled.breakdown
                else self.openai.max_answer_tokens
            ),
            temperature=preferences.temperature,
            use_max_completion_tokens=self.openai.is_public_openai,
        )
        stream: Delivery
        if place is not None and place.guest_query_id is not None:
            stream = GuestAnswer(bot, place.guest_query_id, chat_id, interval=self.stream_interval)
        else:
            stream = AnswerStream(
                bot,
                chat_id,
                draft_id,
                drafts=self.drafts,
                interval=self.stream_interval,
                can_stop=place is None or place.reply_to is None,
                reply_to=place.reply_to if place is not None else None,
                thread_id=place.thread_id if place is not None else None,
                pacer=self.pacer,
            )
        offer = self._offer(preferences, assembled)
        if offer is not None:
            request = replace(request, tools=offer.schemas)
        prompt_tokens = assembled.prompt_tokens + (offer.schema_tokens if offer else 0)
        trace: list[dict[str, Any]] = []  # the answer's tool rounds, as the API takes them
        with self.generations.running(chat_id, draft_id) as generation:
            rounds = 0
            while True:
                attempt = await self._attempts(
                    bot, session, chat_id, conversation, preferences, request, stream,
                    generation, prompt_tokens, stored, place,
                )  # fmt: skip
                if attempt is None:
                    return None
                calls = attempt.report.tool_calls
                if offer is None or not calls or attempt.stopped or request.tool_choice:
                    break  # the answer (calls in a round told to answer are ignored)
                # Each round was paid for: its usage is recorded as it ends.
                if stored is not None:
                    await stored
                await self._record_alone(
                    session, conversation, preferences.model, self._usage(attempt)
                )
                rounds += 1
                assert self.tools is not None
                await stream.show(self._tools_preview(attempt.content, calls), now=True)
                done = await self._run_tools(
                    chat_id, conversation, preferences, place, attempt, offer, trace, generation
                )
                if attempt.stopped:
                    # Stopped while the tools ran: nothing more is asked (this round's
                    # usage is recorded above) and there is no answer to store.
                    await stream.finish(texts.answer_stopped_before_text())
                    return None
                if done is not None:
                    trace.extend(done.messages)
                    prompt_tokens += done.tokens
                    request = replace(request, messages=[*messages, *trace])
                if done is None or rounds >= self.tools.settings.max_rounds:
                    # The rounds are over (or the calls would not fit): the model answers
                    # with what it has.
                    request = replace(request, tool_choice="none")
        if stored is not None:
            await stored
        return await self._deliver(
            session, stream, conversation, assembled, preferences, attempt, extending, trace
        )

    def _offer(self, preferences: Preferences, assembled: Assembled) -> ToolOffer | None:
        """The tools offered, if the request kept room for them (a message too long with
        them was assembled without)."""
        if self.tools is None or assembled.breakdown is None or not assembled.breakdown.tools:
            return None
        offer = self.tools.offer(preferences)
        if offer is None or offer.reserve != assembled.breakdown.tools:
            return None
        return offer

    def _tools_preview(self, said: str, calls: Sequence[ToolCall]) -> str:
        assert self.tools is not None
        doing = self.tools.doing(calls)
        return f"{said.strip()}\n\n{doing}" if said.strip() else doing

    async def _run_tools(
        self,
        chat_id: int,
        conversation: CurrentConversation,
        preferences: Preferences,
        place: ChatPlace | None,
        attempt: _Attempt,
        offer: ToolOffer,
        trace: list[dict[str, Any]],
        generation: Generation,
    ) -> Round | None:
        """One round's calls, run until they end or the user stops the answer (then
        `attempt.stopped`, and the calls are cancelled)."""
        assert self.tools is not None
        used = self.memory.counter.api_messages(trace)
        context = ToolContext(
            user_id=conversation.user_id,
            chat_id=chat_id,
            language=_language(),
            timezone=preferences.timezone,
            thread_id=_thread(place),
            clock=self.tools.clock,
        )
        running = asyncio.create_task(
            self.tools.run_round(
                context,
                attempt.content,
                attempt.report.tool_calls,
                preferences.rights,
                room=offer.result_tokens - used,
            )
        )
        await _unless_stopped(running, generation, attempt, chat_id, " while tools ran")
        if attempt.stopped:
            with contextlib.suppress(asyncio.CancelledError):
                await running
            return None
        return running.result()

    async def _attempts(
        self,
        bot: Bot,
        session: AsyncSession,
        chat_id: int,
        conversation: CurrentConversation,
        preferences: Preferences,
        request: ChatRequest,
        stream: Delivery,
        generation: Generation,
        prompt_tokens: int,
        stored: asyncio.Task[Turn] | None,
        place: ChatPlace | None,
    ) -> _Attempt | None:
        """One request, asked again when its stream is cut (OPENAI_STREAM_RETRIES); None
        once the user is told it failed."""
        attempts = 1 + self.openai.stream_retries
        for number in range(1, attempts + 1):
            attempt = _Attempt(prompt_tokens=prompt_tokens)
            try:
                await self._stream(bot, chat_id, request, stream, attempt, generation)
                return attempt
            except LLMError as exc:
                # Every attempt that produced anything was paid for.
                if attempt.report.usage is not None or attempt.produced:
                    if stored is not None:
                        await stored
                    await self._record_alone(
                        session, conversation, preferences.model, self._usage(attempt)
                    )
                if exc.kind in HEALABLE and number < attempts:
                    log.warning(
                        "Answer stream for user %s cut (%s); asking again (%d of %d)",
                        conversation.user_id,
                        exc.kind,
                        number + 1,
                        attempts,
                    )
                    await asyncio.sleep(STREAM_RETRY_DELAY * 2 ** (number - 1))
                    continue
                log.warning(
                    "Model call failed for user %s (%s): %s",
                    conversation.user_id,
                    exc.kind,
                    exc,
                )
                if attempt.content.strip():
                    await stream.finish(
                        attempt.content + "\n\n" + texts.answer_interrupted(exc.kind)
                    )
                else:
                    await bot.send_message(
                        chat_id, texts.model_failed(exc.kind), message_thread_id=_thread(place)
                    )
                return None
        raise AssertionError("unreachable: the last attempt returns")

    async def _stream(
        self,
        bot: Bot,
        chat_id: int,
        request: ChatRequest,
        stream: Delivery,
        attempt: _Attempt,
        generation: Generation,
    ) -> None:
        """One attempt: the deltas shown as they come, until the stream ends or the user
        stops it. A stop cancels the read at once, which closes the connection, so the
        server stops generating (and billing)."""

        async def read() -> None:
            deltas = stream_answer(self.llm, request, attempt.report)
            async with ChatActionSender.typing(bot=bot, chat_id=chat_id):
                first = await anext(deltas, None)
            delta = first
            while delta is not None:
                attempt.add(delta)
                await stream.show(
                    attempt.content or (texts.thinking() if attempt.reasoning else "")
                )
                delta = await anext(deltas, None)

        reading = asyncio.create_task(read())
        try:
            await _unless_stopped(reading, generation, attempt, chat_id)
        finally:
            # A cancelled read ends here; a failed one raises its LLMError.
            await asyncio.gather(reading, return_exceptions=attempt.stopped)

    async def _with_pictures(
        self, bot: Bot, assembled: Assembled
    ) -> tuple[list[dict[str, Any]], Assembled]:
        """The request's messages with its images' data, each fetched once; an image
        Telegram no longer hands over is replaced by its note (which costs less)."""
        pictures = assembled.pictures
        if not pictures:
            return assembled.as_api(), assembled
        urls, missing = await self.pictures.data_urls(bot, pictures)
        if missing:
            log.warning("%d image(s) of the history could not be fetched", len(missing))
            assembled = assembled.without_pictures_of(missing)
        return assembled.as_api(urls, self.openai.image_detail), assembled

    async def _deliver(
        self,
        session: AsyncSession,
        stream: Delivery,
        conversation: CurrentConversation,
        assembled: Assembled,
        preferences: Preferences,
        attempt: _Attempt,
        extending: Turn | None,
        trace: Sequence[dict[str, Any]] = (),
    ) -> str | None:
        """The final message and the stored answer, as the stream ended: complete, stopped,
        cut at the length limit, or held back by the content filter. The reasoning is shown
        above an answer if the user chose so, and never stored; the tool rounds (`trace`)
        are stored with the answer. Returns the answer when it was delivered whole (not
        stopped) and stored."""
        user_id, model = conversation.user_id, preferences.model
        answer = attempt.content
        folded = preferences.reasoning is ReasoningDisplay.FOLDED
        reasoning = attempt.reasoning if folded else ""
        finish = attempt.report.finish_reason
        if attempt.stopped and not answer.strip():
            await stream.finish(texts.answer_stopped_before_text())
            if attempt.report.usage is not None or attempt.produced:
                await self._record_alone(session, conversation, model, self._usage(attempt))
            return None
        if finish == "content_filter":
            log.warning("The model's content filter stopped the answer for user %s", user_id)
            note = texts.answer_filtered()
            await stream.finish(f"{answer}\n\n{note}" if answer.strip() else note)
            await self._record_alone(session, conversation, model, self._usage(attempt))
            return None
        if not answer.strip():
            log.warning("The model returned an empty answer for user %s", user_id)
            await stream.finish(texts.empty_answer())
            await self._record_alone(session, conversation, model, self._usage(attempt))
            return None
        usage = self._usage(attempt)
        if attempt.stopped:
            shown, keyboard = f"{answer}\n\n{texts.answer_stopped()}", None
        elif finish == "length":
            shown = f"{answer}\n\n{texts.answer_hit_length_limit()}"
            keyboard = None  # set below, once the answer has its id
        else:
            shown, keyboard = answer, None
        if finish == "length" and not attempt.stopped:
            stored = await self._store(
                session, conversation, answer, extending, model, usage, trace
            )
            assert stored.id is not None
            await stream.finish(shown, self.continue_keyboard(stored.id), reasoning=reasoning)
        else:
            # Stored while it is delivered: neither waits for the other, and a Telegram
            # failure cannot lose what the model said.
            results = await asyncio.gather(
                self._store(session, conversation, answer, extending, model, usage, trace),
                stream.finish(shown, keyboard, reasoning=reasoning),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        self._summarise_later(conversation, assembled)
        if (
            conversation.title is None
            and self.summarizer is not None
            and self.memory.settings.titles
        ):
            # Once per untitled conversation and process: the writer checks the database.
            # A topic of a private chat is named after it too.
            then = _topic_renamer(stream) if stream.thread_id and stream.chat_id > 0 else None
            self.summarizer.title_later(conversation.id, user_id=user_id, then=then)
        return None if attempt.stopped else answer

    def _usage(self, attempt: _Attempt) -> TokenUsage:
        """The server's figures; without them our exact counts of what was sent and said
        (reasoning and tool calls are paid for as completion tokens too)."""
        if attempt.report.usage is not None:
            return attempt.report.usage
        counter = self.memory.counter
        said = counter.text(attempt.content) + counter.text(attempt.reasoning)
        if attempt.report.tool_calls:
            said += counter.api_messages(
                round_messages(attempt.report.tool_calls, [])[:1]
            ) - counter.message("assistant", "")
        return TokenUsage(attempt.prompt_tokens, said)

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
        answer: str,
        extending: Turn | None,
        model: str,
        usage: TokenUsage,
        trace: Sequence[dict[str, Any]] = (),
    ) -> Turn:
        """The answer (or the continuation of `extending`) and what it cost, in one commit:
        no round trip of its own for usage. The answer's tool rounds (`trace`) go with it;
        a continuation's are not kept (the answer it extends keeps its own)."""
        async with self.gate.section(session):
            if extending is not None and extending.id is not None:
                turn = await self.memory.extend_answer(session, conversation, extending.id, answer)
            else:
                turn = await self.memory.remember(
                    session, conversation, self.memory.answer_turn(answer, trace)
                )
            await self._record(session, conversation, model, usage)
            if self.recovery is not None:
                await self.recovery.end(session, conversation.id)
            await session.commit()
        if self.memory.embeddings is not None:
            self.memory.embeddings.poke()  # the question and the answer, in the background
        return turn

    async def _record_alone(
        self,
        session: AsyncSession,
        conversation: CurrentConversation,
        model: str,
        usage: TokenUsage,
    ) -> None:
        """The usage of a request whose answer is not stored, after the user was told."""
        if self.usage is not None:
            await self._record(session, conversation, model, usage)
            await session.commit()

    async def _record(
        self,
        session: AsyncSession,
        conversation: CurrentConversation,
        model: str,
        usage: TokenUsage,
    ) -> None:
        """Charged to the asker (a group's conversation carries who asks now), and to the
        group it was asked in."""
        if self.usage is not None:
            await self.usage.record(
                session,
                user_id=conversation.user_id,
                model=model,
                usage=usage,
                group_id=conversation.group_id,
            )


async def _unless_stopped(
    work: asyncio.Task[Any],
    generation: Generation,
    attempt: _Attempt,
    chat_id: int,
    during: str = "",
) -> None:
    """Wait for `work` (reading the stream, running tools) unless the user stops the answer
    first: then it is cancelled and `attempt.stopped` is set. Awaiting `work` is left to the
    caller, who knows what its end means."""
    stopping = asyncio.create_task(generation.stopped.wait())
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not work.done():
            work.cancel()
            attempt.stopped = True
            log.info("Answer in chat %s stopped by the user%s", chat_id, during)


def _language() -> str:
    """The language of the update being handled (what a tool answers the user in)."""
    try:
        return get_i18n().current_locale
    except LookupError:  # no update (a bench driving the service itself)
        return "en"


def _thread(place: ChatPlace | None) -> int | None:
    """The topic a note about the answer goes to, with the answer."""
    return place.thread_id if place is not None else None


def _topic_renamer(stream: Delivery) -> Callable[[str], Awaitable[None]]:
    """Names the private chat's topic the answer went to (not essential: a failure costs the
    topic its name only)."""
    bot, chat_id, thread_id = stream.bot, stream.chat_id, stream.thread_id

    async def rename(title: str) -> None:
        try:
            await bot.edit_forum_topic(
                chat_id=chat_id, message_thread_id=thread_id or 0, name=title[:128]
            )
        except (TelegramAPIError, NotBotApiAnswer) as exc:
            log.info("Topic %s of chat %s not renamed: %s", thread_id, chat_id, type(exc).__name__)

    return rename
