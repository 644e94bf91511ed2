"""The database schema as SQLAlchemy 2 typed models; alembic migrations are generated from it."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    false,
    func,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import REAL, TypeDecorator, TypeEngine

from app.domain.clock import utcnow
from app.domain.enums import (
    AnswerLength,
    BudgetUnit,
    GroupMembers,
    GroupStatus,
    MemoryKind,
    MemoryMode,
    MessageRole,
    MessageSource,
    ReasoningDisplay,
    RequestStatus,
    Role,
    VoiceReplies,
)
from app.domain.rights import Right

# Stable constraint names so alembic can alter them on SQLite (batch mode) and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the project's naming convention."""

    metadata = MetaData(naming_convention=NAMING)


def _enum(kind: type[enum.StrEnum], length: int) -> Enum:
    return Enum(
        kind, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class User(Base):
    """A Telegram user the bot has seen."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_name: Mapped[str] = mapped_column(String(256), default="")
    last_name: Mapped[str | None] = mapped_column(String(256))
    username: Mapped[str | None] = mapped_column(String(64))
    language_code: Mapped[str | None] = mapped_column(String(16))
    role: Mapped[Role] = mapped_column(
        _enum(Role, 16),
        default=Role.USER,
    )
    # The "chat" right: may talk to the model. The other rights only matter with it.
    has_access: Mapped[bool] = mapped_column(default=False)
    # Existing users keep what they could do before rights existed (server default true);
    # users registered later get the owner's NEW_USER_RIGHTS.
    can_create_personas: Mapped[bool] = mapped_column(default=True, server_default=true())
    can_edit_personas: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Blocked by an admin: no access, and no access requests either.
    blocked: Mapped[bool] = mapped_column(default=False, server_default=false())
    persona_id: Mapped[int | None] = mapped_column(ForeignKey("personas.id", ondelete="SET NULL"))
    model: Mapped[str | None] = mapped_column(String(128))
    temperature: Mapped[float | None]
    # NULL: the owner's default mode (MEMORY_DEFAULT_MODE).
    memory_mode: Mapped[MemoryMode | None] = mapped_column(_enum(MemoryMode, 8))
    # NULL: from the user's Telegram language.
    language: Mapped[str | None] = mapped_column(String(8))
    # NULL: normal.
    answer_length: Mapped[AnswerLength | None] = mapped_column(_enum(AnswerLength, 8))
    # NULL: off (the reasoning of a reasoning model is not shown).
    reasoning_display: Mapped[ReasoningDisplay | None] = mapped_column(_enum(ReasoningDisplay, 8))
    # NULL: off (answers are text only).
    voice_replies: Mapped[VoiceReplies | None] = mapped_column(_enum(VoiceReplies, 8))
    # Recall searches all the user's conversations with the persona, not only the current
    # one (/settings); NULL: only the current one, as /new promises.
    recall_everywhere: Mapped[bool | None]
    # NULL unit: the owner's default budget (BUDGET_*). Otherwise the user's own limits in
    # that unit, where a NULL limit means none.
    budget_unit: Mapped[BudgetUnit | None] = mapped_column(_enum(BudgetUnit, 8))
    budget_daily: Mapped[float | None] = mapped_column(Float)
    budget_monthly: Mapped[float | None] = mapped_column(Float)
    # Whether the bot keeps a profile of the user (ProfileFact); NULL: the owner's default
    # (MEMORY_PROFILE).
    memory_profile: Mapped[bool | None]
    # The newest of the user's turns the profile writer has read.
    profile_until_id: Mapped[int | None] = mapped_column(Integer)
    # Rights to tools beyond RIGHT_COLUMNS (a plugin's, an MCP server's: "mcp_files"),
    # granted by admins; space-separated names. They count only together with chat.
    tool_rights: Mapped[str | None] = mapped_column(Text)
    # An IANA time zone chosen in /settings (the date and time tool, reminders); NULL:
    # DEFAULT_TIMEZONE.
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class ProfileFact(Base):
    """One durable fact about a user (their profile), shared by all their personas and
    shown to nobody else."""

    __tablename__ = "profile_facts"
    __table_args__ = (Index("ix_profile_facts_user", "user_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    # The fact's tokens as a line of the profile, counted once when written.
    token_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


# The users column behind each right but admin (which is the role).
RIGHT_COLUMNS: dict[Right, str] = {
    Right.CHAT: "has_access",
    Right.CREATE_PERSONAS: "can_create_personas",
    Right.EDIT_PERSONAS: "can_edit_personas",
}


class AccessRequest(Base):
    """A stranger asking the admins for access; at most one is pending per user."""

    __tablename__ = "access_requests"
    __table_args__ = (Index("ix_access_requests_user_status", "user_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[RequestStatus] = mapped_column(
        _enum(RequestStatus, 16), default=RequestStatus.PENDING
    )
    # The messages sent to admins about it, [[chat_id, message_id], ...], so that when one
    # admin decides, the others' copies can be updated.
    notices: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Usage(Base):
    """Tokens a user spent on one model in one day (UTC), as the API reported them."""

    __tablename__ = "usage"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    # In the price table's currency (USD by default), priced when recorded: a later price
    # change does not rewrite the past.
    cost: Mapped[float] = mapped_column(Float, default=0.0)


class Persona(Base):
    """A character: a name, a system prompt and a memory shared by everyone who talks to it."""

    __tablename__ = "personas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    system_prompt: Mapped[str] = mapped_column(Text)
    # Exact cost of the system message (prompt + facts, see app/memory/context.py),
    # recounted whenever the prompt or a fact changes, never per request.
    system_message_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped by every change to the prompt or the memory, so a process can keep the memory
    # cached and know from one look at this number whether its copy is still current.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # NULL owner: the persona belongs to the admins (the default persona does). Not a
    # foreign key: users.persona_id already points here, and a cycle of keys would need
    # ALTER TABLE tricks that SQLite does not have.
    owner_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    is_default: Mapped[bool] = mapped_column(default=False)
    # Shared personas may be chosen by every user with access; others only by their owner.
    shared: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class MemoryEntry(Base):
    """One entry of a persona's persistent memory, in the order the model sees it."""

    __tablename__ = "memory_entries"
    __table_args__ = (Index("ix_memory_entries_persona_position", "persona_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    persona_id: Mapped[int] = mapped_column(ForeignKey("personas.id", ondelete="CASCADE"))
    kind: Mapped[MemoryKind] = mapped_column(_enum(MemoryKind, 8))
    # A fact's text, or a pair's question.
    text: Mapped[str] = mapped_column(Text)
    # A pair's answer; NULL for facts.
    answer: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    # What this entry adds to a request, counted once when it is written.
    token_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class Group(Base):
    """A group or supergroup the bot was added to, and whether it may be used there."""

    __tablename__ = "groups"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[GroupStatus] = mapped_column(_enum(GroupStatus, 16))
    # Who added the bot (the my_chat_member update says): approvals name them.
    added_by: Mapped[int | None] = mapped_column(BigInteger)
    # None: GROUP_MEMBERS; and the default persona.
    members: Mapped[GroupMembers | None] = mapped_column(_enum(GroupMembers, 16))
    persona_id: Mapped[int | None] = mapped_column(ForeignKey("personas.id", ondelete="SET NULL"))
    # The group's /settings. NULL language: each member's own; NULL length: normal.
    language: Mapped[str | None] = mapped_column(String(8))
    answer_length: Mapped[AnswerLength | None] = mapped_column(_enum(AnswerLength, 8))
    # Keep the last few messages not addressed to the bot as context (group_heard).
    listen: Mapped[bool] = mapped_column(default=False, server_default=false())
    # NULL unit: no limit of the group's own (its members' own limits apply all the same).
    budget_unit: Mapped[BudgetUnit | None] = mapped_column(_enum(BudgetUnit, 8))
    budget_daily: Mapped[float | None] = mapped_column(Float)
    budget_monthly: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class GroupUsage(Base):
    """What a group's members spent there, per UTC day and model (their own rows in `usage`
    count it too): what a group's budget is checked against."""

    __tablename__ = "group_usage"

    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("groups.chat_id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)


class HeardMessage(Base):
    """A group message not addressed to the bot, kept (only while the group's "listen" is
    on, and only the last few) as context for its next answer there; deleted once that
    answer took it in, by /forget, and when listening is switched off."""

    __tablename__ = "group_heard"
    __table_args__ = (Index("ix_group_heard_chat_thread", "chat_id", "thread_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("groups.chat_id", ondelete="CASCADE")
    )
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(256), default="")
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class Conversation(Base):
    """One conversation of a user with a persona; `/new` starts the next one."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_user_persona", "user_id", "persona_id", "id"),
        Index("ix_conversations_user_persona_active", "user_id", "persona_id", "active_at"),
        Index("ix_conversations_chat", "chat_id", "thread_id", "persona_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Whose it is; in a group, who started it (it is the group's: `chat_id`).
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    persona_id: Mapped[int] = mapped_column(ForeignKey("personas.id", ondelete="CASCADE"))
    # A group's conversation (its topic: `thread_id`), shared by its members; None for a
    # private one.
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(Integer)
    # The rolling summary of the turns that no longer fit, as the system message it is sent
    # as; its cost is counted once when written. It covers every turn up to and including
    # `summary_until_id`; the turns themselves stay stored.
    summary: Mapped[str | None] = mapped_column(Text)
    summary_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    summary_until_id: Mapped[int | None] = mapped_column(Integer)
    # How many documents too long to send whole it holds (their parts: DocumentChunk): the
    # parts are searched for each message only where there are some.
    documents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A short title (written after the first answer, or by the user in /chats).
    title: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )
    # When the user last started or chose it: the current conversation is the latest.
    # (Nullable only so that SQLite could add it in place; the migration fills it in.)
    active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=utcnow)


class Vector(TypeDecorator[np.ndarray]):
    """An embedding, handed in and out as a float32 numpy array: float32 bytes in SQLite
    (compared with numpy in the process, app/db/vectors.py), a real[] in PostgreSQL as the
    migrations make it, which the first process that finds pgvector converts to pgvector's
    halfvec or vector (app/db/vectors.py; a migration altering these columns must expect
    either). alembic/env.py renders it plainly."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(REAL()))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        array = np.asarray(value, dtype=np.float32)
        return array.tolist() if dialect.name == "postgresql" else array.tobytes()

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], np.ndarray | None]:
        """Read raw, without real[]'s own reader: once converted, the column is pgvector's
        halfvec or vector, which asyncpg hands over as text and that reader refuses."""
        return partial(self.process_result_value, dialect=dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            return np.frombuffer(value, dtype=np.float32)
        if isinstance(value, str):  # pgvector's halfvec or vector, as text: [0.1,0.2,...]
            return np.array(value.strip("[]").split(","), dtype=np.float32)
        return np.asarray(value, dtype=np.float32)


class MessageVector(Base):
    """A turn's embedding, for recall by meaning; written in the background after the turn
    (app/memory/embeddings.py), one per turn and embedding model."""

    __tablename__ = "message_vectors"
    __table_args__ = (Index("ix_message_vectors_conversation", "conversation_id", "message_id"),)

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # Part of the key: after a change of model, the old vectors stay until the new model's
    # are written, and recall never compares the two.
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    vector: Mapped[np.ndarray] = mapped_column(Vector())


class Message(Base):
    """A conversation turn, stored with what it costs in a request."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index("ix_messages_user_telegram_message", "user_id", "telegram_message_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    persona_id: Mapped[int] = mapped_column(ForeignKey("personas.id", ondelete="CASCADE"))
    role: Mapped[MessageRole] = mapped_column(_enum(MessageRole, 16))
    content: Mapped[str] = mapped_column(Text)
    # Tokens this turn costs in the chat format (content + per-message overhead).
    token_count: Mapped[int] = mapped_column(Integer)
    # The user's Telegram message a user turn came from, so an edit of it can be found.
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # A user turn typed or spoken (its content is then the transcript).
    source: Mapped[MessageSource] = mapped_column(
        _enum(MessageSource, 16), default=MessageSource.TEXT, server_default=MessageSource.TEXT
    )
    # How many images the turn carries (rows of message_images): history is read without a
    # second query unless a turn has some.
    image_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # An answer's tool rounds, as the API took them (JSON: the assistant's messages with
    # their calls and the tool messages with the results), sent again before its text so
    # that a follow-up can build on them; `token_count` includes them.
    tool_trace: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class MessageImage(Base):
    """An image a user turn carries, by its Telegram file: the bytes stay with Telegram,
    which hands a bot its files again at any time (app/services/pictures.py), so the
    database stays small and every replica can fetch them. Its size is kept so its tokens
    are counted, for whichever model, without fetching it."""

    __tablename__ = "message_images"
    __table_args__ = (Index("ix_message_images_message_id", "message_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    file_id: Mapped[str] = mapped_column(String(255))
    file_unique_id: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # What the model is sent: image/jpeg, image/png, image/webp or image/gif.
    mime_type: Mapped[str] = mapped_column(String(32))
    # A page of a scanned PDF (the file): rendered again from the PDF when needed.
    page: Mapped[int | None] = mapped_column(Integer)


class DocumentChunk(Base):
    """A part of a document too long to send whole, stored with the conversation and found
    by full-text search (the document_chunks_fts index, like the recall of old turns) for
    each question; the user's turn that sent the document says what it was."""

    __tablename__ = "document_chunks"
    __table_args__ = (Index("ix_document_chunks_conversation_id", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer)  # from 1
    parts: Mapped[int] = mapped_column(Integer)  # of the document
    content: Mapped[str] = mapped_column(Text)
    # Tokens of the content as text (the excerpts' message is counted whole when sent).
    token_count: Mapped[int] = mapped_column(Integer)


class ChunkVector(Base):
    """A long document's part's embedding, as MessageVector is a turn's."""

    __tablename__ = "chunk_vectors"
    __table_args__ = (Index("ix_chunk_vectors_conversation", "conversation_id", "chunk_id"),)

    chunk_id: Mapped[int] = mapped_column(
        ForeignKey("document_chunks.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    vector: Mapped[np.ndarray] = mapped_column(Vector())


class PendingAnswer(Base):
    """An answer being written: stored with the user's turn, deleted with the answer (or
    once the user was told why there is none). One left behind by a process that died
    mid-answer is found by the others, or by the next start, and the user is told to /retry
    (app/services/recovery.py)."""

    __tablename__ = "pending_answers"
    __table_args__ = (Index("ix_pending_answers_heartbeat_at", "heartbeat_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    # The user's Telegram message the answer is for: the note about a lost answer replies to it.
    reply_to: Mapped[int | None] = mapped_column(BigInteger)
    # The process writing it (a random token per start) and when that process last said it
    # is alive; a stale heartbeat means the answer was interrupted.
    owner: Mapped[str] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class ScheduledJob(Base):
    """Something a plugin asked to be done at a time (a reminder): kept until it is done,
    so a restart loses none. A process claims due jobs for a while (`leased_until`), so
    that with several replicas one does each (app/services/jobs.py)."""

    __tablename__ = "scheduled_jobs"
    __table_args__ = (
        Index("ix_scheduled_jobs_due_at", "due_at"),
        Index("ix_scheduled_jobs_plugin_user", "plugin", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plugin: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The plugin's own data (JSON): a reminder's text and language.
    payload: Mapped[str] = mapped_column(Text, default="{}")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class FsmRecord(Base):
    """The state and data of one user's dialog, so dialogs survive a restart."""

    __tablename__ = "fsm_records"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class ProcessedUpdate(Base):
    """An update already handled: a redelivered one is recognised and not answered twice."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), index=True
    )
