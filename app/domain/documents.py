"""A document a user sent, as text or as a refusal: what app/documents hands the services."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Refusal(enum.StrEnum):
    """Why a file gives no text; the caller words the answer to the user from it."""

    ARCHIVE = "archive"  # zip, rar, 7z, tar, gz ... (a .docx is a zip, but not refused)
    EXECUTABLE = "executable"  # ELF, PE, Mach-O, Java, Android, WebAssembly, .msi ...
    ENCRYPTED = "encrypted"  # a PDF that does not open without a password
    BROKEN = "broken"  # claims a format it then does not parse as
    UNSUPPORTED = "unsupported"  # images, audio, video, spreadsheets, any binary we do not read
    EMPTY = "empty"  # parsed, and there is no text in it (nor anything drawn, for a PDF)
    TOO_LARGE = "too_large"  # over the byte limit, the page limit or the unpacked-size limit


class DocumentRefused(Exception):
    """A file that gives no text, with the reason and a detail for the logs (never file text)."""

    def __init__(self, reason: Refusal, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Extracted:
    """A document's text, normalised (app/documents/normalise.py says exactly how)."""

    text: str
    kind: str  # "pdf", "docx", "text"
    pages: int | None  # a PDF's page count; None for other kinds
    encoding: str | None  # a text file's encoding as detected ("utf-8", "cp1251" ...)


@dataclass(frozen=True, slots=True)
class Scanned:
    """A PDF with no text layer: the caller may render its first pages for a vision model."""

    pages: int


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """One PDF page as a PNG image, in memory."""

    png: bytes
    width: int
    height: int
