"""The recall benchmark's pairs (bench/recall_pairs.py) only recall by meaning can answer."""

from __future__ import annotations

import random

from bench.recall_pairs import PAIRS, clashes, filler, problems, terms


def test_no_question_or_filler_shares_a_content_word_with_a_fact() -> None:
    assert problems() == []


def test_there_are_enough_pairs_in_both_languages() -> None:
    languages = [pair.language for pair in PAIRS]
    assert len(PAIRS) >= 30
    assert languages.count("en") >= 20 and languages.count("ru") >= 12


def test_generated_fillers_share_nothing_with_the_facts() -> None:
    rng = random.Random(0)
    facts = set().union(*(terms(pair.fact) for pair in PAIRS))
    for i in range(500):
        assert not clashes(terms(filler(rng, user=i % 2 == 0)), facts)


def test_an_inflected_or_stemmed_word_counts_as_shared() -> None:
    assert clashes(terms("Где велосипед?"), terms("велосипеда нет")) == {"велосипед"}
    assert clashes(terms("I walked"), terms("a long walk")) == {"walked"}
