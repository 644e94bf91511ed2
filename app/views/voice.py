"""The transcript of a voice message, shown back under a 🎤 before it is answered."""

from __future__ import annotations

from html import escape

# Longer transcripts fold into an expandable quote; past SHOWN_CHARS only their start is
# shown (a message holds 4096 characters), while the whole transcript is what is answered.
FOLD_CHARS = 300
SHOWN_CHARS = 3500


def transcript_quote(text: str) -> str:
    shown = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS].rstrip() + " …"
    fold = " expandable" if len(text) > FOLD_CHARS else ""
    return f"🎤 <blockquote{fold}>{escape(shown)}</blockquote>"
