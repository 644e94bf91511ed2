"""A long text cut into consecutive chunks that each fit a token budget, at the most natural
places there are: paragraphs, then lines, sentences, words, and only as a last resort inside
a word (a pasted hash or base64 blob has no other place).

Nothing is lost or added: "".join(chunks) == text, always. The whitespace at a cut stays
at the end of the chunk before it, so every chunk but the first starts where its paragraph,
line, sentence or word starts (with its indentation, which code needs).

Each piece of the text is counted once at each level it is cut at and each chunk once more
as a whole, since tokens do not quite add up (tiktoken may merge across a cut); cutting
inside a word searches for the longest prefix that fits with a handful of counts. So the
work is a few times one count of the text, never a count per character."""

from __future__ import annotations

import re
from collections.abc import Callable

Counter = Callable[[str], int]
Part = tuple[str, int]  # a piece of text and its token count

# Where each level may cut: after the match (so the separator ends the piece before).
_CUTS = (
    re.compile(r"\n[^\S\n]*\n(?:[^\S\n]*\n)*"),  # a run of blank lines: paragraphs
    re.compile(r"\n"),  # lines
    re.compile(r"[.!?…]+[)\]\"'»”’]*\s+|[。！？]+\s*"),  # sentences, and CJK ones
    re.compile(r"\s+"),  # words
)
# Inside a word, the search for the longest prefix that fits stops within this fraction of
# it (1/32: a chunk at most ~3% short of the limit, for a few counts fewer per chunk).
_SLACK = 32


def split_chunks(text: str, count: Counter, max_tokens: int) -> list[str]:
    """Consecutive non-empty chunks of text, each with count(chunk) <= max_tokens, that join
    back into text. Raises ValueError when one character alone is over max_tokens (with
    tiktoken a character is at most as many tokens as its UTF-8 bytes, 4: a budget of 4 or
    more is always safe)."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if not text:
        return []
    tokens = count(text)
    if tokens <= max_tokens:
        return [text]
    return [chunk for chunk, _ in _Splitter(count, max_tokens).split(text, 0)]


class _Splitter:
    """One split's counter and budget, passed down the levels."""

    def __init__(self, count: Counter, max_tokens: int) -> None:
        self.count = count
        self.max_tokens = max_tokens

    def split(self, text: str, level: int) -> list[Part]:
        """Chunks of a text known to be over the budget, cut at this level or finer."""
        if level == len(_CUTS):
            return self.hard_split(text)
        pieces = _pieces(text, _CUTS[level])
        if len(pieces) == 1:
            return self.split(text, level + 1)
        parts: list[Part] = []
        for piece in pieces:
            tokens = self.count(piece)
            if tokens <= self.max_tokens:
                parts.append((piece, tokens))
            else:
                parts.extend(self.split(piece, level + 1))
        return self.pack(parts)

    def pack(self, parts: list[Part]) -> list[Part]:
        """Consecutive parts (each within the budget) joined greedily into chunks. A joined
        chunk counts fewer tokens than its parts' sum ("word " + "word" is three tokens
        apart, two together: " word" is one), so the sum is scaled by what the last chunk's
        own count showed; each chunk is then counted, and gives parts back if it is over."""
        chunks: list[Part] = []
        start = 0
        scale = 1.0
        while start < len(parts):
            end, total = start, 0
            while end < len(parts) and (total + parts[end][1]) * scale <= self.max_tokens:
                total += parts[end][1]
                end += 1
            if end == start:
                end, total = start + 1, parts[start][1]
            while end - start > 1:
                chunk = "".join(piece for piece, _ in parts[start:end])
                tokens = self.count(chunk)
                scale = tokens / total
                if tokens <= self.max_tokens:
                    chunks.append((chunk, tokens))
                    break
                # Over: give back as many parts as the overshoot suggests, then count again.
                while end - start > 1 and total * scale > self.max_tokens:
                    end -= 1
                    total -= parts[end][1]
            else:
                chunks.append(parts[start])
            start = end
        return chunks

    def hard_split(self, text: str) -> list[Part]:
        """Cuts anywhere, each chunk the longest prefix that fits (to within 1/_SLACK),
        found by growing a guess and then halving the gap between fits and does-not-fit."""
        chunks: list[Part] = []
        start = 0
        chars_per_token = 1.0  # learnt from each chunk, to guess the next one's length
        learnt = False
        while start < len(text):
            rest = len(text) - start
            fits, fits_tokens, too_long = 0, 0, rest + 1
            guess = max(1, min(rest, int(self.max_tokens * chars_per_token)))
            # A learnt guess is close: step from it by 1/32, doubling the step each time.
            step = max(1, guess // _SLACK) if learnt else guess
            while True:
                tokens = self.count(text[start : start + guess])
                if tokens <= self.max_tokens:
                    fits, fits_tokens = guess, tokens
                else:
                    too_long = guess
                if fits == rest or too_long - fits <= max(1, fits // _SLACK):
                    break
                if too_long > rest:  # every guess so far fits: grow
                    guess, step = min(rest, guess + step), step * 2
                elif fits == 0 and learnt:  # every guess so far is too long: shrink
                    guess, step = max(1, guess - step), step * 2
                else:
                    guess = (fits + too_long) // 2
            if fits == 0:
                raise ValueError(
                    f"one character is over max_tokens={self.max_tokens}: {text[start]!r}"
                )
            chunks.append((text[start : start + fits], fits_tokens))
            chars_per_token, learnt = fits / max(fits_tokens, 1), True
            start += fits
        return chunks


def _pieces(text: str, cut: re.Pattern[str]) -> list[str]:
    """text cut after every match of cut; the pieces join back into text."""
    ends = [match.end() for match in cut.finditer(text) if 0 < match.end() < len(text)]
    starts = [0, *ends]
    return [text[a:b] for a, b in zip(starts, [*ends, len(text)], strict=True)]
