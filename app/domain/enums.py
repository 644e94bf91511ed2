"""The domain's enumerations: what a user is, what memory holds, how answers are shaped."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """What a user is to the bot."""

    USER = "user"
    ADMIN = "admin"


class MemoryKind(enum.StrEnum):
    """A persona memory entry: a fact, or a question/answer pair shown as an example turn."""

    FACT = "fact"
    QA = "qa"


class MemoryMode(enum.StrEnum):
    """How a user's requests split the window: more history (chat) or a longer answer (task)."""

    CHAT = "chat"
    TASK = "task"


class AnswerLength(enum.StrEnum):
    """How long a user wants answers: it sets the answer reserve and a hint to the model."""

    SHORT = "short"
    NORMAL = "normal"
    LONG = "long"


class ReasoningDisplay(enum.StrEnum):
    """What a reasoning model's reasoning shows of itself after the answer is complete."""

    OFF = "off"
    FOLDED = "folded"  # an expandable quote above the answer


class VoiceReplies(enum.StrEnum):
    """When an answer is also spoken, as a voice message after its text."""

    OFF = "off"
    TO_VOICE = "voice"  # when the user's own message was spoken
    ALWAYS = "always"


class BudgetUnit(enum.StrEnum):
    """What a budget limits: tokens (in + out) or money (from the price table)."""

    TOKENS = "tokens"
    MONEY = "money"


class RequestStatus(enum.StrEnum):
    """Where an access request stands."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class MessageSource(enum.StrEnum):
    """What a user turn was sent as: typed, or spoken (the stored text is the transcript)."""

    TEXT = "text"
    VOICE = "voice"
    PHOTO = "photo"  # its content is the caption; the images are stored beside it
    DOCUMENT = "document"  # its content is the caption; the document's text beside it
    GUEST = "guest"  # asked where the bot is not a member (a guest query), answered there


class MessageRole(enum.StrEnum):
    """Who said a conversation turn."""

    USER = "user"
    ASSISTANT = "assistant"


class GroupStatus(enum.StrEnum):
    """Where a group the bot was added to stands."""

    PENDING = "pending"  # added by someone who is no bot admin: waits for an admin
    ALLOWED = "allowed"
    BLOCKED = "blocked"  # an admin said no: the bot stays silent there
    LEFT = "left"  # the bot was removed


class GroupMembers(enum.StrEnum):
    """Who may talk to the bot in an allowed group."""

    ALL = "all"  # every member
    ALLOWED = "allowed"  # only users with access of their own


class ImageDetail(enum.StrEnum):
    """How closely a vision model looks at an image: the `detail` of an image part."""

    AUTO = "auto"  # the server picks; counted as the docs say it sizes, else as the dearest
    LOW = "low"
    HIGH = "high"
