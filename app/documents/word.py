"""A Word (.docx) document's text with python-docx: paragraphs and tables in document order,
headings marked as Markdown headings so a model sees the outline."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

from app.documents.normalise import normalise
from app.domain.documents import DocumentRefused, Extracted, Refusal

# python-docx reads every part of the package into memory, so the unpacked size is what a
# document costs: ten times the public Bot API's 20 MB download at XML's usual compression.
UNPACKED_LIMIT = 200 * 1024 * 1024

# Word stores the built-in style names in English whatever the user's language ("heading 1").
_HEADING = re.compile(r"heading (\d)$", re.IGNORECASE)


def read_docx(data: bytes) -> Extracted:
    """Raises DocumentRefused: TOO_LARGE (unpacked), BROKEN, EMPTY."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError):
        raise DocumentRefused(Refusal.BROKEN, "a .docx that is not a readable ZIP") from None
    if unpacked > UNPACKED_LIMIT:
        raise DocumentRefused(Refusal.TOO_LARGE, f"a .docx that unpacks to {unpacked // 2**20} MiB")
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = [_block(block) for block in document.iter_inner_content()]
    except Exception as exc:  # noqa: BLE001 - a damaged package raises anything, lxml's too
        raise DocumentRefused(
            Refusal.BROKEN, f"a .docx that does not parse ({type(exc).__name__})"
        ) from None
    text = normalise("\n\n".join(block for block in blocks if block.strip()))
    if not text:
        raise DocumentRefused(Refusal.EMPTY, "a Word document with no text")
    return Extracted(text=text, kind="docx", pages=None, encoding=None)


def _block(block: Paragraph | Table) -> str:
    if isinstance(block, Table):
        return _table(block)
    level = _heading_level(block)
    return f"{'#' * level} {block.text}" if level and block.text.strip() else block.text


def _heading_level(paragraph: Paragraph) -> int:
    """1 to 9 for Word's built-in "Title" and "Heading N" styles, 0 for any other paragraph."""
    style = paragraph.style
    name = style.name if style is not None else None
    if (name or "").lower() == "title":
        return 1
    match = _HEADING.match(name or "")
    return int(match.group(1)) if match else 0


def _table(table: Table) -> str:
    """A row a line, its cells apart by " | "; a merged cell once, not once per grid column."""
    lines = []
    for row in table.rows:
        cells: list[_Cell] = []
        for cell in row.cells:
            # python-docx returns a horizontally merged cell once for each column it spans.
            if not cells or cell._tc is not cells[-1]._tc:
                cells.append(cell)
        texts = [_cell(cell) for cell in cells]
        if any(texts):
            lines.append(" | ".join(texts))
    return "\n".join(lines)


def _cell(cell: _Cell) -> str:
    """A cell's paragraphs and nested tables on one line, so its row stays one line; a
    nested table in brackets, its rows apart by " / ", so its cells are not the row's."""
    parts = []
    for block in cell.iter_inner_content():
        text = _table(block) if isinstance(block, Table) else block.text
        if isinstance(block, Table) and text:
            text = "[" + text.replace("\n", " / ") + "]"
        if text.strip():
            parts.append(" ".join(text.split()))
    return " ".join(parts)
