"""A file a user sent, as text or as a refusal with its reason: the one entry point of the
document readers.

The bytes decide what a file is; its name and MIME type only say which refusal fits bytes
that tell nothing (app/documents/claims.py), and that a file claiming to be a PDF or a Word
document which is not one is broken. Nothing here keeps state between calls, so the caller
may run it in a thread (asyncio.to_thread): a 500-page PDF is seconds of CPU work."""

from __future__ import annotations

from app.documents.claims import claim_of
from app.documents.normalise import normalise
from app.documents.pdf import read_pdf
from app.documents.sniff import identify
from app.documents.text import decode_text
from app.documents.word import read_docx
from app.domain.documents import DocumentRefused, Extracted, Refusal, Scanned

__all__ = ["DocumentRefused", "Extracted", "Refusal", "Scanned", "extract"]


def extract(
    data: bytes,
    file_name: str,
    mime_type: str | None = None,
    *,
    max_bytes: int | None = None,
    max_pages: int = 500,
) -> Extracted | Scanned:
    """The document's text (normalised: app/documents/normalise.py), or Scanned for a PDF
    without a text layer. Raises DocumentRefused, whose reason says why there is no text."""
    if max_bytes is not None and len(data) > max_bytes:
        raise DocumentRefused(Refusal.TOO_LARGE, f"{len(data)} bytes, over {max_bytes}")
    if not data:
        raise DocumentRefused(Refusal.EMPTY, "an empty file")
    claim = claim_of(file_name, mime_type)
    kind = identify(data, claim)
    if kind == "pdf":
        return read_pdf(data, max_pages)
    if kind == "docx":
        return read_docx(data)
    if claim in ("pdf", "docx"):
        raise DocumentRefused(Refusal.BROKEN, f"named as {claim} but not one")
    try:
        text, encoding = decode_text(data)
    except DocumentRefused as refused:
        # Binary bytes with no magic we know: an .exe or .rar name is the best reason left.
        if refused.reason is Refusal.UNSUPPORTED and isinstance(claim, Refusal):
            raise DocumentRefused(claim, refused.detail) from None
        raise
    text = normalise(text)
    if not text.strip():
        raise DocumentRefused(Refusal.EMPTY, "a text file of whitespace only")
    return Extracted(text=text, kind="text", pages=None, encoding=encoding)
