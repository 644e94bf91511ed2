"""The request budget: window table, overrides, reserve and margin."""

import logging

import pytest

from app.memory.window import FALLBACK_CONTEXT_WINDOW, ContextBudget, context_window


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("gpt-4o", 128_000),
        ("gpt-4o-mini-2024-07-18", 128_000),
        ("gpt-4", 8_192),
        ("gpt-4-turbo-2024-04-09", 128_000),
        ("gpt-3.5-turbo-0125", 16_385),
        ("gpt-4.1-mini", 1_047_576),
    ],
)
def test_known_models_match_by_longest_prefix(model: str, window: int) -> None:
    assert context_window(model) == window


def test_setting_overrides_the_table() -> None:
    assert context_window("gpt-4o", 8_000) == 8_000


def test_unknown_model_gets_a_safe_default_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert context_window("qwen2.5:7b") == FALLBACK_CONTEXT_WINDOW
    assert "OPENAI_CONTEXT_WINDOW" in caplog.text


def test_prompt_limit_is_window_minus_reserve_minus_margin() -> None:
    budget = ContextBudget.for_model("x", window=8_000, answer_reserve=1_000, margin=64)
    assert budget.prompt_limit == 6_936


def test_a_reserve_that_leaves_no_room_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="OPENAI_MAX_ANSWER_TOKENS"):
        ContextBudget.for_model("x", window=1_000, answer_reserve=900, margin=0)
