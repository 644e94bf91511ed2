"""Splitting long answers into messages Telegram accepts."""

from hypothesis import given
from hypothesis import strategies as st

from app.delivery.split import MESSAGE_LIMIT, split_message, telegram_length


def test_short_text_is_one_part() -> None:
    assert split_message("hello") == ["hello"]


def test_empty_text_is_no_part() -> None:
    assert split_message("  \n ") == []


def test_splits_at_paragraphs_first() -> None:
    para = "word " * 300  # 1,499 characters: two fit in a message, three do not
    text = "\n\n".join(para.strip() for _ in range(4))
    parts = split_message(text, 4096)
    assert len(parts) == 2
    assert all(telegram_length(p) <= 4096 for p in parts)
    assert parts[0].count("\n\n") == 1  # two whole paragraphs


def test_splits_at_lines_when_there_are_no_paragraphs() -> None:
    text = "\n".join(f"line {i} " + "x" * 60 for i in range(200))
    parts = split_message(text, 1000)
    assert all(p.startswith("line ") for p in parts)
    assert all(telegram_length(p) <= 1000 for p in parts)


def test_text_without_spaces_is_cut_hard_at_the_limit() -> None:
    parts = split_message("a" * 10_000)
    assert [len(p) for p in parts] == [4096, 4096, 1808]


def test_emoji_are_counted_as_telegram_counts_them_and_never_halved() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units
    parts = split_message(text)
    assert [telegram_length(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == text


@given(st.text(alphabet=st.sampled_from(["a", "b", " ", "\n", "😀", "я", "."]), max_size=20_000))
def test_no_part_is_too_long_and_no_visible_character_is_lost(text: str) -> None:
    parts = split_message(text, MESSAGE_LIMIT)
    assert all(0 < telegram_length(p) <= MESSAGE_LIMIT for p in parts)
    assert "".join(parts).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace(
        "\n", ""
    )
