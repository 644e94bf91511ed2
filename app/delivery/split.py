"""Cutting text into pieces Telegram accepts, at the most natural boundary that fits."""

from __future__ import annotations

import bisect
import re
import unicodedata

from aiogram.types import MessageEntity

from app.delivery.render import Rendered, Span

# Telegram's limit for a message's text, in UTF-16 code units (how Telegram counts).
MESSAGE_LIMIT = 4096


def telegram_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# Best first: a paragraph, a line, any line break, a space. A break before an unindented
# line ranks above one before an indented line, which only matters inside code: Telegram
# trims the spaces a message starts with, so a code part that starts at an indented line
# loses that line's indentation.
_RENDERED_BOUNDARIES = (
    re.compile(r"\n\n(?=\S)"),
    re.compile(r"\n(?=\S)"),
    re.compile(r"\n\n"),
    re.compile(r"\n"),
    re.compile(r" "),
)
_CUT_WHITESPACE = " \n"


def split_rendered(rendered: Rendered, limit: int = MESSAGE_LIMIT) -> list[Rendered]:
    """Split formatted text into messages of at most `limit` UTF-16 units each.

    Cuts at a paragraph, then a line, then a word (in the second half of a part when one
    lies there), never inside a code block that fits in one message; a longer code block
    is cut between lines into several `pre` blocks. Entities are clipped to each part and
    re-based; one crossing a cut becomes one entity per part.
    """
    text = rendered.text
    if not text.strip():
        return []
    if telegram_length(text) <= limit:
        return [rendered]
    units = _Units(text)
    spans = [_char_span(units, entity) for entity in rendered.entities]
    blocks = [(start, end) for kind, start, end, _ in spans if kind == "pre"]
    whole = [(s, e) for s, e in blocks if units.between(s, e) <= limit]
    parts: list[Rendered] = []
    start = 0
    while units.between(start, len(text)) > limit:
        window = units.index_within(units.unit(start) + limit)
        cut = _cut(text, start, window, whole)
        parts.append(_part(text, start, _rstrip(text, start, cut), spans, units))
        start = _skip(text, cut)
    parts.append(_part(text, start, _rstrip(text, start, len(text)), spans, units))
    return [part for part in parts if part.text]


class _Units:
    """Converts between str indices and UTF-16 offsets of one text."""

    def __init__(self, text: str) -> None:
        self._offsets: list[int] | None = None
        if not text.isascii():
            offsets = [0] * (len(text) + 1)
            total = 0
            for index, char in enumerate(text):
                offsets[index] = total
                total += 2 if ord(char) > 0xFFFF else 1
            offsets[len(text)] = total
            self._offsets = offsets

    def unit(self, index: int) -> int:
        return index if self._offsets is None else self._offsets[index]

    def between(self, start: int, end: int) -> int:
        return self.unit(end) - self.unit(start)

    def index_within(self, unit: int) -> int:
        """The largest index whose offset is at most `unit`."""
        if self._offsets is None:
            return unit
        return bisect.bisect_right(self._offsets, unit) - 1


def _char_span(units: _Units, entity: MessageEntity) -> Span:
    start = units.index_within(entity.offset)
    end = units.index_within(entity.offset + entity.length)
    arg = entity.url if entity.type == "text_link" else entity.language
    return Span(entity.type, start, end, arg)


def _cut(text: str, start: int, window: int, whole: list[tuple[int, int]]) -> int:
    """Where the part beginning at `start` ends: an index in (start, window]."""

    def allowed(at: int) -> bool:
        return at > start and not any(s < at < e for s, e in whole)

    for low in (start + (window - start) // 2, start + 1):
        for boundary in _RENDERED_BOUNDARIES:
            for match in _reversed_matches(boundary, text, low, window):
                if allowed(match):
                    return match
    at = _grapheme_start(text, start, window)
    for s, e in whole:
        if s < at < e and s > start:
            return s
    return at


def _reversed_matches(pattern: re.Pattern[str], text: str, low: int, high: int) -> list[int]:
    # A boundary at `high` itself is fine: the part ends there, the whitespace is dropped.
    found = pattern.finditer(text, low, min(high + 2, len(text)))
    return [match.start() for match in found if match.start() <= high][::-1]


def _grapheme_start(text: str, start: int, at: int) -> int:
    """Move a hard cut back so that no emoji sequence or accented letter is torn apart."""
    while at > start + 1 and _joins_previous(text, at):
        at -= 1
    return at


def _joins_previous(text: str, at: int) -> bool:
    char, before = text[at], text[at - 1]
    if before == "\u200d" or char in "\u200d\ufe0e\ufe0f\u20e3":
        return True
    code = ord(char)
    if 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:  # skin tones, tag letters
        return True
    if 0x1F1E6 <= code <= 0x1F1FF:  # a flag is a pair of regional indicators
        run = 0
        while at - run - 1 >= 0 and 0x1F1E6 <= ord(text[at - run - 1]) <= 0x1F1FF:
            run += 1
        return run % 2 == 1
    return unicodedata.combining(char) != 0 or unicodedata.category(char) == "Mc"


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in _CUT_WHITESPACE:
        end -= 1
    return end


def _skip(text: str, at: int) -> int:
    """Where the next part starts: past the whitespace at the cut, which Telegram would trim
    (even a code line's indentation, hence the preference for unindented lines)."""
    while at < len(text) and text[at] in _CUT_WHITESPACE:
        at += 1
    return at


def _part(text: str, start: int, end: int, spans: list[Span], units: _Units) -> Rendered:
    base = units.unit(start)
    clipped = [
        Span(kind, units.unit(max(s, start)) - base, units.unit(min(e, end)) - base, arg)
        for kind, s, e, arg in spans
        if s < end and e > start
    ]
    return Rendered.from_spans(text[start:end], clipped)
