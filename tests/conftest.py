"""Shared fixtures: a clean environment, the fake servers, settings and a running bot."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import (
    AccessSettings,
    ChatSettings,
    DatabaseSettings,
    EmbeddingsSettings,
    MemorySettings,
    OpenAISettings,
    PluginsSettings,
    Settings,
    TelegramSettings,
)
from app.db.engine import create_engine, create_sessionmaker
from app.db.migrate import upgrade
from tests.fakes import FakeOpenAI, FakeTelegram
from tests.harness import ADMIN, ALLOWED, API_KEY, TOKEN, RunningBot, StartBot, skip_or_fail

_PREFIXES = (
    "TELEGRAM_",
    "OPENAI_",
    "DATABASE_",
    "CHAT_",
    "REDIS_",
    "MEMORY_",
    "BUDGET_",
    "WEBHOOK_",
    "TOOLS_",
    "PLUGINS_",
    "SEARCH_",
    "MCP_",
    "IMAGES_",
    "EMBEDDINGS_",
    "DOCUMENT_",
    "TRANSCRIBE_",
    "VOICE_",
)
_NAMES = ("ADMIN_IDS", "ALLOWED_USER_IDS", "LOG_LEVEL", "DEFAULT_TIMEZONE", "PLUGINS")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES) or name in _NAMES:
            monkeypatch.delenv(name)


# --- services that may be absent on a developer's machine -----------------------------------


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    base = os.environ.get("TEST_POSTGRES_URL")
    if not base:
        skip_or_fail(
            "PostgreSQL tests need TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    import asyncpg

    dsn = re.sub(r"^postgresql\+asyncpg://", "postgresql://", str(base))
    try:
        admin = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        skip_or_fail(f"PostgreSQL at TEST_POSTGRES_URL is unreachable: {exc}")
    name = f"tba_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on a migrated database: SQLite and, where it runs, PostgreSQL."""
    engine = create_engine(database_url)
    await upgrade(engine)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    return str(request.getfixturevalue("postgres_url"))


# --- the fake servers ---------------------------------------------------------------------------


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(tokens={TOKEN})
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key=API_KEY)
    await fake.start()
    yield fake
    await fake.stop()


# --- settings and a running bot ------------------------------------------------------------------


@pytest.fixture
def make_settings(
    telegram: FakeTelegram, llm: FakeOpenAI, sqlite_url: str
) -> Callable[..., Settings]:
    def make(
        *,
        database_url: str | None = None,
        admins: frozenset[int] = frozenset({ADMIN}),
        allowed: Any = frozenset({ALLOWED}),
        memory: MemorySettings | None = None,
        access: dict[str, Any] | None = None,
        embeddings: dict[str, Any] | None = None,
        **openai: Any,
    ) -> Settings:
        openai_values: dict[str, Any] = {
            "api_key": SecretStr(API_KEY),
            "base_url": llm.base_url,
            "model": "test-model",
            "context_window": 16_000,
            "max_answer_tokens": 500,
            "max_retries": 0,
            "timeout": 5.0,
        }
        openai_values.update(openai)
        return Settings(
            telegram=TelegramSettings(
                bot_token=SecretStr(TOKEN), api_url=telegram.base_url, _env_file=None
            ),
            openai=OpenAISettings(**openai_values, _env_file=None),
            database=DatabaseSettings(url=database_url or sqlite_url, _env_file=None),
            access=AccessSettings(
                admin_ids=admins, allowed_user_ids=allowed, **(access or {}), _env_file=None
            ),
            chat=ChatSettings(_env_file=None),
            embeddings=EmbeddingsSettings(**(embeddings or {}), _env_file=None),
            # No conversation titles and no profiles unless a test asks: each is a model
            # request of its own.
            memory=memory or MemorySettings(titles=False, profile=False, _env_file=None),
            # No plugin unless a test asks: the owner's default loads reminders, whose
            # command and tools would be in every menu and request (test_reminders.py).
            plugins=PluginsSettings(enabled=(), _env_file=None),
        )

    return make


@pytest.fixture
async def start_bot(
    make_settings: Callable[..., Settings], telegram: FakeTelegram
) -> AsyncIterator[StartBot]:
    running: list[RunningBot] = []

    async def start(settings: Settings | None = None, **options: Any) -> RunningBot:
        bot = RunningBot(settings or make_settings(), telegram, **options)
        running.append(bot)
        return await bot.start()

    yield start
    for bot in running:
        await bot.stop()


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on the test's SQLite database, for assertions."""
    engine = create_engine(sqlite_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def repo_root() -> Iterator[Path]:
    yield Path(__file__).resolve().parents[1]
