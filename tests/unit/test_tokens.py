"""Token counting: the chat format's arithmetic and the offline fallback."""

import logging

import pytest
import tiktoken

from app.memory import tokens
from app.memory.tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE, load_counter


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    load_counter.cache_clear()


def test_message_cost_is_framing_plus_role_plus_content() -> None:
    counter = load_counter("test-model")
    content = "Hello, world! Привет, мир!"
    expected = TOKENS_PER_MESSAGE + counter.text("user") + counter.text(content)
    assert counter.message("user", content) == expected
    assert counter.text("user") == 1
    assert REPLY_PRIMING == 3


def test_special_token_text_is_counted_as_plain_text() -> None:
    counter = load_counter("test-model")
    assert counter.text("<|endoftext|>") > 1


def test_unknown_model_counts_with_offline_cl100k_and_is_not_exact() -> None:
    counter = load_counter("llama3.1:8b")
    assert counter.encoding.name == tokens.OFFLINE_ENCODING
    assert counter.exact is False


def test_cl100k_models_use_the_bundled_copy_exactly() -> None:
    counter = load_counter("gpt-4")
    assert counter.encoding.name == tokens.OFFLINE_ENCODING
    assert counter.exact is True


def test_unloadable_vocabulary_falls_back_once_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_get_encoding = tiktoken.get_encoding

    def offline_only(name: str) -> tiktoken.Encoding:
        if name != tokens.OFFLINE_ENCODING:
            raise ConnectionError("no network in this test")
        return real_get_encoding(name)

    monkeypatch.setattr(tiktoken, "get_encoding", offline_only)
    with caplog.at_level(logging.WARNING, logger="app.memory.tokens"):
        first = load_counter("gpt-4o")
        second = load_counter("gpt-4o")
    assert first is second
    assert first.encoding.name == tokens.OFFLINE_ENCODING
    assert first.exact is False
    assert len([r for r in caplog.records if "o200k_base" in r.getMessage()]) == 1
