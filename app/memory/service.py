"""Persona memory and conversation history, read and written for one request at a time."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import MemorySettings, OpenAISettings
from app.db.documents import DocumentRepository, PartRow
from app.db.messages import MessageRepository
from app.db.models import Message
from app.db.personas import PersonaRepository
from app.db.recall import RecallRepository
from app.db.users import UserRepository
from app.db.vectors import VectorRepository
from app.domain.enums import (
    AnswerLength,
    ImageDetail,
    MemoryKind,
    MemoryMode,
    MessageRole,
    MessageSource,
)
from app.domain.groups import ChatPlace
from app.domain.media import Picture
from app.domain.memory import MemoryReport
from app.domain.refs import PersonaRef
from app.memory.context import (
    SUMMARY_HEADING,
    Assembled,
    ContextBuilder,
    MessageTooLong,
    PersonaMemory,
    PersonaTooLarge,
    QAPair,
    Role,
    Shares,
    Turn,
    compose_system_message,
)
from app.memory.embeddings import Embeddings
from app.memory.images import image_tokens, sees_images
from app.memory.profile import ProfileBook
from app.memory.recall import fuse, search_terms
from app.memory.tokens import REPLY_PRIMING, TokenCounter
from app.memory.window import ContextBudget

# History is read newest-first in pages: the first is usually enough; later ones grow so a
# large window is filled in a few queries.
FIRST_PAGE = 32
MAX_PAGE = 512
# Personas whose memory is kept in this process (a few hundred entries each at most).
PERSONA_CACHE = 256
# A short answer still gets room for a few sentences in any language.
MIN_SHORT_ANSWER = 128
# What the model is told of the answer length a user chose in /settings. English whatever
# the user's language: it is an instruction to the model, which answers in the user's.
STYLE_INSTRUCTIONS: dict[AnswerLength, str] = {
    AnswerLength.SHORT: "Keep your answers short: a few sentences at most, unless asked for more.",
    AnswerLength.LONG: "Answer in depth, with detail and examples where they help.",
}

log = logging.getLogger(__name__)


# Said to the model in place of images it is not shown (they no longer fit, or it cannot
# see): English, like the other instructions to the model.
PICTURES_NOT_SHOWN = "[The user sent {count} image(s) with this message; they are not shown here.]"


# The system message that carries the parts of long documents matching a message.
EXCERPTS_HEADING = (
    "Parts of documents the user sent earlier in this conversation, chosen for their next "
    "message (the rest of each document is not shown):"
)
EXCERPT_HEADER = '--- "{name}", part {position} of {parts} ---'
# The most parts searched for one message; the share decides how many are sent.
MAX_EXCERPTS = 24
# With recall in all conversations, how many of the other ones (the latest) are searched.
OTHERS = 50


@dataclass(frozen=True, slots=True)
class Sight:
    """How the model of a request sees images: the tokens each costs at the chosen detail."""

    model: str
    detail: ImageDetail

    def tokens(self, picture: Picture) -> int:
        return image_tokens(self.model, picture.width, picture.height, self.detail)


@dataclass(frozen=True, slots=True)
class CurrentConversation:
    """Whose conversation with which persona."""

    id: int
    user_id: int
    persona_id: int
    # The rolling summary as the system message it is sent as, with its stored count.
    summary: str | None = None
    summary_tokens: int = 0
    summary_until_id: int | None = None
    # Long documents sent in it, whose parts are searched for each message.
    documents: int = 0
    title: str | None = None
    # In a group: the group, charged with what its conversation costs.
    group_id: int | None = None

    @property
    def summary_turn(self) -> Turn | None:
        if self.summary is None:
            return None
        return Turn("system", self.summary, self.summary_tokens)


class MemoryService:
    """Stores turns with their token counts and assembles requests within the budget."""

    def __init__(
        self,
        counter: TokenCounter,
        openai: OpenAISettings,
        memory: MemorySettings | None = None,
    ) -> None:
        self.counter = counter
        self._openai = openai
        self.settings = memory or MemorySettings(_env_file=None)
        self.shares = Shares(
            self.settings.summary_share, self.settings.recall_share, self.settings.profile_share
        )
        # The users' profiles: their message and exact count (app/memory/profile.py).
        self.profiles = ProfileBook(counter, self.settings)
        self._budgets: dict[tuple[str, MemoryMode, AnswerLength], ContextBudget] = {}
        self._styles: dict[AnswerLength, Turn] = {}
        self._personas: dict[int, tuple[int, PersonaMemory]] = {}
        # Recall by meaning besides words, when an embedding model is in use (set by the
        # factory once the database is known).
        self.embeddings: Embeddings | None = None

    def budget_for(
        self,
        model: str,
        mode: MemoryMode = MemoryMode.CHAT,
        length: AnswerLength = AnswerLength.NORMAL,
    ) -> ContextBudget:
        key = (model, mode, length)
        budget = self._budgets.get(key)
        if budget is None:
            chat = ContextBudget.for_model(
                model,
                window=self._openai.context_window,
                answer_reserve=self._openai.max_answer_tokens,
                margin=self._openai.safety_margin_tokens,
            )
            # Half the window at most, so a long answer still leaves some conversation.
            half = (chat.window - chat.margin) // 2
            reserve = chat.answer_reserve
            if mode is MemoryMode.TASK:
                reserve = max(reserve, min(self.settings.task_answer_tokens, half))
            if length is AnswerLength.SHORT:
                reserve = max(MIN_SHORT_ANSWER, reserve // 4)
            elif length is AnswerLength.LONG:
                reserve = max(reserve, min(reserve * 2, half))
            budget = ContextBudget(chat.window, reserve, chat.margin)
            self._budgets[key] = budget
        return budget

    def style(self, length: AnswerLength) -> Turn | None:
        """The instruction that tells the model the answer length the user chose (None for
        normal), counted once."""
        text = STYLE_INSTRUCTIONS.get(length)
        if text is None:
            return None
        turn = self._styles.get(length)
        if turn is None:
            turn = self._styles[length] = Turn("system", text, self.counter.message("system", text))
        return turn

    def document_room(
        self,
        persona: PersonaMemory,
        model: str,
        mode: MemoryMode = MemoryMode.CHAT,
        length: AnswerLength = AnswerLength.NORMAL,
    ) -> int:
        """Tokens a document may take in a request (MEMORY_DOCUMENT_SHARE of what the persona
        leaves): whole when it fits, else the parts matching each message fill it."""
        budget = self.budget_for(model, mode, length)
        style = self.style(length)
        left = budget.prompt_limit - REPLY_PRIMING - persona.tokens
        left -= style.tokens if style is not None else 0
        return max(0, int(left * self.settings.document_share))

    async def remember_parts(
        self,
        session: AsyncSession,
        conversation: CurrentConversation,
        message_id: int,
        file_name: str,
        parts: Sequence[tuple[str, int]],
    ) -> None:
        """The parts of a long document the user turn `message_id` sent."""
        await DocumentRepository(session).add(
            conversation_id=conversation.id,
            message_id=message_id,
            file_name=file_name,
            parts=parts,
        )

    async def persona_memory(self, session: AsyncSession, persona: PersonaRef) -> PersonaMemory:
        """The persona's memory; kept between messages while its revision stays the same."""
        cached = self._personas.get(persona.id)
        if cached is not None and cached[0] == persona.revision:
            return cached[1]
        memory = await self._load_persona(session, persona.id)
        if len(self._personas) >= PERSONA_CACHE:
            self._personas.clear()
        self._personas[persona.id] = (persona.revision, memory)
        return memory

    async def _load_persona(self, session: AsyncSession, persona_id: int) -> PersonaMemory:
        personas = PersonaRepository(session)
        persona = await personas.get(persona_id)
        if persona is None:
            raise LookupError(f"persona {persona_id} does not exist")
        facts: list[str] = []
        pairs: list[QAPair] = []
        for entry in await personas.entries(persona_id):
            if entry.kind is MemoryKind.FACT:
                facts.append(entry.text)
            else:
                pairs.append(QAPair(entry.text, entry.answer or "", entry.token_count))
        return PersonaMemory(
            name=persona.name,
            system_message=compose_system_message(persona.system_prompt, facts),
            system_tokens=persona.system_message_tokens,
            pairs=pairs,
        )

    async def conversation(
        self, session: AsyncSession, user_id: int, persona_id: int, place: ChatPlace | None = None
    ) -> CurrentConversation:
        """The user's current conversation with the persona (and its summary), started on
        first use; in a topic of their private chat (`place`), the topic's."""
        if place is not None:
            found = await self.chat_conversation(
                session, place.chat_id, place.thread_id, persona_id, user_id=user_id, start=True
            )
            assert found is not None
            return found
        current = await self.current_conversation(session, user_id, persona_id)
        if current is not None:
            return current
        conversation_id = await MessageRepository(session).start_conversation(user_id, persona_id)
        return CurrentConversation(conversation_id, user_id, persona_id)

    async def current_conversation(
        self, session: AsyncSession, user_id: int, persona_id: int
    ) -> CurrentConversation | None:
        """The user's current conversation with the persona, None before the first one: a
        read alone, never a write."""
        row = await MessageRepository(session).current_with_summary(user_id, persona_id)
        return None if row is None else _current(row, user_id, persona_id)

    async def chat_conversation(
        self,
        session: AsyncSession,
        chat_id: int,
        thread_id: int | None,
        persona_id: int,
        *,
        user_id: int,
        start: bool = False,
    ) -> CurrentConversation | None:
        """A group's (or a forum topic's) conversation with the persona, shared by its
        members; with `start`, started (on `user_id`'s account) when there is none."""
        messages = MessageRepository(session)
        row = await messages.current_in_chat(chat_id, thread_id, persona_id)
        if row is not None:
            return _current(row, user_id, persona_id)
        if not start:
            return None
        conversation_id = await messages.start_conversation(
            user_id, persona_id, chat_id=chat_id, thread_id=thread_id
        )
        return CurrentConversation(conversation_id, user_id, persona_id)

    async def set_mode(self, session: AsyncSession, user_id: int, mode: MemoryMode) -> None:
        await UserRepository(session).set_memory_mode(user_id, mode)

    async def stored_turns(self, session: AsyncSession, conversation: CurrentConversation) -> int:
        return await MessageRepository(session).count(conversation.id)

    async def report(
        self,
        session: AsyncSession,
        user_id: int,
        persona: PersonaRef,
        model: str,
        mode: MemoryMode,
        length: AnswerLength = AnswerLength.NORMAL,
        place: ChatPlace | None = None,
        everywhere: bool = False,
        *,
        profile: bool = False,
        tools: int = 0,
    ) -> MemoryReport:
        """The request /retry would send now (the newest message of the user as the new
        one, with what it recalls, and their profile with `profile`), part by part; in a
        topic (`place`), the topic's. `tools`: what the tools offered keep out of the
        conversation (none when the message is too long with them, as for the request)."""
        memory = await self.persona_memory(session, persona)
        conversation = await self.conversation(session, user_id, persona.id, place)
        sight = self.sight(model)
        last = await self.last_user_turn(session, conversation, sight)
        breakdown = None
        try:
            builder = self.builder(
                memory, last or self.user_turn(""), model, mode, length, tools=tools
            )
        except (PersonaTooLarge, MessageTooLong):
            pass
        else:
            assembled = await self.assemble(
                session,
                builder,
                conversation,
                before_id=last.id if last else None,
                query=last.content if last else None,
                sight=sight,
                everywhere=everywhere,
                profile=await self.profile_turn(session, user_id) if profile else None,
            )
            breakdown = assembled.breakdown
        summary = conversation.summary
        return MemoryReport(
            persona=memory.name,
            mode=mode,
            conversation_id=conversation.id,
            stored_turns=await self.stored_turns(session, conversation),
            breakdown=breakdown,
            summary=summary.removeprefix(SUMMARY_HEADING).strip() if summary else None,
        )

    async def profile_turn(self, session: AsyncSession, user_id: int) -> Turn | None:
        """The user's profile as it is sent: only ever into their own private conversation's
        requests (the caller knows where it is), never a group's."""
        if self.shares.profile <= 0:
            return None
        return await self.profiles.turn(session, user_id)

    async def forget(
        self,
        session: AsyncSession,
        user_id: int,
        conversation_id: int,
        place: ChatPlace | None = None,
    ) -> bool:
        """Delete the user's conversation, its turns and its summary for good, and start a
        new one with the same persona, in the same place: their private chat, or the topic
        of it that `place` names (the topic stays). False if it is not theirs, is gone, or
        lives elsewhere (a button pressed in another topic, or a forged one)."""
        messages = MessageRepository(session)
        found = await messages.place_of(user_id, conversation_id)
        if found is None:
            return False
        persona_id, chat_id, thread_id = found
        if (chat_id, thread_id) != ((place.chat_id, place.thread_id) if place else (None, None)):
            return False
        # The new conversation first: it becomes current (not the one before the forgotten
        # one), and SQLite, which reuses the highest id once it is deleted, then never gives
        # the forgotten id again, so a stale button or a late summary cannot reach the new
        # conversation.
        await messages.start_conversation(user_id, persona_id, chat_id=chat_id, thread_id=thread_id)
        return await messages.delete_conversation(user_id, conversation_id)

    async def new_conversation(
        self, session: AsyncSession, user_id: int, persona_id: int
    ) -> CurrentConversation:
        """Start afresh: older turns stay stored but are no longer sent."""
        conversation_id = await MessageRepository(session).start_conversation(user_id, persona_id)
        return CurrentConversation(conversation_id, user_id, persona_id)

    async def last_user_turn(
        self, session: AsyncSession, conversation: CurrentConversation, sight: Sight | None = None
    ) -> Turn | None:
        """The user's newest turn, with its images as `sight` sees them."""
        messages = MessageRepository(session)
        row = await messages.last_user_turn(conversation.id)
        if row is None:
            return None
        turn = Turn("user", row.content, row.token_count, row.id)
        if row.image_count:
            pictures = (await messages.pictures([row.id])).get(row.id, [])
            return self.with_pictures(turn, pictures, sight)
        return turn

    async def replace_user_turn(
        self, session: AsyncSession, conversation: CurrentConversation, turn_id: int, text: str
    ) -> Turn:
        """The user's newest message, edited: new text and count, and the answer to the old
        text removed (a new answer follows)."""
        messages = MessageRepository(session)
        row = await session.get(Message, turn_id)
        if row is None or row.conversation_id != conversation.id:
            raise LookupError(f"message {turn_id} is not in conversation {conversation.id}")
        turn = self.user_turn(text)
        row.content, row.token_count = turn.content, turn.tokens
        await messages.delete_after(conversation.id, turn_id)
        await self._rewritten(session, conversation, turn_id)
        await session.flush()
        return Turn("user", turn.content, turn.tokens, turn_id)

    async def _rewritten(
        self, session: AsyncSession, conversation: CurrentConversation, turn_id: int
    ) -> None:
        """A stored turn got new text: the old text's vector goes, the new one is embedded
        after the commit."""
        if self.embeddings is not None:
            await VectorRepository(session).forget(turn_id)
            self.embeddings.changed(conversation.id, turn_id)

    async def last_answer(
        self, session: AsyncSession, conversation: CurrentConversation
    ) -> Turn | None:
        """The conversation's newest turn when it is an answer: what Continue extends."""
        rows = await MessageRepository(session).newest(conversation.id, before_id=None, limit=1)
        if not rows or _role(rows[0][1]) is not MessageRole.ASSISTANT:
            return None
        turn_id, _, content, tokens, _, trace = rows[0]
        return Turn("assistant", content, tokens, turn_id, tools=_trace(trace))

    async def extend_answer(
        self, session: AsyncSession, conversation: CurrentConversation, turn_id: int, more: str
    ) -> Turn:
        """An answer cut at the length limit, with its continuation appended: one answer in
        the history, counted anew."""
        row = await session.get(Message, turn_id)
        if row is None or row.conversation_id != conversation.id:
            raise LookupError(f"message {turn_id} is not in conversation {conversation.id}")
        turn = self.answer_turn(row.content + more, _trace(row.tool_trace))
        row.content, row.token_count = turn.content, turn.tokens
        await self._rewritten(session, conversation, turn_id)
        await session.flush()
        return replace(turn, id=turn_id)

    async def forget_answer(
        self, session: AsyncSession, conversation: CurrentConversation, turn_id: int
    ) -> None:
        """Remove the answer(s) after the user's turn, to be answered anew."""
        await MessageRepository(session).delete_after(conversation.id, turn_id)

    async def find_user_message(
        self, session: AsyncSession, user_id: int, telegram_message_id: int
    ) -> tuple[int, int] | None:
        """(conversation id, turn id) of the user's message sent as that Telegram message."""
        row = await MessageRepository(session).by_telegram_id(user_id, telegram_message_id)
        return None if row is None else (row.conversation_id, row.id)

    def sight(self, model: str) -> Sight | None:
        """How `model` sees images; None for a model that cannot (OPENAI_VISION_MODELS adds
        to the known ones)."""
        if not sees_images(model, self._openai.vision_models):
            return None
        return Sight(model, self._openai.image_detail)

    def user_turn(
        self, text: str, pictures: Sequence[Picture] = (), sight: Sight | None = None
    ) -> Turn:
        turn = Turn("user", text, self.counter.message("user", text))
        if pictures:
            return self.with_pictures(turn, pictures, sight)
        return turn

    def with_pictures(self, turn: Turn, pictures: Sequence[Picture], sight: Sight | None) -> Turn:
        """A stored turn with its images for a model with `sight`: their tokens counted for
        it, and a note in their place as the fallback (for a blind model, the only form)."""
        note = PICTURES_NOT_SHOWN.format(count=len(pictures))
        noted_text = f"{turn.content}\n\n{note}" if turn.content else note
        noted = Turn(turn.role, noted_text, self.counter.message(turn.role, noted_text), turn.id)
        if sight is None:
            return noted
        cost = sum(sight.tokens(picture) for picture in pictures)
        return Turn(
            turn.role,
            turn.content,
            turn.tokens + cost,
            turn.id,
            tuple(pictures),
            fallback=noted,
            image_tokens=cost,
        )

    def answer_turn(self, text: str, tools: Sequence[dict[str, Any]] = ()) -> Turn:
        """An answer, after its tool rounds (if any), counted with them."""
        tokens = self.counter.message("assistant", text) + self.counter.api_messages(tools)
        return Turn("assistant", text, tokens, tools=tuple(tools))

    async def remember(
        self,
        session: AsyncSession,
        conversation: CurrentConversation,
        turn: Turn,
        telegram_message_id: int | None = None,
        source: MessageSource = MessageSource.TEXT,
        pictures: Sequence[Picture] = (),
    ) -> Turn:
        """Store a turn with the count it was given (of its text: its images are counted
        for the model of each request); returns it with its id."""
        message_id = await MessageRepository(session).add(
            conversation_id=conversation.id,
            user_id=conversation.user_id,
            persona_id=conversation.persona_id,
            role=MessageRole(turn.role),
            content=turn.content,
            token_count=turn.tokens - turn.image_tokens,
            telegram_message_id=telegram_message_id,
            source=source,
            pictures=pictures,
            tool_trace=json.dumps(turn.tools, ensure_ascii=False) if turn.tools else None,
        )
        return replace(turn, id=message_id, pictures=(), fallback=None, image_tokens=0)

    def builder(
        self,
        persona: PersonaMemory,
        new_turn: Turn,
        model: str,
        mode: MemoryMode = MemoryMode.CHAT,
        length: AnswerLength = AnswerLength.NORMAL,
        tools: int = 0,
    ) -> ContextBuilder:
        """Raises PersonaTooLarge or MessageTooLong before anything is stored or sent.
        `tools`: tokens kept out of the conversation for the tools offered; a message too
        long with them is built without (its breakdown then keeps none: no tools are
        offered for it, since they must not cost an answer)."""
        budget = self.budget_for(model, mode, length)
        style = self.style(length)
        if tools:
            try:
                return ContextBuilder(
                    persona, new_turn, replace(budget, tools=tools), self.shares, style=style
                )
            except (PersonaTooLarge, MessageTooLong):
                pass
        return ContextBuilder(persona, new_turn, budget, self.shares, style=style)

    async def assemble(
        self,
        session: AsyncSession,
        builder: ContextBuilder,
        conversation: CurrentConversation,
        *,
        before_id: int | None = None,
        query: str | None = None,
        sight: Sight | None = None,
        everywhere: bool = False,
        profile: Turn | None = None,
    ) -> Assembled:
        """Fill the builder in priority order: the user's `profile` (in a private
        conversation only: the caller passes it), the summary, recent turns (older than
        `before_id`, if given) newest-first, turns recalled by searching for `query`, then
        recent turns again with what recall left. History is read only as far as it fits.
        Images of older turns are counted for `sight` (a note stands in for them when they
        do not fit, or when it is None); recalled turns come as their text."""
        if conversation.group_id is None:
            builder.use_profile(profile)
        builder.use_summary(conversation.summary_turn)
        if conversation.documents:
            await self._excerpts(session, builder, conversation, query)
        if query is None or self.settings.recall_turns == 0:
            builder.release_recall()
        history = _History(self, MessageRepository(session), conversation.id, before_id, sight)
        await history.fill(builder)
        if builder.full and query is not None:
            # Only now is there anything older than the recent turns to recall.
            boundary = builder.oldest_recent_id or before_id
            if boundary is not None:
                rows = await self._recalled(session, conversation, query, boundary, everywhere)
                builder.recall(
                    Turn(_role(role).value, content, tokens, row_id)
                    for row_id, role, content, tokens in rows
                )
        if builder.full:
            builder.release_recall()
            await history.fill(builder)
        return builder.build()

    async def _recalled(
        self,
        session: AsyncSession,
        conversation: CurrentConversation,
        query: str,
        before_id: int,
        everywhere: bool,
    ) -> Sequence[Row[int, MessageRole | str, str, int]]:
        """The older turns to recall for `query`, best first: found by words and, with an
        embedding model, by meaning, the two rankings fused (reciprocal rank fusion).
        `everywhere`: in the user's other conversations with the persona too."""
        limit = self.settings.recall_turns
        if limit <= 0:
            return []  # recall is off: no search, and no embedding asked for
        terms = search_terms(query)
        embeddings = self.embeddings
        # The new message's vector is asked for while the words are searched: the
        # request's own work (the client's, the way there and back) hides behind the
        # database's, and the server's behind both. (The vector search on a connection
        # of its own, beside the words' search, gained nothing once the request is
        # counted: the event loop's work is what is left, and it is one thread.)
        asking = (
            asyncio.create_task(embeddings.query(query), name="query-vector")
            if embeddings is not None
            else None
        )
        try:
            others: list[int] = []
            if everywhere and conversation.group_id is None:
                others = await MessageRepository(session).other_conversations(
                    conversation.user_id, conversation.persona_id, conversation.id, limit=OTHERS
                )
            # Each ranking offers twice what is recalled: fusion rewards agreement.
            by_words = (
                await RecallRepository(session).search(
                    conversation.id, terms, before_id=before_id, limit=limit * 2, others=others
                )
                if terms
                else []
            )
            vector = await asking if asking is not None else None
        finally:
            if asking is not None and not asking.done():
                asking.cancel()  # the search failed, or the answer was stopped
        if embeddings is None or vector is None:
            return by_words[:limit]
        by_meaning = await embeddings.nearest(
            session, conversation.id, vector, before_id=before_id, limit=limit * 2, others=others
        )
        return fuse([by_meaning, by_words], key=lambda row: int(row[0]), limit=limit)

    async def _excerpts(
        self,
        session: AsyncSession,
        builder: ContextBuilder,
        conversation: CurrentConversation,
        query: str | None,
    ) -> None:
        """The parts of the conversation's long documents that match the message, best
        first, then the beginning of the newest one, within the document share; counted
        exactly as the one message they are sent in."""
        documents = DocumentRepository(session)
        terms = search_terms(query) if query else []
        rows: dict[int, PartRow] = {}
        by_words = (
            await documents.search(conversation.id, terms, limit=MAX_EXCERPTS) if terms else []
        )
        found: Sequence[PartRow] = by_words
        embeddings = self.embeddings
        vector = await embeddings.query(query) if embeddings is not None and query else None
        if embeddings is not None and vector is not None:
            # By meaning too: the parts nearest to the message, fused with those by words.
            by_meaning = await embeddings.nearest_parts(
                session, conversation.id, vector, limit=MAX_EXCERPTS
            )
            found = fuse([by_meaning, by_words], key=lambda row: int(row[0]), limit=MAX_EXCERPTS)
        for row in found:
            rows.setdefault(row[0], row)
        if len(rows) < MAX_EXCERPTS:
            for row in await documents.beginning(conversation.id, limit=MAX_EXCERPTS):
                rows.setdefault(row[0], row)
        share = self.settings.document_share
        room = int(builder.conversation_budget * share)
        # Each part's stored count plus its header is nearly exact (a header is a few
        # tokens); the message is then counted whole, and shortened until it fits.
        chosen: list[PartRow] = []
        total = self.counter.message("system", EXCERPTS_HEADING)
        for row in rows.values():
            cost = row[5] + self.counter.text(_excerpt_header(row)) + 2
            if total + cost <= room:
                chosen.append(row)
                total += cost
        while chosen:
            text = _excerpts_text(chosen)
            turn = Turn("system", text, self.counter.message("system", text))
            if turn.tokens <= room:
                builder.use_excerpts(turn, share)
                return
            chosen.pop()


def _current(
    row: Row[int, str | None, int, int | None, int, str | None], user_id: int, persona_id: int
) -> CurrentConversation:
    """A conversation as its look-up row gives it (id, summary, its tokens, how far it
    covers, long documents, title)."""
    conversation_id, summary, summary_tokens, until_id, documents, title = row
    return CurrentConversation(
        conversation_id, user_id, persona_id, summary, summary_tokens, until_id, documents, title
    )


def _excerpt_header(row: PartRow) -> str:
    return EXCERPT_HEADER.format(name=row[1], position=row[2], parts=row[3])


def _excerpts_text(rows: Sequence[PartRow]) -> str:
    """The parts in document order (stored in order: by id), each under its header."""
    ordered = sorted(rows, key=lambda row: row[0])
    body = "\n\n".join(f"{_excerpt_header(row)}\n{row[4]}" for row in ordered)
    return f"{EXCERPTS_HEADING}\n\n{body}"


class _History:
    """A conversation's turns newest-first, read in growing pages only as they are taken;
    filling can stop (for recall) and go on where it stopped."""

    def __init__(
        self,
        memory: MemoryService,
        messages: MessageRepository,
        conversation_id: int,
        before_id: int | None,
        sight: Sight | None,
    ) -> None:
        self._memory = memory
        self._sight = sight
        self._messages = messages
        self._conversation_id = conversation_id
        self._before_id = before_id
        self._page = FIRST_PAGE
        self._turns: list[Turn] = []
        self._next = 0
        self._exhausted = False

    async def fill(self, builder: ContextBuilder) -> None:
        """Offer turns until the builder is full or they run out."""
        while True:
            turns, start = self._turns, self._next
            for index in range(start, len(turns)):
                if not builder.offer(turns[index]):
                    self._next = index + 1  # the builder keeps the turn it refused
                    return
            self._next = len(turns)
            if self._exhausted:
                return
            await self._read_page()

    async def _read_page(self) -> None:
        rows = await self._messages.newest(
            self._conversation_id, before_id=self._before_id, limit=self._page
        )
        self._turns = await self._dress(rows)
        self._next = 0
        if len(rows) < self._page:
            self._exhausted = True
        else:
            self._before_id = rows[-1][0]
            self._page = min(self._page * 4, MAX_PAGE)

    async def _dress(
        self, rows: Sequence[Row[int, MessageRole, str, int, int, str | None]]
    ) -> list[Turn]:
        """Turns of a page; the images of those that carry some, in one query."""
        with_images = [row[0] for row in rows if row[4]]
        pictures = await self._messages.pictures(with_images) if with_images else {}
        turns: list[Turn] = []
        for row_id, role, content, tokens, _, trace in rows:
            name: Role = "assistant" if role is MessageRole.ASSISTANT else "user"
            turn = Turn(name, content, tokens, row_id, tools=_trace(trace))
            if row_id in pictures:
                turn = self._memory.with_pictures(turn, pictures[row_id], self._sight)
            turns.append(turn)
        return turns


def _trace(stored: str | None) -> tuple[dict[str, Any], ...]:
    """An answer's stored tool rounds; none when there are none or they do not read."""
    if not stored:
        return ()
    try:
        messages = json.loads(stored)
    except ValueError:
        log.warning("A stored tool trace is not JSON; the answer is sent without it")
        return ()
    if not isinstance(messages, list):
        return ()
    return tuple(message for message in messages if isinstance(message, dict))


def _role(role: MessageRole | str) -> MessageRole:
    # Raw SQL (SQLite's full-text search) returns the stored string, the ORM the enum.
    return role if isinstance(role, MessageRole) else MessageRole(role)
