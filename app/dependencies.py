"""What handlers are given, by name: the dispatcher's app-wide objects and what the
middlewares add per update. One TypedDict for each, so the factory is type-checked when it
builds them and a test (tests/unit/test_dependencies.py) checks that every handler asks only
for names that exist, with the types they have here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from aiogram.types import Message
from aiogram.utils.i18n import I18n
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.commands import CommandBook
from app.config import Settings
from app.db.updates import ProcessedUpdates
from app.domain.users import Preferences, UserContext
from app.memory.profile import ProfileWriter
from app.memory.service import MemoryService
from app.memory.summary import Summarizer
from app.middlewares.inflight import InFlightMiddleware
from app.services.access_requests import AccessRequestService
from app.services.chat import ChatService
from app.services.conversations import ConversationService
from app.services.documents import DocumentService
from app.services.groups import GroupService
from app.services.identity import IdentityService
from app.services.personas import PersonaService
from app.services.preferences import PreferencesService
from app.services.profile import ProfileService
from app.services.speech import SpeechService
from app.services.usage import UsageService
from app.services.user_admin import UserAdminService
from app.services.voice import VoiceService
from app.tools.toolbox import Toolbox


@dataclass(slots=True)
class Resources:
    """App-wide objects the dispatcher hands to handlers and closes at shutdown."""

    engine: AsyncEngine
    pool: async_sessionmaker[AsyncSession]
    llm: AsyncOpenAI
    memory: MemoryService
    chat: ChatService
    users: IdentityService
    inflight: InFlightMiddleware
    updates: ProcessedUpdates
    summarizer: Summarizer
    usage: UsageService
    profile_writer: ProfileWriter


class AppData(TypedDict):
    """The dispatcher's workflow data: built once in `create_dispatcher`, closed at shutdown."""

    settings: Settings
    resources: Resources  # what shutdown closes; tests reach the services through it
    pool: async_sessionmaker[AsyncSession]
    memory: MemoryService
    chat: ChatService
    users: IdentityService
    personas: PersonaService
    usage: UsageService
    i18n: I18n
    user_choices: PreferencesService
    user_admin: UserAdminService
    access_requests: AccessRequestService
    voice: VoiceService
    documents: DocumentService
    conversations: ConversationService
    profile: ProfileService
    groups: GroupService
    speech: SpeechService
    toolbox: Toolbox  # every tool and the rights they need (/users grants them)
    command_book: CommandBook  # our commands and the plugins' (menus, /help, unknown)


class MiddlewareData(TypedDict, total=False):
    """What our middlewares add to a handler's keyword arguments, per update."""

    session: AsyncSession  # DbSessionMiddleware (outer): one per message or button press
    user: UserContext  # AccessMiddleware (outer): who is writing, their rights and persona
    preferences: Preferences  # PreferencesMiddleware (inner): persona, model, temperature
    album: list[Message] | None  # AlbumMiddleware (outer): all parts of an album, on its first
    overheard: bool  # GroupGateMiddleware (outer): a group message kept only as context


class HandlerData(AppData, MiddlewareData):
    """Everything of ours a handler may ask for by name (aiogram adds its own: bot, state,
    event_update, ...)."""
