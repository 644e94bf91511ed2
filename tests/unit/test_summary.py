"""The summariser's pure parts: what it searches for, and a summary cut to its share."""

from __future__ import annotations

from unittest.mock import MagicMock

from app.config import MemorySettings, OpenAISettings
from app.memory.context import summary_message
from app.memory.recall import search_terms
from app.memory.summary import Summarizer
from app.memory.tokens import load_counter

COUNTER = load_counter("test-model")


def test_search_terms_drop_filler_words_and_put_longer_words_first() -> None:
    terms = search_terms("What was the name of my dentist I told you about? The DENTIST!")
    assert terms == ["dentist", "name"]


def test_search_terms_drop_russian_filler_words_too() -> None:
    assert search_terms("Как попасть домой, если потерял связку?") == [
        "попасть",
        "потерял",
        "связку",
        "домой",
    ]
    assert search_terms("Каких продуктов мне нельзя есть?") == ["продуктов"]
    assert search_terms("Whose wedding do I get to?") == ["wedding"]


def test_search_terms_are_capped() -> None:
    text = " ".join(f"word{i:03d}" for i in range(50))
    assert len(search_terms(text, limit=12)) == 12


def test_a_summary_longer_than_its_share_is_cut_to_fit() -> None:
    openai = OpenAISettings(api_key="k", base_url="http://127.0.0.1:1/v1", _env_file=None)
    summarizer = Summarizer(
        MagicMock(), MagicMock(), COUNTER, openai, MemorySettings(_env_file=None)
    )
    content = summary_message("The user likes tea and long walks. " * 40)
    cut = summarizer._fit(content, 60)
    assert COUNTER.message("system", cut) <= 60
    assert content.startswith(cut)
    short = summary_message("Tea.")
    assert summarizer._fit(short, 60) == short


def test_the_summary_model_defaults_to_the_chat_model() -> None:
    openai = OpenAISettings(
        api_key="k", base_url="http://127.0.0.1:1/v1", model="big", _env_file=None
    )
    default = Summarizer(MagicMock(), MagicMock(), COUNTER, openai, MemorySettings(_env_file=None))
    cheap = Summarizer(
        MagicMock(),
        MagicMock(),
        COUNTER,
        openai,
        MemorySettings(summary_model="small", _env_file=None),
    )
    assert (default.model, cheap.model) == ("big", "small")
