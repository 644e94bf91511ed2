"""Documents into text: real files of every kind a user may send (the PDFs are committed
fixtures, tests/data/documents/make_fixtures.py; the rest is made here), page images of a
scan, and token-bounded chunks that join back into the text."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.documents.chunks import split_chunks
from app.documents.extract import DocumentRefused, Extracted, Refusal, Scanned, extract
from app.documents.normalise import normalise
from app.documents.render import render_pages
from app.memory.tokens import load_counter

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "documents"
PANGRAM = (
    "Привет, мир! Это проверка кодировки. Съешь же ещё этих мягких французских булок, да выпей чаю."
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def extracted(data: bytes, file_name: str, mime_type: str | None = None) -> Extracted:
    result = extract(data, file_name, mime_type)
    assert isinstance(result, Extracted)
    return result


def refusal(data: bytes, file_name: str, mime_type: str | None = None, **limits: int) -> Refusal:
    with pytest.raises(DocumentRefused) as refused:
        extract(data, file_name, mime_type, **limits)
    return refused.value.reason


def word_document() -> bytes:
    document = docx.Document()
    document.add_heading("Отчёт за квартал", level=1)
    document.add_paragraph("Первый абзац: выручка выросла.")
    table = document.add_table(rows=2, cols=3)
    rows = [("Месяц", "Выручка", "Расход"), ("Январь", "10", "7")]
    for row, cells in zip(table.rows, rows, strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_paragraph("После таблицы: итоги.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# PDF


def test_a_pdf_with_cyrillic_text_reads_as_that_text() -> None:
    result = extracted(fixture("cyrillic.pdf"), "отчёт.pdf", "application/pdf")
    assert result.kind == "pdf"
    assert result.pages == 1
    assert result.encoding is None
    assert "Привет, мир! Это проверка кодировки." in result.text
    assert "Съешь же ещё этих мягких французских булок, да выпей чаю." in result.text


def test_the_pages_of_a_pdf_are_apart_by_a_blank_line() -> None:
    result = extracted(fixture("two_pages.pdf"), "two.pdf")
    assert result.pages == 2
    first, second = result.text.split("\n\n")
    assert first == "Page 1: the first page of a plain English document."
    assert second == "Page 2: the second page of a plain English document."


def test_a_justified_pdf_reads_with_single_spaces_between_words() -> None:
    text = extracted(fixture("justified.pdf"), "book.pdf").text
    assert "  " not in text
    assert " ".join(text.split()) == " ".join(
        ["The quick brown fox jumps over the lazy dog, again and again."] * 6
    )


def test_a_pdf_of_pictures_without_a_text_layer_is_scanned() -> None:
    assert extract(fixture("scanned.pdf"), "scan.pdf") == Scanned(pages=1)


def test_a_pdf_with_nothing_on_its_pages_is_empty() -> None:
    assert refusal(fixture("blank.pdf"), "blank.pdf") is Refusal.EMPTY


def test_a_pdf_that_needs_a_password_is_refused_as_encrypted() -> None:
    assert refusal(fixture("password.pdf"), "secret.pdf") is Refusal.ENCRYPTED


def test_a_pdf_with_only_an_owner_password_opens_with_the_empty_one() -> None:
    result = extracted(fixture("owner_password.pdf"), "restricted.pdf")
    assert "Page 2: the second page" in result.text


def test_a_truncated_pdf_is_broken() -> None:
    assert refusal(fixture("truncated.pdf"), "cut.pdf") is Refusal.BROKEN


def test_garbage_after_a_pdf_header_is_broken() -> None:
    assert refusal(b"%PDF-1.7\n" + bytes(range(256)) * 8, "x.pdf") is Refusal.BROKEN


def test_a_pdf_over_the_page_limit_is_too_large() -> None:
    with pytest.raises(DocumentRefused) as refused:
        extract(fixture("two_pages.pdf"), "two.pdf", max_pages=1)
    assert refused.value.reason is Refusal.TOO_LARGE
    assert "2 pages" in refused.value.detail


def test_a_pdf_is_known_by_its_bytes_whatever_its_name() -> None:
    assert extracted(fixture("two_pages.pdf"), "notes.txt").kind == "pdf"


def test_a_note_that_mentions_the_pdf_header_is_text() -> None:
    note = 'A PDF starts with "%PDF-1.7" and ends with a trailer.'
    assert extracted(note.encode(), "notes.md").text == note


def test_text_named_as_a_pdf_is_broken() -> None:
    assert refusal(b"<html>404 Not Found</html>", "report.pdf") is Refusal.BROKEN


# Word


def test_a_word_document_reads_headings_paragraphs_and_tables_in_order() -> None:
    result = extracted(word_document(), "отчёт.docx")
    assert result.kind == "docx"
    assert result.pages is None
    assert result.text.split("\n\n") == [
        "# Отчёт за квартал",
        "Первый абзац: выручка выросла.",
        "Месяц | Выручка | Расход\nЯнварь | 10 | 7",
        "После таблицы: итоги.",
    ]


def test_a_merged_cell_reads_once_and_a_nested_table_in_brackets() -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Итого"
    table.cell(0, 2).text = "17"
    table.cell(1, 0).text = "Детали"
    nested = table.cell(1, 1).add_table(rows=2, cols=2)
    for (row, column), text in {(0, 0): "a", (0, 1): "b", (1, 0): "c", (1, 1): "d"}.items():
        nested.cell(row, column).text = text
    table.cell(1, 2).text = "—"
    out = io.BytesIO()
    document.save(out)
    assert extracted(out.getvalue(), "t.docx").text == "Итого | 17\nДетали | [a | b / c | d] | —"


def test_a_word_document_is_known_by_its_contents_not_its_name() -> None:
    assert extracted(word_document(), "attachment.bin").kind == "docx"


def test_a_word_document_cut_short_is_broken() -> None:
    data = word_document()
    assert refusal(data[: len(data) // 2], "cut.docx") is Refusal.BROKEN


def test_a_word_document_with_no_text_is_empty() -> None:
    out = io.BytesIO()
    docx.Document().save(out)
    assert refusal(out.getvalue(), "empty.docx") is Refusal.EMPTY


def test_a_spreadsheet_is_unsupported() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    assert refusal(out.getvalue(), "table.xlsx") is Refusal.UNSUPPORTED


# Plain text


def test_windows_1251_russian_reads_as_russian() -> None:
    result = extracted(PANGRAM.encode("cp1251"), "заметка.txt")
    assert result.text == PANGRAM
    assert result.encoding == "cp1251"


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp1251", "Привет, мир!"),
        ("koi8-r", "Привет, мир!"),
        ("cp866", "Ошибка: файл не найден"),
        ("cp1252", "Grüße aus München"),
    ],
)
def test_a_short_text_in_a_legacy_encoding_is_not_misread(encoding: str, text: str) -> None:
    # charset-normalizer alone reads the first as cp1125 and the second as Shift-JIS.
    result = extracted(text.encode(encoding), "short.txt")
    assert (result.text, result.encoding) == (text, encoding)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (("\ufeff" + PANGRAM).encode("utf-8"), "utf-8"),
        (PANGRAM.encode("utf-16"), "utf-16-le"),
        (("\ufeff" + PANGRAM).encode("utf-16-be"), "utf-16-be"),
        (PANGRAM.encode("utf-16-le"), "utf-16-le"),
    ],
    ids=["utf-8 with BOM", "utf-16 with BOM", "utf-16-be with BOM", "utf-16-le without BOM"],
)
def test_unicode_with_or_without_a_bom_reads_without_the_bom(data: bytes, encoding: str) -> None:
    result = extracted(data, "unicode.txt")
    assert (result.text, result.encoding) == (PANGRAM, encoding)


@pytest.mark.parametrize(
    ("file_name", "content"),
    [
        ("data.json", json.dumps({"имя": "Анна", "items": [1, 2, 3]}, ensure_ascii=False)),
        ("table.csv", "name,amount\nАнна,10\nBoris,20"),
        ("README.md", "# Title\n\n- one\n- two\n\n```python\nprint('hi')\n```"),
        ("script.py", "def f(x):\n    return {'a': [x, 2]}\n\n\nprint(f(1))"),
        ("server.log", "2026-12-01 10:00:00 INFO started\n2026-12-01 10:00:01 ERROR failed"),
        ("page.html", "<!doctype html>\n<html><body><p>Привет</p></body></html>"),
        ("config.yaml", "server:\n  port: 8080\n  hosts:\n    - a\n    - b"),
    ],
)
def test_text_formats_read_as_their_text(file_name: str, content: str) -> None:
    result = extracted(content.encode("utf-8"), file_name)
    assert (result.kind, result.text, result.encoding) == ("text", content, "utf-8")


def test_text_is_normalised() -> None:
    # One NUL in a hundred characters is a text with a stray NUL (a log a crash cut short).
    tail = "the rest of the log " * 5
    raw = "a  \r\nb\t\r\n\r\n\r\n\r\n\r\nc\x00d\x1b[31m red\x1b[0m \r\n" + tail
    assert extracted(raw.encode(), "x.log").text == "a\nb\n\n\ncd red\n" + tail.rstrip()


def test_normalise_keeps_the_first_lines_indentation() -> None:
    assert normalise("\n\n    indented\n") == "    indented"


def test_utf8_with_a_stray_bad_byte_is_still_utf8() -> None:
    data = (PANGRAM + "\n").encode() * 20 + b"\xff" + "конец".encode()
    result = extracted(data, "cut.txt")
    assert result.encoding == "utf-8"
    assert result.text.startswith(PANGRAM)
    assert result.text.endswith("\ufffdконец")


def test_high_bytes_that_make_no_words_are_unsupported() -> None:
    # Every byte is a letter or a symbol in KOI8-R or Windows-1251, but no words come of it.
    data = bytes((n * 37 + n // 7) % 128 + 128 for n in range(4096))
    assert refusal(data, "noise.txt") is Refusal.UNSUPPORTED


def test_binary_bytes_without_a_known_format_are_unsupported() -> None:
    data = bytes(range(256)) * 16
    assert refusal(data, "data.txt") is Refusal.UNSUPPORTED


def test_unknown_binary_bytes_named_as_an_archive_are_an_archive() -> None:
    assert refusal(bytes(range(256)) * 16, "backup.arj") is Refusal.ARCHIVE


# What is refused


def elf() -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + bytes(8) + struct.pack("<HHI", 2, 0x3E, 1) + bytes(40)


def portable_executable() -> bytes:
    header = bytearray(128)
    header[:2] = b"MZ"
    header[0x3C:0x40] = struct.pack("<I", 0x80)
    header[0x40:0x67] = b"This program cannot be run in DOS mode."
    return bytes(header) + b"PE\x00\x00" + bytes(64)


@pytest.mark.parametrize("data", [elf(), portable_executable()], ids=["ELF", "PE"])
def test_an_executable_renamed_to_txt_is_refused(data: bytes) -> None:
    assert refusal(data, "readme.txt", "text/plain") is Refusal.EXECUTABLE


def test_a_text_that_starts_with_mz_is_text() -> None:
    assert extracted(b"MZ is how a DOS executable starts.", "note.txt").text.startswith("MZ")


def test_a_zip_archive_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    assert refusal(out.getvalue(), "notes.zip") is Refusal.ARCHIVE


def test_a_zip_named_as_a_word_document_is_broken() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    assert refusal(out.getvalue(), "report.docx") is Refusal.BROKEN


def test_a_gzip_file_is_an_archive() -> None:
    assert refusal(b"\x1f\x8b\x08\x00" + bytes(20), "logs.txt") is Refusal.ARCHIVE


def test_an_image_is_unsupported() -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, format="PNG")
    assert refusal(png.getvalue(), "photo.txt") is Refusal.UNSUPPORTED


def test_an_empty_file_is_empty() -> None:
    assert refusal(b"", "empty.txt") is Refusal.EMPTY


def test_a_file_of_blank_lines_is_empty() -> None:
    assert refusal(b" \n\t\n\r\n", "blank.txt") is Refusal.EMPTY


def test_a_file_over_the_byte_limit_is_too_large() -> None:
    assert refusal(b"x" * 101, "big.txt", max_bytes=100) is Refusal.TOO_LARGE


def test_a_file_at_the_byte_limit_is_read() -> None:
    result = extract(b"x" * 100, "big.txt", max_bytes=100)
    assert result == Extracted("x" * 100, "text", None, "utf-8")


# Page images


def test_a_scanned_page_renders_as_a_png_within_the_size_limit() -> None:
    (page,) = render_pages(fixture("scanned.pdf"), 5, max_side=512)
    image = Image.open(io.BytesIO(page.png))
    assert image.format == "PNG"
    assert image.size == (page.width, page.height)
    assert max(image.size) == 512


def test_pages_render_at_150_dpi_when_that_fits() -> None:
    pages = render_pages(fixture("two_pages.pdf"), 2)
    # A4 is 8.27 x 11.69 inches.
    assert [(page.width, page.height) for page in pages] == [(1241, 1754)] * 2


def test_pages_render_and_documents_read_in_many_threads_at_once() -> None:
    # pdfium crashes the process when two threads call it at once; PDFIUM_LOCK prevents it.
    scan, pdf, word = fixture("scanned.pdf"), fixture("two_pages.pdf"), word_document()
    with ThreadPoolExecutor(max_workers=8) as pool:
        renders = [pool.submit(render_pages, scan, 1, max_side=300) for _ in range(16)]
        reads = [pool.submit(extract, data, "file") for data in [pdf, word] * 8]
        pngs = {future.result()[0].png for future in renders}
        texts = {future.result() for future in reads}
    assert len(pngs) == 1
    assert len(texts) == 2


@pytest.mark.parametrize(
    ("name", "reason"),
    [("truncated.pdf", Refusal.BROKEN), ("password.pdf", Refusal.ENCRYPTED)],
)
def test_rendering_a_pdf_pdfium_cannot_open_is_refused(name: str, reason: Refusal) -> None:
    with pytest.raises(DocumentRefused) as refused:
        render_pages(fixture(name), 1)
    assert refused.value.reason is reason


# Chunks

COUNT = load_counter("gpt-4o-mini").text
# Texts of separators, words, random characters and runs long enough to cut inside.
TEXTS = st.lists(
    st.one_of(
        st.sampled_from(["\n", "\n\n", "\n  \n", " ", ". ", "! ", "。", "\t", "\r\n"]),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30),
        st.sampled_from(["word", "слово", "x" * 200, "🙂", "日本語", "ab1" * 50]),
    ),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, max_tokens=st.integers(4, 60))
def test_chunks_fit_are_not_empty_and_join_back_into_the_text(text: str, max_tokens: int) -> None:
    chunks = split_chunks(text, COUNT, max_tokens)
    assert "".join(chunks) == text
    assert all(chunks)
    assert all(COUNT(chunk) <= max_tokens for chunk in chunks)


def test_a_text_within_the_budget_is_one_chunk() -> None:
    assert split_chunks("Короткий текст.", COUNT, 100) == ["Короткий текст."]


def test_an_empty_text_has_no_chunks() -> None:
    assert split_chunks("", COUNT, 100) == []


def test_chunks_are_cut_at_paragraphs_first() -> None:
    paragraphs = [f"Paragraph {n}. " + "Some words here. " * 5 for n in range(6)]
    chunks = split_chunks("\n\n".join(paragraphs), COUNT, 60)
    assert all(chunk.endswith("\n\n") for chunk in chunks[:-1])
    assert all(chunk.startswith("Paragraph") for chunk in chunks)


def test_a_word_longer_than_the_budget_is_cut_inside() -> None:
    word = "ab1" * 7000
    chunks = split_chunks(word, COUNT, 100)
    assert "".join(chunks) == word
    assert all(COUNT(chunk) <= 100 for chunk in chunks)
    # Cut close to the budget, not into crumbs: within 1/32 of it but for the last chunk.
    assert all(COUNT(chunk) >= 90 for chunk in chunks[:-1])


def test_a_character_over_the_budget_is_an_error() -> None:
    assert COUNT("𓀀") == 4  # an Egyptian hieroglyph: four bytes, four tokens
    with pytest.raises(ValueError, match="one character"):
        split_chunks("𓀀𓀀𓀀", COUNT, 3)
