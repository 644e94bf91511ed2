"""Settings: every problem named at once, in words an owner can act on."""

from pathlib import Path

import pytest

from app.config import PUBLIC_TELEGRAM_API, Settings, SettingsError


def load(tmp_path: Path, text: str) -> Settings:
    env = tmp_path / ".env"
    env.write_text(text)
    return Settings.load(env)


def test_every_missing_variable_is_named_in_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        load(tmp_path, "")
    sentence = error.value.sentence()
    assert "TELEGRAM_BOT_TOKEN is not set" in sentence
    assert "OPENAI_API_KEY is not set" in sentence
    assert "\n" not in sentence


def test_malformed_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        load(
            tmp_path,
            "TELEGRAM_BOT_TOKEN=nonsense\nOPENAI_API_KEY=k\nADMIN_IDS=1,abc\n"
            "OPENAI_CONTEXT_WINDOW=lots\nLOG_LEVEL=loud\n",
        )
    problems = " ".join(error.value.problems)
    for name in ("TELEGRAM_BOT_TOKEN", "ADMIN_IDS", "OPENAI_CONTEXT_WINDOW", "LOG_LEVEL"):
        assert f"{name} is not valid" in problems


def test_ids_lists_star_and_defaults(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "TELEGRAM_BOT_TOKEN=123:abc\nOPENAI_API_KEY=k\nADMIN_IDS=1, 2\nALLOWED_USER_IDS=*\n",
    )
    assert settings.access.admin_ids == {1, 2}
    assert settings.access.everyone_allowed
    assert settings.database.url == "sqlite+aiosqlite:///data/assistant.db"
    assert settings.telegram.api_url == PUBLIC_TELEGRAM_API


def test_a_local_server_needs_no_key_and_urls_get_async_drivers(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "TELEGRAM_BOT_TOKEN=123:abc\nOPENAI_BASE_URL=http://localhost:11434/v1/\n"
        "DATABASE_URL=postgresql://u:p@db/bot\n",
    )
    assert settings.openai.api_key is None
    assert settings.openai.base_url == "http://localhost:11434/v1"
    assert settings.database.url == "postgresql+asyncpg://u:p@db/bot"


def test_every_setting_is_documented_in_env_example() -> None:
    from dataclasses import fields as dataclass_fields

    from pydantic import AliasChoices

    from app.config import _SECTIONS

    documented = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    names = [
        # A variable with its own name (DEFAULT_TIMEZONE) is documented by that name.
        str(info.validation_alias.choices[0]).upper()
        if isinstance(info.validation_alias, AliasChoices)
        else (section.model_config.get("env_prefix", "") + name).upper()
        for field in dataclass_fields(Settings)
        for section in [_SECTIONS[field.name]]
        for name, info in section.model_fields.items()
    ]
    missing = [name for name in names if f"{name}=" not in documented]
    assert missing == []


def test_issue_6_settings_are_parsed(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "TELEGRAM_BOT_TOKEN=123:abc\nOPENAI_API_KEY=k\nOPENAI_MODEL=a\nOPENAI_MODELS=b, a,c\n"
        "NEW_USER_RIGHTS=create-personas\nBUDGET_PRICES=a=0.15/0.60,b=2\n"
        "BUDGET_UNIT=money\nBUDGET_DAILY=0.5\nBUDGET_MONTHLY=\n",
    )
    assert settings.openai.choosable_models == ("a", "b", "c")
    assert {right.value for right in settings.access.new_user_rights} == {"create_personas"}
    assert settings.budget.prices == {"a": (0.15, 0.6), "b": (2.0, 2.0)}
    assert (settings.budget.daily, settings.budget.monthly) == (0.5, None)
    assert settings.budget.cost("a", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert settings.budget.cost("unpriced", 10, 10) == 0.0


def test_malformed_issue_6_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        load(
            tmp_path,
            "TELEGRAM_BOT_TOKEN=123:abc\nOPENAI_API_KEY=k\nNEW_USER_RIGHTS=admin\n"
            "BUDGET_PRICES=a=cheap\nBUDGET_UNIT=gold\nBUDGET_DAILY=-3\n",
        )
    problems = " ".join(error.value.problems)
    for name in ("NEW_USER_RIGHTS", "BUDGET_PRICES", "BUDGET_UNIT", "BUDGET_DAILY"):
        assert f"{name} is not valid" in problems


def test_web_search_settings_are_parsed(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "TELEGRAM_BOT_TOKEN=123:abc\nOPENAI_API_KEY=k\nSEARCH_SEARXNG_URL=http://searx:8080/\n"
        "SEARCH_BRAVE_API_KEY=\nSEARCH_ALLOW_PRIVATE_ADDRESSES=127.0.0.1/32, 10.0.0.0/8\n",
    )
    search = settings.search
    assert search.searxng_url == "http://searx:8080"
    assert search.has_search
    assert search.allow_private_addresses == ("127.0.0.1/32", "10.0.0.0/8")
    assert (search.results, search.page_max_bytes) == (5, 2 * 1024 * 1024)


def test_no_search_backend_by_default_and_bad_networks_are_named(tmp_path: Path) -> None:
    assert not load(tmp_path, "TELEGRAM_BOT_TOKEN=123:abc\nOPENAI_API_KEY=k\n").search.has_search
    with pytest.raises(SettingsError) as error:
        load(
            tmp_path,
            "TELEGRAM_BOT_TOKEN=123:abc\nOPENAI_API_KEY=k\nSEARCH_ALLOW_PRIVATE_ADDRESSES=lan\n",
        )
    assert "SEARCH_ALLOW_PRIVATE_ADDRESSES is not valid (comma-separated networks" in str(
        error.value
    )


def test_mcp_config_must_name_a_file_and_blank_is_none(tmp_path: Path) -> None:
    base = "TELEGRAM_BOT_TOKEN=123:abc\nOPENAI_API_KEY=k\n"
    assert load(tmp_path, base + "MCP_CONFIG=\n").mcp.config is None
    with pytest.raises(SettingsError) as error:
        load(tmp_path, base + f"MCP_CONFIG={tmp_path / 'absent.json'}\n")
    assert "MCP_CONFIG is not valid" in error.value.sentence()
