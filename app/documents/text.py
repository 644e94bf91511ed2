"""A plain text file's bytes as text, in the encoding they were written in, or a refusal of
bytes that are not text in any encoding.

Detectors guess badly on short texts: charset-normalizer reads "Привет, мир!" in
Windows-1251 as cp1125 ("╧ЁштхҐ, ьшЁ!") and the same words in KOI8-R as Shift-JIS. So its
candidates are weighed, with the legacy encodings this bot's Russian-speaking users write
in, by how plausible the text each gives is (_plausibility); on a short text the legacy
encodings win ties, on a long one charset-normalizer's statistics do."""

from __future__ import annotations

import codecs
import re
import unicodedata

from charset_normalizer import from_bytes

from app.domain.documents import DocumentRefused, Refusal

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16's: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Windows' Cyrillic, Unix's Cyrillic, DOS's Cyrillic, Windows' Western European: the order
# in which a short text's ties go.
_LEGACY = ("cp1251", "koi8-r", "cp866", "cp1252")
# Past this many non-ASCII bytes charset-normalizer's statistics have enough to go on.
_LONG = 256
# How much of each candidate's text is weighed.
_SAMPLE = 16 * 1024
# Characters no text has: C0 controls but the whitespace ones and ESC (terminal colours),
# DEL, C1 controls, and U+FFFD, the mark of an earlier failed decoding.
_ODD = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffd]")
# Text is allowed one odd character in this many (a NUL or two in a log a crash cut short).
_ODD_SHARE = 100
# UTF-8 is allowed one undecodable byte in this many characters.
_STRAY = 1000
# Under this plausibility no candidate is taken: random high bytes decode to characters in
# every single-byte encoding, but never to words.
_PLAUSIBLE = 0.5
_ASCII = bytes(range(0x80))
_WORD = re.compile(r"[^\W\d_]+")
# Symbols that mis-decoded bytes turn into (box drawing "╧", "³", private use ...).
_ODD_SYMBOLS = frozenset({"So", "Sk", "No", "Co", "Cn", "Cs", "Cc"})


def decode_text(data: bytes) -> tuple[str, str]:
    """The text and its encoding's name as Python spells it ("utf-8", "cp1251", "koi8-r").
    Raises DocumentRefused(UNSUPPORTED) for bytes that are not text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = _strict(data[len(bom) :], encoding)
            if text is not None and _is_text(text):
                return text, encoding
            break
    text = _strict(data, "utf-8")
    if text is not None and _is_text(text):
        return text, "utf-8"
    # UTF-8 with a stray bad byte or two (a file cut mid-character, one pasted byte): still
    # UTF-8, or every legacy encoding would garble all of its other letters.
    text = data.decode("utf-8", errors="replace")
    if text.count("\ufffd") * _STRAY <= len(text) and _is_text(text):
        return text, "utf-8"
    for encoding in _utf16_without_bom(data):
        text = _strict(data, encoding)
        if text is not None and _is_text(text):
            return text, encoding
    for encoding in _candidates(data):
        text = _strict(data, encoding)
        if text is not None and _is_text(text):
            return text, encoding
    raise DocumentRefused(Refusal.UNSUPPORTED, "binary data, not text in any known encoding")


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _is_text(text: str) -> bool:
    return len(_ODD.findall(text)) * _ODD_SHARE <= len(text)


def _utf16_without_bom(data: bytes) -> list[str]:
    """UTF-16 without a BOM, told by its high bytes: in Latin, Cyrillic or Greek text nearly
    all of them are one or two values (0x00 and the script's 0x04 or 0x03), while the low
    bytes vary. (UTF-8 is tried first: its Cyrillic alternates 0xD0/0xD1 just as regularly.)"""
    sample = data[:_SAMPLE]
    if len(sample) < 2 or len(data) % 2:
        return []
    even, odd = sample[0::2], sample[1::2]
    if _narrow(odd) and not _narrow(even):
        return ["utf-16-le"]
    if _narrow(even) and not _narrow(odd):
        return ["utf-16-be"]
    return []


def _narrow(half: bytes) -> bool:
    """Whether two byte values make up nine tenths of these bytes."""
    top = sorted((half.count(value) for value in set(half)), reverse=True)[:2]
    return sum(top) * 10 >= len(half) * 9


def _candidates(data: bytes) -> list[str]:
    """The encodings worth decoding the whole file with, most plausible first."""
    found = [codecs.lookup(match.encoding).name for match in from_bytes(data)]
    non_ascii = len(data[:_SAMPLE].translate(None, _ASCII))
    ordered = [*found, *_LEGACY] if non_ascii >= _LONG else [*_LEGACY, *found]
    unique = list(dict.fromkeys(codecs.lookup(name).name for name in ordered))
    scores = {name: _plausibility(data[:_SAMPLE], name) for name in unique}
    # sorted() is stable: among equal scores the order above stands.
    return sorted((n for n in unique if scores[n] >= _PLAUSIBLE), key=lambda n: -scores[n])


def _plausibility(sample: bytes, encoding: str) -> float:
    """The share of the letters outside ASCII that stand in words a language could have:
    one script to a word, cased as words are ("Привет", "ПРИВЕТ", not "рПЙБЕФ"), a Latin
    word not all accented letters ("Grüße", not "Ïðèâåò"); stray symbols count against it.
    ASCII-only words read the same in every candidate and say nothing. -1 when the sample
    does not decode at all."""
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
    except (UnicodeDecodeError, LookupError):
        return -1.0
    good = bad = 0
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        if _plausible_word(word):
            good += len(word)
        else:
            bad += len(word)
    bad += sum(
        1 for char in text if ord(char) >= 0x80 and unicodedata.category(char) in _ODD_SYMBOLS
    )
    return good / (good + bad) if good + bad else 1.0


def _plausible_word(word: str) -> bool:
    if len({_script(char) for char in word}) > 1:
        return False
    if any(char.isupper() for char in word[1:]) and not word.isupper():
        return False
    # A Cyrillic word read as Windows-1252 is Latin letters with accents only ("Ïðèâåò").
    return not (_script(word[0]) == "latin" and len(word) > 2 and not _has_ascii(word))


def _has_ascii(word: str) -> bool:
    return any(char.isascii() for char in word)


def _script(char: str) -> str | int:
    """A letter's script, roughly: the few that matter here by name, the rest by block."""
    code = ord(char)
    if code < 0x250:
        return "latin"
    if 0x370 <= code < 0x400:
        return "greek"
    if 0x400 <= code < 0x530:
        return "cyrillic"
    if 0x3040 <= code < 0x3100 or 0x3400 <= code < 0xA000 or 0xAC00 <= code < 0xD7B0:
        return "cjk"
    return code >> 7
