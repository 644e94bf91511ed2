"""Token counting: the chat format's arithmetic, each model's own vocabulary, offline."""

import gzip
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public

from app.memory import tokens
from app.memory.tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE, load_counter

ANSWERS = Path(__file__).resolve().parents[1] / "data" / "answers"
HARD_CASES = [
    "Привет, мир! Как дела? ЗАГЛАВНЫЕ и строчные, 1234567 рублей.",
    "👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇷🇺 ❤️‍🔥 1️⃣",
    "日本語、中文，한국어。 مرحبا e\u0301 \u200b\u00a0",
    "def f(x):\n\treturn {'a': [1, 2, 3]}  # I'M sure we'll see\r\n\n   \n",
    "<|endoftext|> <|endofprompt|> <|im_start|>",
    "x" * 3000,
]
O200K_MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "chatgpt-4o-latest",
    "gpt-4.1-mini",
    "gpt-4.5-preview",
    "gpt-5",
    "o1",
    "o3-mini",
    "o4-mini",
    "gpt-oss-20b",
]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    load_counter.cache_clear()


@pytest.fixture(scope="module")
def tiktoken_o200k(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """tiktoken's own o200k_base definition, reading the shipped file instead of OpenAI's
    URL: tiktoken parses it and checks it against the SHA-256 it publishes."""
    local = tmp_path_factory.mktemp("vocab") / "o200k_base.tiktoken"
    local.write_bytes(gzip.decompress(tokens.VOCAB.joinpath("o200k_base.tiktoken.gz").read_bytes()))
    real_load = tiktoken.load.load_tiktoken_bpe

    def load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        assert url.endswith("/o200k_base.tiktoken")
        return real_load(str(local), expected_hash)

    # TIKTOKEN_CACHE_DIR="" : tiktoken's cache is off, nothing is written anywhere.
    with (
        mock.patch.dict(os.environ, {"TIKTOKEN_CACHE_DIR": ""}),
        mock.patch.object(openai_public, "load_tiktoken_bpe", load),
    ):
        return openai_public.o200k_base()


def corpus() -> list[str]:
    return [path.read_text(encoding="utf-8") for path in sorted(ANSWERS.glob("*.md"))] + [
        *HARD_CASES
    ]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every attempt to resolve or connect is refused and recorded."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> Any:
        attempts.append(repr(args))
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts


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


@pytest.mark.parametrize("model", O200K_MODELS)
def test_o200k_models_count_with_o200k_exactly(model: str) -> None:
    counter = load_counter(model)
    assert (counter.encoding.name, counter.exact) == ("o200k_base", True)


def test_gpt_4o_mini_counts_like_tiktokens_o200k(tiktoken_o200k: dict[str, Any]) -> None:
    reference = tiktoken.Encoding(**tiktoken_o200k)
    counter = load_counter("gpt-4o-mini")
    for text in corpus():
        assert counter.encoding.encode(text, disallowed_special=()) == reference.encode(
            text, disallowed_special=()
        ), text[:60]
        assert counter.text(text) == len(reference.encode(text, disallowed_special=()))


def test_shipped_o200k_is_tiktokens_definition(tiktoken_o200k: dict[str, Any]) -> None:
    shipped = tokens.read_vocabulary("o200k_base.tiktoken.gz", tokens.O200K_BASE_SHA256)
    assert (
        tokens.O200K_BASE_PATTERN,
        tokens.O200K_BASE_SPECIAL_TOKENS,
        shipped,
    ) == (
        tiktoken_o200k["pat_str"],
        tiktoken_o200k["special_tokens"],
        tiktoken_o200k["mergeable_ranks"],
    )


def test_loading_o200k_reaches_for_no_network(
    no_network: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    tokens.o200k_base.cache_clear()  # load it here, not in an earlier test
    with caplog.at_level(logging.INFO):
        load_counter("gpt-4o-mini").text("Привет")
    assert (no_network, list(cache.iterdir()), caplog.records) == ([], [], [])


def test_cl100k_models_use_the_bundled_copy_exactly() -> None:
    counter = load_counter("gpt-4")
    assert counter.encoding.name == tokens.OFFLINE_ENCODING
    assert counter.exact is True


def test_unknown_model_counts_with_offline_cl100k_and_is_not_exact() -> None:
    counter = load_counter("llama3.1:8b")
    assert counter.encoding.name == tokens.OFFLINE_ENCODING
    assert counter.exact is False


def test_legacy_completion_model_falls_back_without_the_network(no_network: list[str]) -> None:
    counter = load_counter("text-davinci-003")  # p50k_base, which is not shipped
    assert (counter.encoding.name, counter.exact, no_network) == (
        tokens.OFFLINE_ENCODING,
        False,
        [],
    )


def test_damaged_vocabulary_falls_back_once_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "o200k_base.tiktoken.gz").write_bytes(gzip.compress(b"not the vocabulary"))
    monkeypatch.setattr(tokens, "VOCAB", tmp_path)
    tokens.o200k_base.cache_clear()
    with caplog.at_level(logging.WARNING, logger="app.memory.tokens"):
        first = load_counter("gpt-4o")
        second = load_counter("gpt-4o")
    assert first is second
    assert (first.encoding.name, first.exact) == (tokens.OFFLINE_ENCODING, False)
    assert len([r for r in caplog.records if "o200k_base" in r.getMessage()]) == 1
