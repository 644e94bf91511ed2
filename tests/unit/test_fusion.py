"""Reciprocal rank fusion of the words' and the meaning's rankings (app/memory/recall.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.memory.recall import RRF_K, fuse


def test_agreement_beats_one_lists_first_place() -> None:
    by_meaning = [10, 20, 30]
    by_words = [40, 20, 50]
    # 20 is second in both: 2 / (K + 2) is more than 1 / (K + 1) for either list's first;
    # 40 and 10 tie (first in one list each), as 50 and 30 do: the newer first.
    assert fuse([by_meaning, by_words], key=int, limit=5) == [20, 40, 10, 50, 30]


def test_ties_go_to_the_newer_turn_and_the_limit_holds() -> None:
    assert fuse([[1], [2]], key=int, limit=1) == [2]
    assert fuse([[], [3, 1, 2]], key=int, limit=2) == [3, 1]
    assert fuse([[], []], key=int, limit=3) == []


def test_one_list_keeps_its_order() -> None:
    assert fuse([[7, 3, 9]], key=int, limit=10) == [7, 3, 9]


@given(
    st.lists(st.lists(st.integers(0, 50), unique=True, max_size=12), max_size=3),
    st.integers(0, 20),
)
def test_fusion_returns_distinct_items_of_the_lists_best_scored_first(
    rankings: list[list[int]], limit: int
) -> None:
    fused = fuse(rankings, key=int, limit=limit)
    assert len(fused) == len(set(fused)) <= limit
    assert set(fused) <= {item for ranking in rankings for item in ranking}

    def score(item: int) -> float:
        return sum(1 / (RRF_K + r.index(item) + 1) for r in rankings if item in r)

    scores = [score(item) for item in fused]
    assert scores == sorted(scores, reverse=True)
    everything = {item for ranking in rankings for item in ranking}
    if len(fused) < limit:
        assert set(fused) == everything
    elif fused:  # nothing left out scores more than what was kept
        assert all(score(item) <= scores[-1] for item in everything - set(fused))
