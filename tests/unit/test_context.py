"""Assembling a request: exact sums, cut at the budget, order kept, clear refusals."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.memory.context import (
    FACTS_HEADING,
    ContextBuilder,
    MessageTooLong,
    PersonaMemory,
    PersonaTooLarge,
    QAPair,
    Shares,
    Turn,
    compose_system_message,
    pair_tokens,
    summary_message,
)
from app.memory.profile import profile_message
from app.memory.tokens import REPLY_PRIMING, load_counter
from app.memory.window import ContextBudget
from tests.fakes.openai import count_prompt_tokens

COUNTER = load_counter("test-model")


def persona(prompt: str = "You are Ann.", facts: tuple[str, ...] = (), pairs=()) -> PersonaMemory:
    system = compose_system_message(prompt, facts)
    qa = [QAPair(q, a, pair_tokens(COUNTER, q, a)) for q, a in pairs]
    return PersonaMemory("Ann", system, COUNTER.message("system", system), qa)


def turn(role: str, text: str, turn_id: int | None = None) -> Turn:
    return Turn(role, text, COUNTER.message(role, text), turn_id)  # type: ignore[arg-type]


def history(n: int) -> list[Turn]:
    """n turns, oldest first, alternating user/assistant."""
    return [
        turn("user" if i % 2 == 0 else "assistant", f"message number {i} " + "word " * (i % 7), i)
        for i in range(n)
    ]


def test_system_message_lists_facts_after_the_prompt() -> None:
    text = compose_system_message("Prompt.", ["likes tea", "  ", "lives in Oslo"])
    assert text == f"Prompt.\n\n{FACTS_HEADING}\n- likes tea\n- lives in Oslo"
    assert compose_system_message("Prompt.", []) == "Prompt."


def test_assembled_count_equals_an_independent_count_of_the_request() -> None:
    ann = persona(facts=("likes tea",), pairs=[("Who are you?", "I am Ann.")])
    builder = ContextBuilder(ann, turn("user", "Hi!"), ContextBudget(10_000, 1_000, 0))
    for past in reversed(history(6)):
        builder.offer(past)
    assembled = builder.build()
    assert assembled.prompt_tokens == count_prompt_tokens(assembled.as_api())


def test_request_order_is_system_pairs_history_new_message() -> None:
    ann = persona(pairs=[("Q1", "A1")])
    builder = ContextBuilder(ann, turn("user", "new"), ContextBudget(10_000, 1_000, 0))
    for past in reversed(history(3)):
        builder.offer(past)
    roles_and_text = [(t["role"], t["content"]) for t in builder.build().as_api()]
    assert roles_and_text[0][0] == "system"
    assert roles_and_text[1:3] == [("user", "Q1"), ("assistant", "A1")]
    assert [c for _, c in roles_and_text[3:6]] == [t.content for t in history(3)]
    assert roles_and_text[-1] == ("user", "new")


def test_the_profile_comes_after_the_persona_and_before_the_summary_counted_exactly() -> None:
    ann = persona(pairs=[("Q1", "A1")])
    text = profile_message(["The user is called Ada.", "The user is allergic to nuts."])
    profile = Turn("system", text, COUNTER.message("system", text))
    summary_text = summary_message("They talked about cooking.")
    summary = Turn("system", summary_text, COUNTER.message("system", summary_text))
    builder = ContextBuilder(
        ann, turn("user", "new"), ContextBudget(10_000, 1_000, 0), Shares(0.2, 0.1, 0.1)
    )
    assert builder.use_profile(profile) and builder.use_summary(summary)
    for past in reversed(history(3)):
        builder.offer(past)
    assembled = builder.build()
    assert [t["content"] for t in assembled.as_api()[3:5]] == [text, summary_text]
    assert assembled.prompt_tokens == count_prompt_tokens(assembled.as_api())
    assert assembled.breakdown is not None and assembled.breakdown.profile == profile.tokens


def test_a_profile_over_its_share_is_left_out_whole() -> None:
    text = profile_message(["The user likes long walks by the river."] * 20)
    profile = Turn("system", text, COUNTER.message("system", text))
    builder = ContextBuilder(
        persona(), turn("user", "new"), ContextBudget(1_000, 200, 0), Shares(profile=0.05)
    )
    assert not builder.use_profile(profile)
    assembled = builder.build()
    assert all(t is not profile for t in assembled.turns)
    assert assembled.breakdown is not None and assembled.breakdown.profile == 0


def test_history_is_cut_exactly_where_the_next_turn_would_not_fit() -> None:
    ann = persona()
    new = turn("user", "latest question")
    turns = history(40)
    fixed = REPLY_PRIMING + ann.tokens + new.tokens
    # Room for exactly the newest 5 turns, and one token short of the 6th.
    room = sum(t.tokens for t in turns[-5:])
    limit = fixed + room + turns[-6].tokens - 1
    builder = ContextBuilder(ann, new, ContextBudget(limit + 100, 100, 0))
    assert all(builder.offer(t) for t in reversed(turns)) is False
    assembled = builder.build()
    assert assembled.history_turns == 5
    assert assembled.prompt_tokens == fixed + room
    assert assembled.prompt_tokens <= limit


def test_a_turn_that_does_not_fit_ends_the_history_even_if_older_ones_would() -> None:
    ann = persona()
    new = turn("user", "q")
    big = turn("assistant", "long " * 300, 2)
    small_old = turn("user", "hi", 1)
    limit = REPLY_PRIMING + ann.tokens + new.tokens + small_old.tokens + 10
    builder = ContextBuilder(ann, new, ContextBudget(limit, 0, 0))
    assert builder.offer(big) is False
    assert builder.offer(small_old) is False
    assert builder.build().history_turns == 0


def test_a_message_too_long_for_the_room_left_by_the_persona_is_refused() -> None:
    ann = persona()
    new = turn("user", "word " * 500)
    limit = REPLY_PRIMING + ann.tokens + 100
    with pytest.raises(MessageTooLong) as refused:
        ContextBuilder(ann, new, ContextBudget(limit, 0, 0))
    assert refused.value.limit == 100
    assert refused.value.message_tokens == new.tokens


def test_a_persona_that_fills_the_budget_is_refused() -> None:
    ann = persona(facts=tuple(f"fact {i} " * 20 for i in range(30)))
    with pytest.raises(PersonaTooLarge) as refused:
        ContextBuilder(ann, turn("user", "hi"), ContextBudget(ann.tokens, 0, 0))
    assert refused.value.persona_tokens == ann.tokens + REPLY_PRIMING


words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)


@settings(max_examples=200, deadline=None)
@given(
    prompt=words,
    facts=st.lists(words, max_size=5),
    pairs=st.lists(st.tuples(words, words), max_size=4),
    texts=st.lists(words, max_size=40),
    new_text=words,
    window=st.integers(min_value=300, max_value=3_000),
    reserve=st.integers(min_value=0, max_value=200),
)
def test_property_never_exceeds_keeps_everything_required_and_keeps_order(
    prompt: str,
    facts: list[str],
    pairs: list[tuple[str, str]],
    texts: list[str],
    new_text: str,
    window: int,
    reserve: int,
) -> None:
    ann = persona(prompt, tuple(facts), pairs)
    new = turn("user", new_text)
    past = [turn("user" if i % 2 else "assistant", t, i) for i, t in enumerate(texts)]
    budget = ContextBudget(window, reserve, 0)
    try:
        builder = ContextBuilder(ann, new, budget)
    except (PersonaTooLarge, MessageTooLong):
        assert REPLY_PRIMING + ann.tokens + new.tokens > budget.prompt_limit
        return
    for older in reversed(past):
        builder.offer(older)
    assembled = builder.build()
    request = assembled.as_api()
    assert count_prompt_tokens(request) == assembled.prompt_tokens <= budget.prompt_limit
    assert request[0] == {"role": "system", "content": ann.system_message}
    assert request[-1] == {"role": "user", "content": new_text}
    kept = [t.id for t in assembled.turns if t.id is not None]
    assert kept == sorted(kept)  # chronological, no duplicates
    assert len(set(kept)) == len(kept)
    assert kept == [t.id for t in past[len(past) - len(kept) :]]  # the newest ones
