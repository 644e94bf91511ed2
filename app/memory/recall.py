"""Which words of a new message to search old turns for: content words, longest first."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

# Words that say nothing about what an old turn was about; searching for them would match
# most of a conversation and cost time that grows with its length.
STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        """
    about above after again against all also and any are aren because been before being
    below between both but can cannot could did didn does doesn doing don down during each
    few for from further had hadn has hasn have haven having her here hers herself him
    himself his how into isn its itself just let like more most much must mustn myself nor
    not now off once only other ought our ours ourselves out over own really same shall she
    should shouldn some such tell than that the their theirs them themselves then there
    these they this those through too told under until very was wasn way were weren what
    when where which while who whom why will with won would wouldn yes yet you your yours
    yourself yourselves remember remind know said say says thing things something anything
    please thanks thank okay again whose get gets got getting
"""
        # The same for Russian: without them a question such as "Как попасть домой, если
        # потерял связку?" matched thousands of turns of a 10,000-turn conversation, and
        # PostgreSQL took 25 ms to find the newest of them (bench/recall.py).
        """
    как если мне меня мной мой моя моё мое мои моего моей моих его её ее ему ей они оно она
    них ним ими ещё еще уже вот там тут здесь где куда когда кто что чего чем чему это этот
    эта эти этого этой этих тот того той те тех так такой такая такое такие какой какая
    какое какие какую каких каким каком который которая которое которые для без при про
    над под после перед через между или либо тоже также даже только очень можно нужно
    надо нельзя есть быть был была было были будет буду будем всё все всех весь вся тебя
    тебе твой твоя твоё твое твои вас вам ваш ваша ваше ваши нас нам наш наша наше наши
    себя себе свой своя своё свое свои чтобы потому почему зачем сейчас потом теперь тогда
    опять снова просто ничего нибудь сам сама сами самый один одна одно скажи расскажи
    напомни помнишь знаешь говорил говорила сказал сказала пожалуйста спасибо
""",
    )
)
R = TypeVar("R")

WORD = re.compile(r"\w{3,}", re.UNICODE)


def search_terms(text: str, limit: int = 12) -> list[str]:
    """Up to `limit` distinct content words of `text`, the longest (usually rarest) first."""
    seen: dict[str, None] = {}
    for match in WORD.finditer(text.lower()):
        word = match.group()
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return sorted(seen, key=len, reverse=True)[:limit]


# Reciprocal rank fusion's constant (Cormack, Clarke and Büttcher, 2009): large enough that
# one list's first place does not outweigh agreement between the lists.
RRF_K = 60


def fuse(rankings: Sequence[Sequence[R]], key: Callable[[R], int], limit: int) -> list[R]:
    """Reciprocal rank fusion of best-first lists: each item scores the sum of 1 / (K +
    rank) over the lists it is in; the best `limit` first, ties to the newer (larger key)."""
    scores: dict[int, float] = {}
    items: dict[int, R] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            k = key(item)
            scores[k] = scores.get(k, 0.0) + 1.0 / (RRF_K + rank)
            items.setdefault(k, item)
    order = sorted(scores, key=lambda k: (-scores[k], -k))
    return [items[k] for k in order[:limit]]
