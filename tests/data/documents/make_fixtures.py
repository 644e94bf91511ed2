"""Makes the PDF fixtures of tests/unit/test_documents.py; their bytes are committed, so the
tests need neither fpdf2's fonts nor DejaVu Sans on the machine that runs them.

Run from the repository root:  python tests/data/documents/make_fixtures.py
(needs fpdf2, Pillow, pypdf and /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf, which
Debian's fonts-dejavu-core installs). fpdf2 embeds only the glyphs used (a subset), so the
Cyrillic PDF stays a few KB."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw
from pypdf import PdfReader, PdfWriter

HERE = Path(__file__).resolve().parent
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# A fixed date, so that a regeneration changes no byte it need not change.
WHEN = datetime(2026, 1, 1, tzinfo=UTC)

CYRILLIC = (
    "Привет, мир! Это проверка кодировки.\n"
    "Съешь же ещё этих мягких французских булок, да выпей чаю.\n"
    "Mixed line: English and русский together."
)


def new_pdf() -> FPDF:
    pdf = FPDF()
    pdf.set_creation_date(WHEN)
    return pdf


def cyrillic() -> bytes:
    pdf = new_pdf()
    pdf.add_font("DejaVu", fname=str(FONT))
    pdf.set_font("DejaVu", size=14)
    pdf.add_page()
    pdf.multi_cell(0, 8, CYRILLIC)
    return bytes(pdf.output())


def two_pages() -> bytes:
    pdf = new_pdf()
    pdf.set_font("Helvetica", size=14)
    for number, words in ((1, "first"), (2, "second")):
        pdf.add_page()
        pdf.multi_cell(0, 8, f"Page {number}: the {words} page of a plain English document.")
    return bytes(pdf.output())


def justified() -> bytes:
    """A paragraph set justified (fpdf2's default), as most books and papers are: its lines
    stretch the spaces between words."""
    pdf = new_pdf()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 6, "The quick brown fox jumps over the lazy dog, again and again. " * 6)
    return bytes(pdf.output())


def scanned() -> bytes:
    """A page that is one picture and no text: what a scanner or a phone's camera makes."""
    image = Image.new("L", (420, 594), 255)
    draw = ImageDraw.Draw(image)
    for top in range(60, 540, 24):
        draw.rectangle((40, top, 380 - (top * 7) % 120, top + 8), fill=40)
    draw.text((40, 20), "SCANNED PAGE", fill=0)
    png = io.BytesIO()
    image.save(png, format="PNG", optimize=True)
    pdf = new_pdf()
    pdf.add_page()
    pdf.image(io.BytesIO(png.getvalue()), x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


def blank() -> bytes:
    pdf = new_pdf()
    pdf.add_page()
    return bytes(pdf.output())


def encrypted(data: bytes, user: str, owner: str) -> bytes:
    """(Its bytes differ at every run: pypdf draws the file's ID at random.)"""
    # RC4-128: pypdf reads it without the cryptography package, which AES needs.
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user, owner_password=owner, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def main() -> None:
    pages = two_pages()
    fixtures = {
        "cyrillic.pdf": cyrillic(),
        "two_pages.pdf": pages,
        "justified.pdf": justified(),
        "scanned.pdf": scanned(),
        "blank.pdf": blank(),
        "password.pdf": encrypted(pages, user="secret", owner="secret"),
        # Only an owner password (no printing, say): it opens with the empty one.
        "owner_password.pdf": encrypted(pages, user="", owner="owner"),
        # Cut off past its header and first objects: the cross-reference table and the
        # trailer are gone.
        "truncated.pdf": pages[: len(pages) // 2],
    }
    for name, data in fixtures.items():
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
