"""The first pages of a PDF as PNG images, for a vision model to read a scan (Scanned).

pypdfium2's documentation ("Python API", Incompatibility with Threading): "PDFium is
inherently not thread-safe. It is not allowed to call pdfium functions simultaneously
across different threads, not even with different documents"; it may be used from threads
"if it is ensured that only a single pdfium call can be made at a time (e.g. via mutex)",
else the process crashes or is corrupted. A document of its own per call is therefore not
enough: every pdfium call here, opening and closing included, holds PDFIUM_LOCK, which any
other code of this process that calls pdfium must take as well. The PNG encoding, Pillow's
work, runs outside it, so one thread's encoding does not hold up another's rendering."""

from __future__ import annotations

import io
import threading
from typing import Any

import pypdfium2 as pdfium  # type: ignore[import-untyped]  # it ships no type information
from PIL import Image

from app.domain.documents import DocumentRefused, Refusal, RenderedPage

__all__ = ["PDFIUM_LOCK", "RenderedPage", "render_pages"]

PDFIUM_LOCK = threading.Lock()

# Sharp enough for a model to read body text of a scan; PDF sizes are in points (1/72 in).
DPI = 150
POINTS_PER_INCH = 72


def render_pages(data: bytes, pages: int, *, max_side: int = 2048) -> list[RenderedPage]:
    """The first `pages` pages (fewer if the PDF has fewer), each at DPI or smaller so that
    its longer side is at most max_side pixels. Raises DocumentRefused(BROKEN) for a PDF
    pdfium cannot open, ENCRYPTED for one that needs a password."""
    with PDFIUM_LOCK:
        pdf = _open(data)
    try:
        with PDFIUM_LOCK:
            count = min(pages, len(pdf))
        rendered = []
        for index in range(count):
            with PDFIUM_LOCK:
                image = _render(pdf, index, max_side)
            rendered.append(_png(image))
        return rendered
    finally:
        with PDFIUM_LOCK:
            pdf.close()


def _open(data: bytes) -> Any:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        # pdfium's own reason: FPDF_ERR_PASSWORD for an encrypted file, else a damaged one.
        if getattr(exc, "err_code", None) == pdfium.raw.FPDF_ERR_PASSWORD:
            raise DocumentRefused(Refusal.ENCRYPTED, "a PDF that needs a password") from None
        raise DocumentRefused(Refusal.BROKEN, f"pdfium cannot open it: {exc}") from None


def _render(pdf: Any, index: int, max_side: int) -> Image.Image:
    """One page as a Pillow image with pixels of its own (pdfium's bitmap is closed here)."""
    page = pdf[index]
    try:
        width, height = page.get_size()
        scale = min(DPI / POINTS_PER_INCH, max_side / max(width, height, 1.0))
        bitmap = page.render(scale=scale, rev_byteorder=True)
        try:
            # to_pil() may share pdfium's buffer; copy() owns its pixels past close().
            image: Image.Image = bitmap.to_pil().copy()
        finally:
            bitmap.close()
    except pdfium.PdfiumError as exc:
        raise DocumentRefused(Refusal.BROKEN, f"pdfium cannot render page {index + 1}") from exc
    finally:
        page.close()
    # pdfium rounds the scaled size up: a page right on the limit may come out a pixel over.
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    return image


def _png(image: Image.Image) -> RenderedPage:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return RenderedPage(png=buffer.getvalue(), width=image.width, height=image.height)
