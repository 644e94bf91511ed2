"""The profile writer's reading of the model's answer, and the profile's limits."""

from __future__ import annotations

from app.config import MemorySettings
from app.memory.profile import ProfileBook, clean_fact, parse_operations, profile_message
from app.memory.tokens import load_counter

COUNTER = load_counter("test-model")


def test_operations_are_read_from_json_even_in_a_code_fence() -> None:
    answer = 'Sure:\n```json\n{"add": ["The user is Ada."], "remove": [2, "1", 9, true]}\n```'
    assert parse_operations(answer, facts=3) == (["The user is Ada."], [1, 0])


def test_an_answer_not_in_the_expected_form_changes_nothing() -> None:
    for answer in ("no json here", "{not json}", "[1, 2]", '{"add": "a fact", "remove": 1}'):
        assert parse_operations(answer, facts=2) == ([], [])


def test_a_fact_is_one_trimmed_line_without_list_marks() -> None:
    assert clean_fact("  - The user\n  likes  tea. ") == "The user likes tea."
    assert len(clean_fact("word " * 100)) <= 200


def test_the_profile_keeps_to_its_most_tokens_and_entries() -> None:
    book = ProfileBook(
        COUNTER, MemorySettings(profile_max_tokens=60, profile_max_facts=3, _env_file=None)
    )
    assert book.fits(["The user is Ada.", "The user likes tea."])
    assert not book.fits(["a", "b", "c", "d"])
    assert not book.fits(["The user likes long walks by the river in the evening."] * 3)
    facts = ["The user is Ada."]
    assert book.tokens(facts) == COUNTER.message("system", profile_message(facts))
