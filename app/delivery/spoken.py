"""What of an answer is read aloud: its text as Telegram shows it, without code blocks and
tables (a voice reading `for i in range(10):` helps no one), and, when long, only its
first part, cut at the end of a sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.delivery.render import render

# About a minute and a half of speech. OpenAI's /audio/speech takes 4,096 characters at
# most; a voice message longer than this is rarely listened to the end.
SPOKEN_CHARS = 1500
_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")


@dataclass(frozen=True, slots=True)
class Speech:
    text: str  # empty when nothing is left to say (an answer that is all code)
    cut: bool  # only the first part of the answer


def speakable(markdown: str, limit: int = SPOKEN_CHARS) -> Speech:
    rendered = render(markdown)
    # Entity offsets count UTF-16 code units (Telegram's), so the cuts are made there.
    units = rendered.text.encode("utf-16-le")
    kept: list[bytes] = []
    position = 0
    for entity in sorted(rendered.entities, key=lambda e: e.offset):
        if entity.type != "pre" or entity.offset < position:
            continue
        kept.append(units[position * 2 : entity.offset * 2])
        position = entity.offset + entity.length
    kept.append(units[position * 2 :])
    text = b"".join(kept).decode("utf-16-le")
    text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
    if len(text) <= limit:
        return Speech(text, cut=False)
    head = text[:limit]
    ends = [match.end() for match in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] > limit // 2:
        head = head[: ends[-1]]
    else:
        head = head.rsplit(" ", 1)[0] if " " in head else head
    return Speech(head.strip(), cut=True)
