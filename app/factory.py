"""Builds the bot and the dispatcher; `python -m app` and the tests use the same factories."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder
from aiogram.utils.token import extract_bot_id
from babel.support import LazyProxy
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.commands import CommandBook, register_menu
from app.config import PUBLIC_TELEGRAM_API, Settings
from app.db.engine import WriteGate, create_engine, create_sessionmaker
from app.db.migrate import upgrade
from app.db.updates import ProcessedUpdates, forget_old_updates
from app.delivery.pacing import ChatPacer
from app.delivery.session import create_session
from app.dependencies import AppData, Resources
from app.fsm.storage import AppRedisStorage, SqlStorage
from app.handlers import get_routers
from app.i18n import UserLocaleMiddleware, create_i18n
from app.llm.client import create_llm_client
from app.llm.embeddings import create_embedder
from app.llm.speech import Speaker
from app.llm.transcribe import create_transcriber
from app.mcp.client import McpManager
from app.mcp.config import load_config
from app.mcp.tools import right_name
from app.memory.embeddings import Embeddings
from app.memory.profile import ProfileWriter
from app.memory.service import MemoryService
from app.memory.summary import Summarizer
from app.memory.tokens import load_counter
from app.middlewares.access import AccessMiddleware
from app.middlewares.album import AlbumMiddleware
from app.middlewares.db import DbSessionMiddleware
from app.middlewares.groups import GroupGateMiddleware
from app.middlewares.inflight import InFlightMiddleware
from app.middlewares.paste import PasteMergeMiddleware
from app.middlewares.preferences import PreferencesMiddleware
from app.middlewares.serial import PerUserSerialMiddleware
from app.middlewares.shared_lock import SharedUserLocks
from app.middlewares.spoken import SpokenTextMiddleware
from app.plugin_host import PluginHost
from app.services.access_requests import AccessRequestService
from app.services.chat import ChatService
from app.services.conversations import ConversationService
from app.services.documents import DocumentService
from app.services.downloads import PUBLIC_DOWNLOAD_LIMIT
from app.services.generations import Generations
from app.services.groups import GroupService
from app.services.identity import IdentityService
from app.services.jobs import JobScheduler
from app.services.personas import PersonaService, ensure_default_persona
from app.services.pictures import Pictures
from app.services.preferences import PreferencesService
from app.services.profile import ProfileService
from app.services.recovery import InterruptedAnswers
from app.services.shared_stops import SharedStops
from app.services.speech import SpeechService
from app.services.spending import PluginSpending
from app.services.summary_locks import SharedSummaryLocks
from app.services.tools import ToolService
from app.services.usage import UsageService
from app.services.user_admin import UserAdminService
from app.services.voice import VoiceService
from app.texts import mcp_right
from app.tools import builtin_tools
from app.tools.toolbox import Toolbox
from app.tools.web import WebTools, create_web_tools
from app.views.chat import continue_keyboard
from app.views.usage import budget_refusal

log = logging.getLogger(__name__)

# How long shutdown waits for answers in flight before cancelling them.
SHUTDOWN_GRACE = 10.0
# How long shutdown waits for summaries being written.
SUMMARY_GRACE = 3.0


def create_storage(settings: Settings, pool: async_sessionmaker[AsyncSession]) -> BaseStorage:
    """Dialog states: in our database by default, in Redis when REDIS_URL is set; either way
    they survive a restart."""
    if settings.redis.url:
        return AppRedisStorage.from_url(
            settings.redis.url, key_builder=DefaultKeyBuilder(with_bot_id=True, with_destiny=True)
        )
    return SqlStorage(pool)


def create_shared_locks(settings: Settings, storage: BaseStorage) -> SharedUserLocks | None:
    """With REDIS_URL, one user's messages wait for each other across processes, in the same
    Redis as the dialog states (its client, when the storage is ours)."""
    if not settings.redis.url:
        return None
    # A process unheard of for CHAT_INTERRUPTED_AFTER is dead: its users' locks expire by
    # then, as its answers count as interrupted, so a /retry after the note never waits.
    ttl = settings.chat.interrupted_after
    if isinstance(storage, AppRedisStorage):
        return SharedUserLocks(storage.redis, ttl=ttl, renew_every=ttl / 3)
    from redis.asyncio import Redis

    return SharedUserLocks(
        Redis.from_url(settings.redis.url), ttl=ttl, renew_every=ttl / 3, owns_client=True
    )


def shared_redis(settings: Settings, storage: BaseStorage) -> tuple[Redis | None, bool]:
    """The Redis that stops and summary locks go through with REDIS_URL: the dialog states'
    client when the storage is ours, else one of their own; and whether shutdown closes it."""
    if not settings.redis.url:
        return None, False
    if isinstance(storage, AppRedisStorage):
        return storage.redis, False
    return Redis.from_url(settings.redis.url), True


def create_web(settings: Settings) -> WebTools:
    """read_page, and web_search when SEARCH_SEARXNG_URL or SEARCH_BRAVE_API_KEY is set."""
    search = settings.search
    key = search.brave_api_key
    return create_web_tools(
        searxng_url=search.searxng_url,
        brave_url=search.brave_url,
        brave_api_key=key.get_secret_value() if key is not None else None,
        results=search.results,
        page_max_bytes=search.page_max_bytes,
        page_timeout=search.page_timeout,
        allow_private_addresses=search.allow_private_addresses,
    )


def create_bot(settings: Settings) -> Bot:
    session = create_session(settings.telegram.api_url)
    return Bot(
        token=settings.telegram.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def create_dispatcher(
    settings: Settings,
    *,
    storage: BaseStorage | None = None,
    stream_interval: float = 1.0,
    pace_window: float = 60.0,
    shutdown_grace: float = SHUTDOWN_GRACE,
    paste_window: float = 1.0,
    first_routers: Sequence[Router] = (),
    clock: Callable[[], datetime] | None = None,
    jobs_poll: float = 30.0,
) -> Dispatcher:
    """The dispatcher with every router and middleware; start-up migrates and seeds.

    `first_routers` see updates before ours, behind the same middlewares and error handler
    (tests add one whose handler fails). `clock`: what tools and scheduled jobs read as now
    (aware, UTC); `jobs_poll`: seconds between looks for jobs due (tests move the clock)."""
    engine = create_engine(settings.database.url)
    pool = create_sessionmaker(engine)
    counter = load_counter(settings.openai.model)
    memory = MemoryService(counter, settings.openai, settings.memory)
    memory.budget_for(settings.openai.model)  # an unusable window stops start-up here
    llm = create_llm_client(settings.openai)
    embedder = create_embedder(settings.openai, settings.embeddings, llm)
    if embedder is not None:
        memory.embeddings = Embeddings(
            pool,
            embedder,
            batch=settings.embeddings.batch,
            dialect=engine.url.get_backend_name(),
        )
    usage = UsageService(settings.budget)
    storage = storage or create_storage(settings, pool)
    redis, owns_redis = shared_redis(settings, storage)
    bot_id = extract_bot_id(settings.telegram.bot_token.get_secret_value())
    summarizer = Summarizer(
        pool,
        llm,
        counter,
        settings.openai,
        settings.memory,
        usage=usage,
        locks=SharedSummaryLocks(redis, bot_id=bot_id) if redis is not None else None,
    )
    profile_writer = ProfileWriter(
        pool, llm, memory.profiles, settings.openai, settings.memory, usage=usage
    )
    shared_stops = SharedStops(redis, Generations()) if redis is not None else None
    users = IdentityService(pool, settings.access)
    i18n = create_i18n()
    access_requests = AccessRequestService(
        timedelta(hours=settings.access.access_request_cooldown_hours)
    )
    personas = PersonaService(counter, lambda: memory.budget_for(settings.openai.model))
    # A self-hosted Bot API server hands out larger files: its own answer decides there.
    download_limit = (
        PUBLIC_DOWNLOAD_LIMIT if settings.telegram.api_url == PUBLIC_TELEGRAM_API else None
    )
    voice = VoiceService(
        create_transcriber(settings.openai, settings.transcribe, llm),
        settings.voice,
        usage=usage,
        download_limit=download_limit,
    )
    gate = WriteGate.for_engine(engine)
    pacer = ChatPacer(window=pace_window)
    # Other processes may serve the same bot: on PostgreSQL, or with Redis shared.
    shared = bool(settings.redis.url) or engine.url.get_backend_name() != "sqlite"
    recovery = InterruptedAnswers(
        pool, i18n, gate=gate, shared=shared, stale_after=settings.chat.interrupted_after
    )
    clock = clock or (lambda: datetime.now(UTC))
    toolbox = Toolbox(builtin_tools(), timeout=settings.tools.timeout)
    web = create_web(settings) if settings.tools.enabled else None
    if web is not None:
        for tool in web.tools:
            toolbox.add(tool)
    # A malformed MCP_CONFIG stops start-up here (McpConfigError is a ValueError); the
    # servers themselves start with the dispatcher.
    mcp = McpManager(
        load_config(settings.mcp.config) if settings.mcp.config is not None else [],
        start_timeout=settings.mcp.start_timeout,
    )
    tools = ToolService(toolbox, settings.tools, settings.openai, memory, clock=clock)
    jobs = JobScheduler(pool, clock=clock, poll=jobs_poll)
    plugins = PluginHost.load(
        settings.plugins,
        toolbox=toolbox,
        i18n=i18n,
        llm=llm,
        clock=clock,
        services={
            "pool": pool,
            "usage": usage,
            "gate": gate,
            "counter": counter,
            "default_timezone": settings.tools.default_timezone,
            # For plugins that buy something for a user (app/plugins/images.py): the budget
            # check, the usage row, and the sentence that tells a user over a limit.
            "spending": PluginSpending(pool, usage, gate),
            "budget_refusal": budget_refusal,
        },
        jobs=jobs,
    )
    command_book = CommandBook.with_plugins(plugins.commands)
    resources = Resources(
        engine=engine,
        pool=pool,
        llm=llm,
        memory=memory,
        chat=ChatService(
            memory,
            llm,
            settings.openai,
            settings.chat,
            summarizer=summarizer,
            usage=usage,
            gate=gate,
            stream_interval=stream_interval,
            continue_keyboard=continue_keyboard,
            shared_stops=shared_stops,
            recovery=recovery,
            pictures=Pictures(download_limit=download_limit),
            # Telegram's per-group limit is 20 a minute; tests shrink the minute.
            pacer=pacer,
            profile_writer=profile_writer,
            tools=tools,
        ),
        summarizer=summarizer,
        profile_writer=profile_writer,
        usage=usage,
        users=users,
        inflight=InFlightMiddleware(),
        updates=ProcessedUpdates(shared=shared),
    )

    data: AppData = {
        "settings": settings,
        "resources": resources,
        "pool": pool,
        "memory": memory,
        "chat": resources.chat,
        "users": users,
        "personas": personas,
        "usage": usage,
        "i18n": i18n,
        "user_choices": PreferencesService(settings.openai.choosable_models),
        "user_admin": UserAdminService(settings.access),
        "access_requests": access_requests,
        "voice": voice,
        "conversations": ConversationService(),
        "profile": ProfileService(memory.profiles, profile_writer, default=settings.memory.profile),
        "groups": GroupService(settings.access, resources.chat.pacer, pool),
        "documents": DocumentService(
            settings.documents, memory, usage=usage, download_limit=download_limit
        ),
        "toolbox": toolbox,
        "command_book": command_book,
        "speech": SpeechService(
            Speaker(llm, settings.openai.tts_model, settings.openai.tts_voice), counter, usage=usage
        ),
    }
    dp = Dispatcher(storage=storage, **data)
    # Private chats, and groups (where GroupGateMiddleware lets through only what is
    # addressed to the bot); channels are never served.
    dp.message.filter(F.chat.type.in_({"private", "group", "supergroup"}))
    dp.update.outer_middleware(resources.inflight)
    dp.update.outer_middleware(GroupGateMiddleware())
    dp.update.outer_middleware(PasteMergeMiddleware(paste_window))
    dp.update.outer_middleware(AlbumMiddleware())
    serial = PerUserSerialMiddleware(create_shared_locks(settings, dp.storage))
    dp.update.outer_middleware(serial)
    # aiogram reads the dialog state in its FSM middleware, which the Dispatcher installs
    # before ours: a user's second message would read the state before the first one's
    # handler had set it. Moved behind the per-user lock, each message reads the state its
    # predecessor left.
    dp.update.outer_middleware.unregister(dp.fsm)
    dp.update.outer_middleware(dp.fsm)
    access = AccessMiddleware(users)
    sessions = DbSessionMiddleware(pool, resources.updates)
    locale = UserLocaleMiddleware(i18n)
    preferences = PreferencesMiddleware(
        settings.openai, settings.memory, settings.budget, settings.tools.default_timezone
    )
    for observer in (
        dp.message,
        dp.edited_message,
        dp.callback_query,
        dp.my_chat_member,
        dp.guest_message,
    ):
        observer.outer_middleware(sessions)
        observer.outer_middleware(access)
        observer.outer_middleware(locale)
        observer.middleware(preferences)
    dp.message.outer_middleware(SpokenTextMiddleware(voice, settings.budget))
    dp.include_routers(*first_routers, *get_routers(plugins.routers, command_book))

    async def on_startup(bot: Bot) -> None:
        await prepare_database(resources)
        async with pool() as session:
            # Admins made in /users or on the command line, besides those in ADMIN_IDS.
            admins = {admin.id for admin in await access_requests.admins(session)}
        await plugins.start(bot, toolbox)
        jobs.start()  # after the plugins, whose handlers it runs
        await register_menu(bot, i18n, admins | settings.access.admin_ids, command_book)
        if shared_stops is not None:
            await shared_stops.start(bot.id)
        await recovery.start(bot)
        if memory.embeddings is not None:
            await memory.embeddings.start()
        # Before polling starts, so the first message is offered them.
        await mcp.start(toolbox)  # and the toolbox follows the servers' tools from now on
        for connection in mcp.connections:
            # Described even for a server that is down now: admins may grant it ahead.
            # Translated when shown (in the admin's language), not now.
            described = LazyProxy(partial(mcp_right, connection.name), enable_cache=False)
            toolbox.describe_right(right_name(connection.name), described)

    async def on_shutdown() -> None:
        await resources.inflight.drain(shutdown_grace)
        await jobs.close()
        await plugins.stop()
        # After the drain: an answer it cancelled stays recorded, for the next start (or
        # another replica) to tell its user.
        await recovery.close()
        # Summaries are background work that the next start redoes: a short wait only.
        await resources.summarizer.drain(min(shutdown_grace, SUMMARY_GRACE))
        await resources.profile_writer.drain(min(shutdown_grace, SUMMARY_GRACE))
        await mcp.stop()  # after the drain: no answer is calling them any more
        if shared_stops is not None:
            await shared_stops.close()
        if redis is not None and owns_redis:
            await redis.aclose()
        await close_resources(resources)
        await voice.close()
        if web is not None:
            await web.close()
        if memory.embeddings is not None:
            await memory.embeddings.close()
        if serial.shared is not None:
            await serial.shared.close()
        if isinstance(dp.storage, AppRedisStorage):
            await dp.storage.close_now()

    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    return dp


async def prepare_database(resources: Resources) -> None:
    """Migrate to head, make sure a default persona exists, seed access from the settings."""
    await upgrade(resources.engine)
    async with resources.pool() as session, session.begin():
        await ensure_default_persona(session, resources.memory.counter)
    await resources.users.seed()
    async with resources.pool() as session, session.begin():
        await forget_old_updates(session)
        await resources.updates.load(session)
    log.info("Database ready (%s)", resources.engine.url.render_as_string(hide_password=True))


async def close_resources(resources: Resources) -> None:
    await resources.llm.close()
    await resources.engine.dispose()


def resources_of(dp: Dispatcher) -> Resources:
    value: Any = dp["resources"]
    assert isinstance(value, Resources)
    return value
