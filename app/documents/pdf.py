"""A PDF's text layer with pypdf, or word that it has none (a scan) for the caller to render.

pypdf is pure Python and everything here is made per call, so any number of threads may
read PDFs at once."""

from __future__ import annotations

import io
import re

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError, LimitReachedError

from app.documents.normalise import normalise
from app.domain.documents import DocumentRefused, Extracted, Refusal, Scanned

# Under this many characters (not counting whitespace) a page on average, a PDF is taken to
# have no real text layer: a scan carries at most a page number or a scanner's stamp, while
# the sparsest real page (a slide title, a form's labels) has more.
MIN_CHARS_PER_PAGE = 20

# Content-stream operators that put a picture on a page ("Do" draws an XObject, an image or
# a form holding one; pypdf reads an inline image as one "INLINE IMAGE" operation) ...
_PICTURES = frozenset({b"Do", b"INLINE IMAGE"})
# ... and those that paint anything else: paths, shadings, and text shown in glyphs that
# have no Unicode mapping, which read as nothing but look like text on the page.
_PAINTS = _PICTURES | frozenset(
    {b"f", b"F", b"f*", b"S", b"s", b"B", b"B*", b"b", b"b*", b"sh", b"Tj", b"TJ", b"'", b'"'}
)
# pypdf puts a space for every gap wider than a space, so a justified line reads
# "выпей  чаю.  The  quick": runs of spaces between words become one (indentation stays).
_GAPS = re.compile(r"(?<=\S) {2,}(?=\S)")
_AES = "encrypted with AES, which pypdf reads only with the cryptography package"


def read_pdf(data: bytes, max_pages: int) -> Extracted | Scanned:
    """The text of every page, pages apart by a blank line; Scanned when there is next to
    none but the pages hold pictures (or, with no text at all, anything drawn). Raises
    DocumentRefused: ENCRYPTED, BROKEN, TOO_LARGE (over max_pages), EMPTY."""
    reader, pages = _open(data)
    if pages == 0:
        raise DocumentRefused(Refusal.EMPTY, "a PDF with no pages")
    if pages > max_pages:
        raise DocumentRefused(Refusal.TOO_LARGE, f"{pages} pages, over the limit of {max_pages}")
    texts: list[str] = []
    failed = 0
    for page in reader.pages:
        try:
            texts.append(page.extract_text())
        except DependencyError:
            raise DocumentRefused(Refusal.ENCRYPTED, _AES) from None
        except Exception:  # noqa: BLE001 - a damaged page can raise anything from deep in pypdf
            # One unreadable page costs its own text only; the others still read.
            texts.append("")
            failed += 1
    if failed == pages:
        raise DocumentRefused(Refusal.BROKEN, "no page of the PDF could be read")
    text = normalise(_GAPS.sub(" ", "\n\n".join(texts)))
    chars = len("".join(text.split()))  # not counting whitespace
    if chars >= MIN_CHARS_PER_PAGE * pages:
        return Extracted(text=text, kind="pdf", pages=pages, encoding=None)
    drawn = _drawn(reader)
    if drawn & _PICTURES or (chars == 0 and drawn):
        return Scanned(pages=pages)
    if chars == 0:
        raise DocumentRefused(Refusal.EMPTY, f"a blank PDF ({pages} pages, nothing on them)")
    # A little text and nothing else on the pages: that little text is the document.
    return Extracted(text=text, kind="pdf", pages=pages, encoding=None)


def _open(data: bytes) -> tuple[PdfReader, int]:
    try:
        reader = PdfReader(io.BytesIO(data))
        # pypdf has already tried the empty password (an owner-only password, which merely
        # restricts printing or copying, opens with it); this says whether it worked.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise DocumentRefused(Refusal.ENCRYPTED, "a PDF that needs a password")
        return reader, len(reader.pages)
    except DocumentRefused:
        raise
    except DependencyError:
        raise DocumentRefused(Refusal.ENCRYPTED, _AES) from None
    except LimitReachedError as exc:
        raise DocumentRefused(Refusal.TOO_LARGE, f"past pypdf's limits: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a broken file can raise anything from pypdf
        detail = f"a PDF that does not parse ({type(exc).__name__})"
        raise DocumentRefused(Refusal.BROKEN, detail) from None


def _drawn(reader: PdfReader) -> frozenset[bytes]:
    """The painting operators the pages use, read in one pass that stops at a picture."""
    drawn: frozenset[bytes] = frozenset()
    for page in reader.pages:
        drawn |= _operators(page) & _PAINTS
        if drawn & _PICTURES:
            break
    return drawn


def _operators(page: PageObject) -> frozenset[bytes]:
    try:
        contents = page.get_contents()
        if contents is None:
            return frozenset()
        return frozenset(operator for _, operator in contents.operations)
    except Exception:  # noqa: BLE001 - a content stream pypdf cannot parse
        # Something is on the page that the text extraction could not read either: take it
        # for a picture, and let the renderer, which is more forgiving, show it to the caller.
        return _PICTURES
