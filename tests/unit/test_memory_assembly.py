"""Priority-ordered assembly with shares: property tests over random histories and budgets."""

from __future__ import annotations

from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st

from app.memory.context import (
    Assembled,
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
from app.memory.tokens import load_counter
from app.memory.window import ContextBudget
from tests.fakes.openai import count_prompt_tokens

COUNTER = load_counter("test-model")
words = st.lists(
    st.sampled_from(
        [
            "tea",
            "cat",
            "sun",
            "moon",
            "dentist",
            "garden",
            "river",
            "code",
            "bug",
            "fix",
            "plan",
            "idea",
        ]
    ),
    min_size=1,
    max_size=60,
).map(" ".join)


def turn(role: str, text: str, turn_id: int | None = None) -> Turn:
    return Turn(role, text, COUNTER.message(role, text), turn_id)  # type: ignore[arg-type]


@st.composite
def personas(draw: st.DrawFn) -> PersonaMemory:
    facts = draw(st.lists(words, max_size=5))
    pairs = draw(st.lists(st.tuples(words, words), max_size=3))
    system = compose_system_message("You are " + draw(words), facts)
    qa = [QAPair(q, a, pair_tokens(COUNTER, q, a)) for q, a in pairs]
    return PersonaMemory("P", system, COUNTER.message("system", system), qa)


@st.composite
def histories(draw: st.DrawFn) -> list[Turn]:
    texts = draw(st.lists(words, max_size=80))
    return [turn("user" if i % 2 == 0 else "assistant", t, i + 1) for i, t in enumerate(texts)]


def assemble(
    builder: ContextBuilder,
    history: list[Turn],
    recall_ids: list[int],
    summary: Turn | None,
    profile: Turn | None = None,
) -> Assembled:
    """What MemoryService.assemble does, without the database."""
    builder.use_profile(profile)
    builder.use_summary(summary)
    newest_first = iter(reversed(history))
    for t in newest_first:
        if not builder.offer(t):
            break
    if builder.full:
        boundary = builder.oldest_recent_id or len(history) + 1
        by_id = {t.id: t for t in history}
        builder.recall(by_id[i] for i in recall_ids if i < boundary and i in by_id)
    if builder.full:
        builder.release_recall()
        for t in newest_first:
            if not builder.offer(t):
                break
    return builder.build()


@settings(max_examples=300, deadline=None)
@given(
    persona=personas(),
    history=histories(),
    new_text=words,
    window=st.integers(600, 6_000),
    reserve=st.sampled_from([100, 300, 1_000]),
    shares=st.tuples(st.sampled_from([0, 0.1, 0.15, 0.3]), st.sampled_from([0, 0.1, 0.2])),
    summary_text=st.none() | words,
    recall_ids=st.lists(st.integers(1, 80), max_size=10),
)
def test_assembly_fits_keeps_the_essentials_never_duplicates_and_keeps_order(
    persona: PersonaMemory,
    history: list[Turn],
    new_text: str,
    window: int,
    reserve: int,
    shares: tuple[float, float],
    summary_text: str | None,
    recall_ids: list[int],
) -> None:
    budget = ContextBudget(window, reserve, 16)
    assume(budget.prompt_limit > 0)
    new = turn("user", new_text)
    try:
        builder = ContextBuilder(persona, new, budget, Shares(*shares))
    except (PersonaTooLarge, MessageTooLong):
        reject()  # no room for a conversation at all: not what this property is about
    summary = None
    if summary_text is not None:
        content = summary_message(summary_text)
        summary = Turn("system", content, COUNTER.message("system", content))
    assembled = assemble(builder, history, recall_ids, summary)
    api = assembled.as_api()

    # Exact, and never over the window.
    assert assembled.prompt_tokens == count_prompt_tokens(api)
    assert assembled.prompt_tokens + reserve + 16 <= window
    # The persona's system message and pairs first, the new message last.
    persona_turns = persona.turns()
    assert api[: len(persona_turns)] == [t.as_api() for t in persona_turns]
    assert assembled.turns[-1] is new
    # History: no turn twice, in the order it was said.
    ids = [t.id for t in assembled.turns if t.id is not None]
    assert ids == sorted(set(ids))
    # The newest turns are there without a gap, up to the oldest one taken as recent.
    if ids and history:
        newest = [t.id for t in history if t.id is not None and t.id >= min(ids)]
        kept = set(ids)
        tail = [i for i in reversed(newest) if i in kept]
        assert tail[0] == history[-1].id
    # Each part within its share; what is left over goes to recent turns.
    b = assembled.breakdown
    assert b is not None
    assert b.summary <= int(b.conversation_budget * shares[0])
    assert b.recalled <= int(b.conversation_budget * shares[1])
    assert b.conversation_used <= b.conversation_budget


@settings(max_examples=100, deadline=None)
@given(persona=personas(), history=histories(), shares=st.sampled_from([0.1, 0.2, 0.3]))
def test_a_summary_within_its_share_is_sent_first_after_the_persona(
    persona: PersonaMemory, history: list[Turn], shares: float
) -> None:
    budget = ContextBudget(4_000, 500, 0)
    content = summary_message("The user keeps bees and likes tea.")
    summary = Turn("system", content, COUNTER.message("system", content))
    try:
        builder = ContextBuilder(persona, turn("user", "hi"), budget, Shares(shares, 0.1))
    except (PersonaTooLarge, MessageTooLong):
        reject()  # no room for a conversation at all: not what this property is about
    assembled = assemble(builder, history, [], summary)
    assert assembled.turns[len(persona.turns())] is summary


def test_unused_shares_flow_to_recent_turns() -> None:
    persona = PersonaMemory("P", "You are P.", COUNTER.message("system", "You are P."))
    history = [turn("user" if i % 2 == 0 else "assistant", "word " * 20, i + 1) for i in range(300)]
    budget = ContextBudget(4_000, 500, 0)
    with_shares = assemble(
        ContextBuilder(persona, turn("user", "hi"), budget, Shares(0.2, 0.2)), history, [], None
    )
    without = assemble(ContextBuilder(persona, turn("user", "hi"), budget), history, [], None)
    assert with_shares.prompt_tokens == without.prompt_tokens
    assert with_shares.history_turns == without.history_turns


def test_recalled_turns_are_the_old_ones_asked_for_and_within_their_share() -> None:
    persona = PersonaMemory("P", "You are P.", COUNTER.message("system", "You are P."))
    history = [turn("user" if i % 2 == 0 else "assistant", "word " * 20, i + 1) for i in range(300)]
    builder = ContextBuilder(
        persona, turn("user", "hi"), ContextBudget(4_000, 500, 0), Shares(0, 0.1)
    )
    assembled = assemble(builder, history, [5, 1, 3], None)
    ids = [t.id for t in assembled.turns if t.id is not None]
    assert ids[:3] == [1, 3, 5]
    assert assembled.breakdown is not None and assembled.breakdown.recalled_turns == 3


def profile_turn(facts: list[str]) -> Turn | None:
    if not facts:
        return None
    content = profile_message(facts)
    return Turn("system", content, COUNTER.message("system", content))


@settings(max_examples=300, deadline=None)
@given(
    persona=personas(),
    history=histories(),
    new_text=words,
    window=st.integers(600, 6_000),
    reserve=st.sampled_from([100, 300, 1_000]),
    shares=st.tuples(
        st.sampled_from([0, 0.1, 0.3]),
        st.sampled_from([0, 0.1, 0.2]),
        st.sampled_from([0, 0.05, 0.1, 0.3, 0.5]),
    ),
    summary_text=st.none() | words,
    facts=st.lists(words, max_size=30),
    recall_ids=st.lists(st.integers(1, 80), max_size=10),
)
def test_profile_summary_recall_and_recent_turns_never_exceed_the_window_and_count_exactly(
    persona: PersonaMemory,
    history: list[Turn],
    new_text: str,
    window: int,
    reserve: int,
    shares: tuple[float, float, float],
    summary_text: str | None,
    facts: list[str],
    recall_ids: list[int],
) -> None:
    budget = ContextBudget(window, reserve, 16)
    assume(budget.prompt_limit > 0)
    new = turn("user", new_text)
    try:
        builder = ContextBuilder(persona, new, budget, Shares(*shares))
    except (PersonaTooLarge, MessageTooLong):
        reject()  # no room for a conversation at all: not what this property is about
    summary = None
    if summary_text is not None:
        content = summary_message(summary_text)
        summary = Turn("system", content, COUNTER.message("system", content))
    profile = profile_turn(facts)
    assembled = assemble(builder, history, recall_ids, summary, profile)
    api = assembled.as_api()

    # Exact, and never over the window, with every part in.
    assert assembled.prompt_tokens == count_prompt_tokens(api)
    assert assembled.prompt_tokens + reserve + 16 <= window
    b = assembled.breakdown
    assert b is not None
    assert b.profile <= int(b.conversation_budget * shares[2])
    assert b.summary <= int(b.conversation_budget * shares[0])
    assert b.recalled <= int(b.conversation_budget * shares[1])
    assert b.conversation_used <= b.conversation_budget
    # The profile whole or not at all, right after the persona (and before the summary).
    sent = [t for t in assembled.turns if t is profile]
    assert b.profile == (profile.tokens if sent and profile is not None else 0)
    if sent:
        assert assembled.turns[len(persona.turns())] is profile
    if profile is not None and profile.tokens <= int(b.conversation_budget * shares[2]):
        assert sent, "a profile within its share is always sent"
    ids = [t.id for t in assembled.turns if t.id is not None]
    assert ids == sorted(set(ids))
