"""One shape for every document's text, whatever it came from, before it meets a token count."""

from __future__ import annotations

import re

# Line ends of every system become "\n": Windows' "\r\n" and the old Macs' lone "\r" (a
# progress bar in a log redraws its line with "\r"; as lines they still read in order), and
# the vertical tab, form feed (a page break in a text file) and Unicode's line separators.
_LINE_ENDS = re.compile(r"\r\n?|[\x0b\x0c\x85\u2028\u2029]")
# Terminal colours in logs (ESC [ ... letter): noise to a model, and tokens paid for.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Control characters a model or Telegram has no use for: every C0 one but tab and line
# feed (NUL among them), DEL, and the C1 range a mis-decoded file leaves behind.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Trailing blanks of a line, then more than two blank lines in a row.
_TRAILING = re.compile(r"[^\S\n]+$", re.MULTILINE)
_BLANK_RUN = re.compile(r"\n{4,}")


def normalise(text: str) -> str:
    """The text with "\\n" line ends, no control characters but tabs, no trailing blanks on
    any line, at most two blank lines in a row, and no blank lines at either end (the first
    line's indentation stays: it may be code)."""
    text = _LINE_ENDS.sub("\n", text)
    text = _ANSI.sub("", text)
    text = _CONTROLS.sub("", text)
    text = _TRAILING.sub("", text)
    text = _BLANK_RUN.sub("\n\n\n", text)
    return text.strip("\n")
