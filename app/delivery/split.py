"""Cutting text into pieces Telegram accepts, at the most natural boundary that fits."""

from __future__ import annotations

# Telegram's limit for a message's text, in UTF-16 code units (how Telegram counts).
MESSAGE_LIMIT = 4096

_BOUNDARIES = ("\n\n", "\n", ". ", " ")


def telegram_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split into parts of at most `limit` UTF-16 units: at a paragraph, a line, a sentence or
    a word when one lies in the second half of the part, else hard at the limit."""
    parts: list[str] = []
    rest = text
    while telegram_length(rest) > limit:
        head = _prefix_within(rest, limit)
        cut = len(head)
        for boundary in _BOUNDARIES:
            at = head.rfind(boundary)
            if at >= len(head) // 2:
                cut = at + len(boundary)
                break
        part, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n")
        if part:
            parts.append(part)
    if rest.strip():
        parts.append(rest)
    return parts


def _prefix_within(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-16 units, never halving a surrogate pair."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text
