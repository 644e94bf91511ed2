"""Settings read from the environment and `.env`: one section per concern, composed once."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, fields
from ipaddress import ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.domain.enums import BudgetUnit, GroupMembers, ImageDetail
from app.domain.rights import Right, parse_right

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

PUBLIC_TELEGRAM_API = "https://api.telegram.org"
PUBLIC_OPENAI_API = "https://api.openai.com/v1"
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/assistant.db"

# What to tell the owner when a variable is missing or wrong: the fix, not the type error.
HINTS: dict[str, str] = {
    "MCP_CONFIG": "the path of an existing JSON file listing MCP servers",
    "TELEGRAM_BOT_TOKEN": "the token @BotFather gave you, like 123456:ABC-DEF...",
    "TELEGRAM_API_URL": "a URL such as https://api.telegram.org",
    "OPENAI_API_KEY": "your key from platform.openai.com (any text for a local server)",
    "OPENAI_BASE_URL": "a URL such as http://localhost:11434/v1",
    "DEFAULT_TIMEZONE": "a time zone name such as Europe/Berlin or America/New_York",
    "OPENAI_CONTEXT_WINDOW": "a whole number of tokens, at least 512",
    "OPENAI_MAX_ANSWER_TOKENS": "a whole number of tokens, at least 16",
    "ADMIN_IDS": "comma-separated numeric Telegram ids, like 12345,67890",
    "ALLOWED_USER_IDS": "comma-separated numeric Telegram ids, or * for everyone",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR",
    "DATABASE_URL": "a SQLAlchemy URL such as sqlite+aiosqlite:///data/assistant.db",
    "REDIS_URL": "a URL such as redis://localhost:6379/0",
    "MEMORY_DEFAULT_MODE": "chat or task",
    "OPENAI_MODELS": "comma-separated model names, like gpt-4o-mini,gpt-4o",
    "NEW_USER_RIGHTS": "comma-separated rights among create_personas, edit_personas",
    "ACCESS_REQUEST_COOLDOWN_HOURS": "a number of hours, like 24",
    "BUDGET_PRICES": "model=input/output per million tokens, like gpt-4o-mini=0.15/0.60",
    "BUDGET_UNIT": "tokens or money",
    "BUDGET_DAILY": "a positive number (tokens, or money in BUDGET_CURRENCY), or empty",
    "BUDGET_MONTHLY": "a positive number (tokens, or money in BUDGET_CURRENCY), or empty",
    "MEMORY_SUMMARY_SHARE": "a fraction between 0 and 0.5, like 0.15",
    "MEMORY_RECALL_SHARE": "a fraction between 0 and 0.5, like 0.15",
    "WEBHOOK_URL": "the public https:// URL Telegram posts updates to, or empty for polling",
    "WEBHOOK_LISTEN": "host:port to listen on, like 0.0.0.0:8080",
    "WEBHOOK_PATH": "a path starting with /, like /telegram",
    "WEBHOOK_SECRET": "needed with WEBHOOK_URL: 1-256 of A-Z a-z 0-9 _ - e.g. openssl rand -hex 16",
    "WEBHOOK_MAX_CONNECTIONS": "a whole number from 1 to 100",
    "SEARCH_SEARXNG_URL": "the URL of your SearXNG instance, like http://localhost:8888",
    "SEARCH_ALLOW_PRIVATE_ADDRESSES": "comma-separated networks like 10.0.0.0/8, or empty",
}


_Composed = TypeVar("_Composed", bound="DataclassInstance")


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
    # The models users may choose from in /settings; OPENAI_MODEL is always among them.
    models: Annotated[tuple[str, ...], NoDecode] = ()
    context_window: int | None = Field(default=None, ge=512)
    max_answer_tokens: int = Field(default=1024, ge=16)
    safety_margin_tokens: int = Field(default=64, ge=0)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    timeout: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    # A stream cut before its finish reason is asked again this often before the user sees
    # the part that arrived.
    stream_retries: int = Field(default=2, ge=0, le=10)
    # Voice messages are transcribed by this model (/audio/transcriptions), on this server
    # unless TRANSCRIBE_BASE_URL names another (a local Whisper server).
    transcribe_model: str = "gpt-4o-mini-transcribe"
    # Spoken answers (/settings › Voice answers) through /audio/speech, with this voice.
    tts_model: str = "gpt-4o-mini-tts"
    tts_voice: str = "alloy"
    # Photos: how closely the model looks ("auto" lets the server choose and is budgeted as
    # "high", the dearer), which models see images besides the known ones (names, or
    # prefixes ending in "*"), and the model a photo goes to when the user's model is blind.
    image_detail: ImageDetail = ImageDetail.AUTO
    vision_models: Annotated[tuple[str, ...], NoDecode] = ()
    vision_model: str | None = None
    # Which models are offered tools besides the known ones (names, or prefixes ending in
    # "*"). A server that refuses `tools` for a model is asked again without them.
    tool_models: Annotated[tuple[str, ...], NoDecode] = ()
    # Recall by meaning (/embeddings), on this server unless EMBEDDINGS_BASE_URL names
    # another. Unset: text-embedding-3-small on api.openai.com, and none elsewhere (a local
    # server has its own embedding models, or none); "off": recall by words only.
    embedding_model: str | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("models", "vision_models", "tool_models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def choosable_models(self) -> tuple[str, ...]:
        return (self.model, *(name for name in self.models if name != self.model))

    @model_validator(mode="after")
    def _key_for_openai(self) -> OpenAISettings:
        # A local server needs no key; OpenAI itself does.
        if self.api_key is None and self.is_public_openai:
            raise ValueError("OPENAI_API_KEY is required for api.openai.com")
        return self

    @property
    def is_public_openai(self) -> bool:
        return self.base_url.rstrip("/") == PUBLIC_OPENAI_API

    def embeddings_model(self, separate_server: bool) -> str | None:
        """The embedding model in use, or None: recall by words only."""
        chosen = (self.embedding_model or "").strip()
        if chosen.lower() in ("off", "none", "false", "0"):
            return None
        if chosen:
            return chosen
        return DEFAULT_EMBEDDING_MODEL if self.is_public_openai and not separate_server else None


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
    # What a user may do besides chatting once they are let in (chat itself comes with
    # access); admins change it per user in /users.
    new_user_rights: Annotated[frozenset[Right], NoDecode] = frozenset(
        {Right.CREATE_PERSONAS, Right.EDIT_PERSONAS}
    )
    # After a denied request, how long a user waits before they may ask again.
    access_request_cooldown_hours: float = Field(default=24.0, ge=0)
    # Who may talk to the bot in an allowed group: every member, or only users with access.
    group_members: GroupMembers = GroupMembers.ALL
    # A group with "listen" on keeps this many of the last messages not addressed to the
    # bot as context for its next answer there.
    group_listen_messages: int = Field(default=10, ge=1, le=50)

    @field_validator("new_user_rights", mode="before")
    @classmethod
    def _rights(cls, value: Any) -> Any:
        if isinstance(value, str):
            rights = {parse_right(part) for part in value.split(",") if part.strip()}
            if Right.ADMIN in rights:
                raise ValueError("admins must be listed in ADMIN_IDS")
            return frozenset(rights - {Right.CHAT})
        return value

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


class TranscribeSettings(_Section):
    """A separate server for transcriptions (a local Whisper); unset: the model server's."""

    model_config = SettingsConfigDict(env_prefix="TRANSCRIBE_")

    base_url: str | None = None
    api_key: SecretStr | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value) if value else None


class EmbeddingsSettings(_Section):
    """A separate server for embeddings (Ollama's nomic-embed-text, a local text-embeddings
    server); unset: the model server's. And how long an answer may wait for one."""

    model_config = SettingsConfigDict(env_prefix="EMBEDDINGS_")

    base_url: str | None = None
    api_key: SecretStr | None = None
    # The new message's embedding is the only one on the path to the model (only when older
    # turns are left out): slower than this, recall goes by words for that message.
    timeout: float = Field(default=2.0, gt=0, le=30)
    # Stored turns are embedded in the background, this many per request.
    batch: int = Field(default=64, ge=1, le=2048)
    # Shorter vectors from a model that can give them (OpenAI's text-embedding-3: 1,536
    # dimensions by default; 512 keeps most of their quality at a third of the storage and
    # of the search's time). Unset: the model's own. Other servers may refuse the field.
    dimensions: int | None = Field(default=None, ge=1, le=8192)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value) if value else None


class VoiceSettings(_Section):
    """Voice messages, audio files and round video messages that users send."""

    model_config = SettingsConfigDict(env_prefix="VOICE_")

    # The longest one transcribed; a longer one is refused before it is downloaded.
    max_seconds: int = Field(default=600, ge=1, le=4 * 3600)


class DocumentSettings(_Section):
    """Documents users send (PDF, Word, text, code...): read into the conversation."""

    model_config = SettingsConfigDict(env_prefix="DOCUMENT_")

    # The largest file read (the public Bot API hands bots at most 20 MB anyway), and the
    # most pages of a PDF.
    max_mb: int = Field(default=20, ge=1, le=2000)
    max_pages: int = Field(default=500, ge=1, le=10_000)
    # A scanned PDF (no text layer) goes to a vision model as images of its first pages.
    scan_pages: int = Field(default=4, ge=0, le=20)


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


class WebhookSettings(_Section):
    """Webhook mode: Telegram posts updates to WEBHOOK_URL instead of the bot polling."""

    model_config = SettingsConfigDict(env_prefix="WEBHOOK_")

    url: str | None = None
    listen: str = "0.0.0.0:8080"
    path: str = "/telegram"
    secret: SecretStr | None = None
    max_connections: int = Field(default=40, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value) if value else None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("not host:port")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("not a path")
        return value

    @field_validator("secret", mode="before")
    @classmethod
    def _secret(cls, value: Any) -> Any:
        if value in ("", None):
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        # What Telegram accepts as secret_token.
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", text):
            raise ValueError("not a valid secret")
        return value

    @model_validator(mode="after")
    def _secret_for_webhook(self) -> WebhookSettings:
        # Without it anyone who learns the URL could post updates as any user.
        if self.url is not None and self.secret is None:
            raise ValueError("WEBHOOK_SECRET is required when WEBHOOK_URL is set")
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class ChatSettings(_Section):
    """Limits on what users send."""

    model_config = SettingsConfigDict(env_prefix="CHAT_")

    max_input_chars: int = Field(default=16_000, ge=100)
    # Seconds a process may go unheard of before it counts as dead (it beats every third
    # of it): its answers in progress are then interrupted, and their users told to /retry;
    # with REDIS_URL its users' locks expire by then too. A replica killed mid-answer is
    # noticed within this plus a third of it.
    interrupted_after: float = Field(default=30.0, ge=1.0, le=3600)


class ToolsSettings(_Section):
    """What the model may call (app/tools/), and how far it may go in one answer."""

    model_config = SettingsConfigDict(env_prefix="TOOLS_", validate_by_name=True)

    # Off: no model is offered any tool.
    enabled: bool = True
    # Rounds of calls in one answer; then the model answers with what it has.
    max_rounds: int = Field(default=5, ge=1, le=20)
    # Seconds one call may take before the model is told it did not answer.
    timeout: float = Field(default=30.0, gt=0, le=600)
    # Tokens the results of one answer's calls may take (with the calls), reserved in the
    # request besides the answer's; a result over what is left is shortened. At most a
    # quarter of what the window leaves the conversation.
    result_tokens: int = Field(default=4_000, ge=200)
    # The time zone of users who have not chosen one in /settings (IANA name).
    default_timezone: str = Field(
        default="UTC", validation_alias=AliasChoices("DEFAULT_TIMEZONE", "TOOLS_DEFAULT_TIMEZONE")
    )

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name like Europe/Berlin") from None
        return value


class PluginsSettings(_Section):
    """Which plugins are loaded (app/plugins/loader.py)."""

    model_config = SettingsConfigDict(env_prefix="PLUGINS_", validate_by_name=True)

    # Names of the plugins to load, comma-separated: entry points of installed packages
    # (group telegram_bot_assistant.plugins) or modules in PLUGINS_PATH.
    # The default: the bot's own reminders, and images (behind a right admins grant).
    enabled: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("reminders", "images"),
        validation_alias=AliasChoices("PLUGINS", "PLUGINS_ENABLED"),
    )
    # A folder of plugin modules (name.py, or packages), besides the installed ones.
    path: Path | None = None

    @field_validator("enabled", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class SearchSettings(_Section):
    """Web search (a SearXNG instance, or the Brave Search API) and reading web pages."""

    model_config = SettingsConfigDict(env_prefix="SEARCH_")

    # The owner's SearXNG instance; its JSON API must be on (`formats: [html, json]` in its
    # settings.yml). It, and the Brave URL, are the owner's: the address checks that guard
    # page reading do not apply to them (a SearXNG on localhost is usual).
    searxng_url: str | None = None
    # A Brave Search API key, used when no SearXNG is set; and its endpoint.
    brave_api_key: SecretStr | None = None
    brave_url: str = "https://api.search.brave.com/res/v1/web/search"
    # Results a search returns when the model does not ask for a number (at most 20).
    results: int = Field(default=5, ge=1, le=20)
    # The largest page read, in bytes, and the seconds reading it may take (redirects too).
    page_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    page_timeout: float = Field(default=15.0, gt=0, le=120)
    # For tests and closed networks only: private networks (CIDR, comma-separated, like
    # 127.0.0.1/32,10.0.0.0/8) pages may be read from. Empty: only public addresses.
    allow_private_addresses: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("searxng_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url(value) if value else None

    @field_validator("brave_url")
    @classmethod
    def _brave(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("allow_private_addresses", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        for network in value:
            ip_network(network, strict=False)  # a ValueError names the bad one
        return value

    @property
    def has_search(self) -> bool:
        return bool(self.searxng_url or self.brave_api_key)


class McpSettings(_Section):
    """MCP servers whose tools the model is offered (app/mcp/), each behind its right."""

    model_config = SettingsConfigDict(env_prefix="MCP_")

    # The JSON file listing the servers ({"mcpServers": {...}}, as other MCP clients read);
    # unset: no MCP server.
    config: Path | None = None
    # Seconds a server may take to start (or be connected) and list its tools at start-up;
    # one that takes longer is skipped.
    start_timeout: float = Field(default=20.0, gt=0, le=600)

    @field_validator("config", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("config")
    @classmethod
    def _a_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value


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
    # A document the user sent goes into the request whole when it takes at most this share
    # of what the persona leaves; a longer one is split, and the parts that match each
    # question are sent within this share.
    document_share: float = Field(default=0.5, ge=0.05, le=0.9)
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
    # A short title for each conversation (/chats), written by the summary model after its
    # first answer: one small call per conversation.
    titles: bool = True
    # The user's profile: durable facts about them (name, family, preferences...) written
    # by the summary model from their private conversations, shared by their personas. The
    # owner's default (a user turns it off in /settings); the most of the conversation
    # budget it takes; how many new user messages between two updates of it; its most
    # tokens and entries.
    profile: bool = True
    profile_share: float = Field(default=0.1, ge=0.0, le=0.5)
    profile_every: int = Field(default=4, ge=1)
    profile_max_tokens: int = Field(default=300, ge=16)
    profile_max_facts: int = Field(default=30, ge=1, le=200)


# The per-unit forms of a BUDGET_PRICES entry: "model=price/min", "model=price/image".
_PER_UNIT = frozenset({"min", "image"})


class BudgetSettings(_Section):
    """What requests cost and how much each user may spend; admins are never limited."""

    model_config = SettingsConfigDict(env_prefix="BUDGET_")

    # Prices per million tokens, input/output, in the currency below, e.g.
    # "gpt-4o-mini=0.15/0.60,gpt-4o=2.50/10". Models not listed cost nothing.
    prices: Annotated[dict[str, tuple[float, float]], NoDecode] = {}
    # Per minute of audio, for transcription models: "whisper-1=0.006/min" in BUDGET_PRICES.
    _minute_prices: dict[str, float] = PrivateAttr(default_factory=dict)
    # Per picture, for image models: "gpt-image-1=0.04/image" in BUDGET_PRICES (added to
    # the model's token prices, when it has those too).
    _image_prices: dict[str, float] = PrivateAttr(default_factory=dict)
    currency: str = Field(default="$", max_length=8)
    # The default limits of every user; an admin may set others per user in /users.
    unit: BudgetUnit = BudgetUnit.TOKENS
    daily: float | None = Field(default=None, gt=0)
    monthly: float | None = Field(default=None, gt=0)

    @field_validator("prices", mode="before")
    @classmethod
    def _prices(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        prices: dict[str, tuple[float, float]] = {}
        for part in value.split(","):
            if not part.strip():
                continue
            model, _, pair = part.partition("=")
            prompt, _, completion = pair.partition("/")
            if completion.strip() in _PER_UNIT:
                continue  # a price per minute or per picture: see _per_unit
            prices[model.strip()] = (float(prompt), float(completion or prompt))
        return prices

    @model_validator(mode="wrap")
    @classmethod
    def _per_unit(cls, data: Any, handler: ModelWrapValidatorHandler[BudgetSettings]) -> Any:
        """`model=price/min` and `model=price/image` entries of BUDGET_PRICES: a price per
        minute of audio, or per picture made (the token prices' parser skips them)."""
        raw = data.get("prices") if isinstance(data, dict) else None
        settings = handler(data)
        if isinstance(raw, str):
            for part in raw.split(","):
                model, _, pair = part.partition("=")
                price, _, per = pair.partition("/")
                if per.strip() == "min":
                    settings._minute_prices[model.strip()] = float(price)
                elif per.strip() == "image":
                    settings._image_prices[model.strip()] = float(price)
        return settings

    @property
    def minute_prices(self) -> dict[str, float]:
        return self._minute_prices

    @property
    def image_prices(self) -> dict[str, float]:
        return self._image_prices

    @field_validator("daily", "monthly", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value in ("", "0", 0, "none") else value

    def cost(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        seconds: float = 0.0,
        images: int = 0,
    ) -> float:
        """Tokens at the model's token prices, plus audio seconds at its price per minute
        and pictures at its price per picture."""
        prompt_price, completion_price = self.prices.get(model, (0.0, 0.0))
        tokens = (prompt_tokens * prompt_price + completion_tokens * completion_price) / 1_000_000
        audio = seconds / 60 * self.minute_prices.get(model, 0.0)
        return tokens + audio + images * self.image_prices.get(model, 0.0)


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
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    transcribe: TranscribeSettings = field(default_factory=TranscribeSettings)
    embeddings: EmbeddingsSettings = field(default_factory=EmbeddingsSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    documents: DocumentSettings = field(default_factory=DocumentSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)
    tools: ToolsSettings = field(default_factory=ToolsSettings)
    plugins: PluginsSettings = field(default_factory=PluginsSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    mcp: McpSettings = field(default_factory=McpSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)

    @classmethod
    def load(cls, env_file: Path | str | None = ".env") -> Settings:
        """Read every section; raise `SettingsError` naming every bad variable at once."""
        return load_sections(cls, env_file)

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
    "webhook": WebhookSettings,
    "transcribe": TranscribeSettings,
    "embeddings": EmbeddingsSettings,
    "voice": VoiceSettings,
    "documents": DocumentSettings,
    "memory": MemorySettings,
    "tools": ToolsSettings,
    "plugins": PluginsSettings,
    "search": SearchSettings,
    "mcp": McpSettings,
    "budget": BudgetSettings,
    "logging": LoggingSettings,
}


def load_sections(
    kind: type[_Composed], env_file: Path | str | None = ".env", **given: dict[str, Any]
) -> _Composed:
    """Build `kind`, a dataclass of sections named as in `Settings`, reading only those
    sections (a tool that needs only the database does not need the bot token). `given`
    holds values per section that the environment need not provide. Raise `SettingsError`
    naming every bad variable at once."""
    env = Path(env_file) if env_file is not None and Path(env_file).is_file() else None
    values: dict[str, Any] = {}
    problems: list[str] = []
    for item in fields(kind):
        section: type[_Section] = _SECTIONS[item.name]
        try:
            values[item.name] = section(_env_file=env, **given.get(item.name, {}))
        except ValidationError as exc:
            problems.extend(_describe(exc, section.model_config.get("env_prefix", "")))
    if problems:
        raise SettingsError(problems)
    return kind(**values)


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
        if loc and loc[0].isupper():  # a variable with a name of its own (an alias)
            variable = loc[0]
        elif loc:
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
