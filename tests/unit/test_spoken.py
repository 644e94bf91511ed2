"""What of an answer is read aloud (app/delivery/spoken.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.delivery.spoken import speakable


def test_code_blocks_and_tables_are_left_out_and_the_prose_is_kept() -> None:
    answer = (
        "# Sorting\n\nUse **sorted** — it returns a new list 🙂:\n\n```python\n"
        "print(sorted([3, 1, 2]))\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "The `key` argument picks what to compare."
    )
    speech = speakable(answer)
    assert speech.text == (
        "Sorting\n\nUse sorted — it returns a new list 🙂:\n\nThe key argument picks what to "
        "compare."
    )
    assert not speech.cut


def test_an_answer_that_is_all_code_has_nothing_to_say() -> None:
    assert speakable("```sh\nls -la\n```").text == ""


def test_a_long_answer_speaks_its_first_sentences() -> None:
    sentence = "The river runs past the old mill and the bridge. "
    speech = speakable(sentence * 100, limit=500)
    assert speech.cut
    assert speech.text.endswith("bridge.")
    assert len(speech.text) <= 500


@given(st.text(max_size=3000))
def test_any_text_gives_a_short_enough_speech(text: str) -> None:
    speech = speakable(text, limit=400)
    assert len(speech.text) <= 400
