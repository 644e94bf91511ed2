"""Settings read from the environment and `.env`: one section per concern, composed once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PUBLIC_TELEGRAM_API = "https://api.telegram.org"
PUBLIC_OPENAI_API = "https://api.openai.com/v1"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/assistant.db"

# What to tell the owner when a variable is missing or wrong: the fix, not the type error.
HINTS: dict[str, str] = {
    "TELEGRAM_BOT_TOKEN": "the token @BotFather gave you, like 123456:ABC-DEF...",
    "TELEGRAM_API_URL": "a URL such as https://api.telegram.org",
    "OPENAI_API_KEY": "your key from platform.openai.com (any text for a local server)",
    "OPENAI_BASE_URL": "a URL such as http://localhost:11434/v1",
    "OPENAI_CONTEXT_WINDOW": "a whole number of tokens, at least 512",
    "OPENAI_MAX_ANSWER_TOKENS": "a whole number of tokens, at least 16",
    "ADMIN_IDS": "comma-separated numeric Telegram ids, like 12345,67890",
    "ALLOWED_USER_IDS": "comma-separated numeric Telegram ids, or * for everyone",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR",
    "DATABASE_URL": "a SQLAlchemy URL such as sqlite+aiosqlite:///data/assistant.db",
    "REDIS_URL": "a URL such as redis://localhost:6379/0",
    "MEMORY_DEFAULT_MODE": "chat or task",
    "MEMORY_SUMMARY_SHARE": "a fraction between 0 and 0.5, like 0.15",
    "MEMORY_RECALL_SHARE": "a fraction between 0 and 0.5, like 0.15",
}


class _Section(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_file_encoding="utf-8")


class TelegramSettings(_Section):
    """The bot's token and the Bot API server it talks to."""

    model_config = SettingsConfigDict(env_prefix="TELEGRAM_")

    bot_token: SecretStr
    api_url: str = PUBLIC_TELEGRAM_API

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        bot_id, _, secret = value.get_secret_value().partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError("not a bot token")
        return value

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


class OpenAISettings(_Section):
    """The model server: OpenAI or any OpenAI-compatible one (Ollama, vLLM, LM Studio)."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_")

    api_key: SecretStr | None = None
    base_url: str = PUBLIC_OPENAI_API
    model: str = "gpt-4o-mini"
    context_window: int | None = Field(default=None, ge=512)
    max_answer_tokens: int = Field(default=1024, ge=16)
    safety_margin_tokens: int = Field(default=64, ge=0)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    timeout: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @model_validator(mode="after")
    def _key_for_openai(self) -> OpenAISettings:
        # A local server needs no key; OpenAI itself does.
        if self.api_key is None and self.is_public_openai:
            raise ValueError("OPENAI_API_KEY is required for api.openai.com")
        return self

    @property
    def is_public_openai(self) -> bool:
        return self.base_url.rstrip("/") == PUBLIC_OPENAI_API


class DatabaseSettings(_Section):
    """Where the data lives: a SQLite file by default, PostgreSQL by URL."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_")

    url: str = DEFAULT_DATABASE_URL

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Owners write the URL their hosting gives them; we need the async drivers.
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("unsupported database URL")
        return value


class AccessSettings(_Section):
    """Who may use the bot before anyone has been managed from Telegram."""

    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    allowed_user_ids: Annotated[frozenset[int] | Literal["*"], NoDecode] = frozenset()

    @field_validator("admin_ids", "allowed_user_ids", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip() == "*":
                return "*"
            return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("admin_ids")
    @classmethod
    def _no_star_for_admins(cls, value: Any) -> Any:
        if value == "*":
            raise ValueError("admins must be listed by id")
        return value

    @property
    def everyone_allowed(self) -> bool:
        return self.allowed_user_ids == "*"


class RedisSettings(_Section):
    """Optional Redis for dialog states when several processes serve one bot."""

    model_config = SettingsConfigDict(env_prefix="REDIS_")

    url: str | None = None

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("not a redis URL")
        return value or None


class ChatSettings(_Section):
    """Limits on what users send."""

    model_config = SettingsConfigDict(env_prefix="CHAT_")

    max_input_chars: int = Field(default=16_000, ge=100)


class MemorySettings(_Section):
    """Dynamic memory: rolling summary, recall of old turns, and the chat/task modes."""

    model_config = SettingsConfigDict(env_prefix="MEMORY_")

    default_mode: Literal["chat", "task"] = "chat"
    # The answer reserve of task mode; chat mode reserves OPENAI_MAX_ANSWER_TOKENS. Capped
    # at half the window so a small model still has room for a conversation.
    task_answer_tokens: int = Field(default=4096, ge=16)
    # Shares of the conversation budget (what the persona and the new message leave) the
    # summary and the recalled turns may take at most; what they leave goes to recent turns.
    summary_share: float = Field(default=0.15, ge=0.0, le=0.5)
    recall_share: float = Field(default=0.15, ge=0.0, le=0.5)
    # Most turns recalled into one request.
    recall_turns: int = Field(default=6, ge=0, le=50)
    # The summariser: its model (default OPENAI_MODEL), the longest summary it may write,
    # the most tokens of turns it reads per call, how many tokens must have fallen out of
    # the context before it runs, and how long it waits after a failure.
    summary_model: str | None = None
    summary_max_tokens: int = Field(default=512, ge=32)
    summary_input_tokens: int = Field(default=4000, ge=256)
    summary_min_tokens: int = Field(default=600, ge=1)
    summary_retry_seconds: float = Field(default=60.0, ge=0)


class LoggingSettings(_Section):
    """How much the bot logs; message text never appears at INFO or above."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings; build with `Settings.load()` so every section reads the same `.env`."""

    telegram: TelegramSettings
    openai: OpenAISettings
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    @classmethod
    def load(cls, env_file: Path | str | None = ".env") -> Settings:
        """Read every section; raise `SettingsError` naming every bad variable at once."""
        env = Path(env_file) if env_file is not None and Path(env_file).is_file() else None
        values: dict[str, Any] = {}
        problems: list[str] = []
        for item in fields(cls):
            section: type[_Section] = _SECTIONS[item.name]
            try:
                values[item.name] = section(_env_file=env)
            except ValidationError as exc:
                problems.extend(_describe(exc, section.model_config.get("env_prefix", "")))
        if problems:
            raise SettingsError(problems)
        return cls(**values)

    @property
    def log_level(self) -> int:
        return logging.getLevelNamesMapping()[self.logging.log_level]


_SECTIONS: dict[str, type[_Section]] = {
    "telegram": TelegramSettings,
    "openai": OpenAISettings,
    "database": DatabaseSettings,
    "access": AccessSettings,
    "chat": ChatSettings,
    "redis": RedisSettings,
    "memory": MemorySettings,
    "logging": LoggingSettings,
}


class SettingsError(Exception):
    """Start-up cannot go on: some settings are missing or malformed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(self.sentence())

    def sentence(self) -> str:
        return (
            "Cannot start: "
            + "; ".join(self.problems)
            + ". Set them in .env (see .env.example) or in the environment."
        )


def _describe(exc: ValidationError, prefix: str) -> list[str]:
    missing: list[str] = []
    invalid: list[str] = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if isinstance(part, str)]
        if loc:
            variable = (prefix + loc[0]).upper()
        else:  # a model-level check names its variable in the message
            variable = error["msg"].removeprefix("Value error, ").split(" ", 1)[0]
        hint = HINTS.get(variable, "see .env.example")
        if error["type"] == "missing" or (not loc and "required" in error["msg"]):
            missing.append(f"{variable} is not set ({hint})")
        else:
            invalid.append(f"{variable} is not valid ({hint})")
    return missing + invalid


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("not an http(s) URL")
    return value.rstrip("/")
