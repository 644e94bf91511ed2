"""What a file is, from its bytes: the formats we read, and the refusals of the formats we do
not read that announce themselves with magic numbers. Text has no magic: what is left over
goes to app/documents/text.py, which refuses what does not decode as text."""

from __future__ import annotations

import io
import zipfile
from typing import Literal

from app.documents.claims import Claim
from app.domain.documents import DocumentRefused, Refusal

Kind = Literal["pdf", "docx", "text"]

# (offset, magic, refusal, what it is). Order matters only where one magic starts another.
_MAGIC: tuple[tuple[int, bytes, Refusal, str], ...] = (
    (0, b"\x7fELF", Refusal.EXECUTABLE, "an ELF executable"),
    (0, b"\xfe\xed\xfa\xce", Refusal.EXECUTABLE, "a Mach-O executable"),
    (0, b"\xfe\xed\xfa\xcf", Refusal.EXECUTABLE, "a Mach-O executable"),
    (0, b"\xce\xfa\xed\xfe", Refusal.EXECUTABLE, "a Mach-O executable"),
    (0, b"\xcf\xfa\xed\xfe", Refusal.EXECUTABLE, "a Mach-O executable"),
    (0, b"\xca\xfe\xba\xbe", Refusal.EXECUTABLE, "a Mach-O universal binary or Java class"),
    (0, b"\x00asm", Refusal.EXECUTABLE, "a WebAssembly module"),
    (0, b"dex\n", Refusal.EXECUTABLE, "an Android DEX file"),
    (0, b"\x1f\x8b", Refusal.ARCHIVE, "a gzip archive"),
    (0, b"\x1f\x9d", Refusal.ARCHIVE, "a compress (.Z) archive"),
    (0, b"\x1f\xa0", Refusal.ARCHIVE, "a compress (.Z) archive"),
    (0, b"\xfd7zXZ\x00", Refusal.ARCHIVE, "an xz archive"),
    (0, b"\x28\xb5\x2f\xfd", Refusal.ARCHIVE, "a Zstandard archive"),
    (0, b"7z\xbc\xaf\x27\x1c", Refusal.ARCHIVE, "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", Refusal.ARCHIVE, "a RAR archive"),
    (0, b"LZIP", Refusal.ARCHIVE, "an lzip archive"),
    (0, b"MSCF\x00\x00\x00\x00", Refusal.ARCHIVE, "a Windows cabinet"),
    (0, b"\x04\x22\x4d\x18", Refusal.ARCHIVE, "an LZ4 archive"),
    (0, b"!<arch>\n", Refusal.ARCHIVE, "an ar archive (.deb, .a)"),
    (0, b"\xed\xab\xee\xdb", Refusal.ARCHIVE, "an RPM package"),
    (0, b"xar!", Refusal.ARCHIVE, "a xar archive"),
    (257, b"ustar", Refusal.ARCHIVE, "a tar archive"),
    (0x8001, b"CD001", Refusal.ARCHIVE, "an ISO 9660 disk image"),
    (0, b"\x89PNG\r\n\x1a\n", Refusal.UNSUPPORTED, "a PNG image"),
    (0, b"\xff\xd8\xff", Refusal.UNSUPPORTED, "a JPEG image"),
    (0, b"GIF87a", Refusal.UNSUPPORTED, "a GIF image"),
    (0, b"GIF89a", Refusal.UNSUPPORTED, "a GIF image"),
    (0, b"II*\x00", Refusal.UNSUPPORTED, "a TIFF image"),
    (0, b"MM\x00*", Refusal.UNSUPPORTED, "a TIFF image"),
    (0, b"\x00\x00\x01\x00", Refusal.UNSUPPORTED, "an icon"),
    (0, b"8BPS", Refusal.UNSUPPORTED, "a Photoshop image"),
    (8, b"WEBP", Refusal.UNSUPPORTED, "a WebP image"),
    (8, b"WAVE", Refusal.UNSUPPORTED, "a WAV recording"),
    (8, b"AVI ", Refusal.UNSUPPORTED, "an AVI video"),
    (4, b"ftyp", Refusal.UNSUPPORTED, "an MP4/MOV/HEIF/AVIF media file"),
    (0, b"\x1aE\xdf\xa3", Refusal.UNSUPPORTED, "a Matroska/WebM video"),
    (0, b"FLV\x01", Refusal.UNSUPPORTED, "an FLV video"),
    (0, b"OggS", Refusal.UNSUPPORTED, "an Ogg recording"),
    (0, b"fLaC", Refusal.UNSUPPORTED, "a FLAC recording"),
    (0, b"ID3", Refusal.UNSUPPORTED, "an MP3 recording"),
    (0, b"\xff\xfb", Refusal.UNSUPPORTED, "an MP3 recording"),
    (0, b"\xff\xf3", Refusal.UNSUPPORTED, "an MP3 recording"),
    (0, b"\xff\xf2", Refusal.UNSUPPORTED, "an MP3 recording"),
    (0, b"\xff\xf1", Refusal.UNSUPPORTED, "an AAC recording"),
    (0, b"#!AMR", Refusal.UNSUPPORTED, "an AMR recording"),
    (0, b"MThd", Refusal.UNSUPPORTED, "a MIDI file"),
    (0, b"SQLite format 3\x00", Refusal.UNSUPPORTED, "an SQLite database"),
    (0, b"wOFF", Refusal.UNSUPPORTED, "a web font"),
    (0, b"wOF2", Refusal.UNSUPPORTED, "a web font"),
    (0, b"OTTO", Refusal.UNSUPPORTED, "an OpenType font"),
)

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .doc, .xls, .ppt, .msi: Microsoft's compound file
_ZIP = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# PDF readers accept the header anywhere in the first KiB, and junk before it occurs.
_PDF_WINDOW = 1024
# What [Content_Types].xml names a Word document's main part as (python-docx checks the same).
_WORD_MAIN = b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_MACRO_WORD = b"application/vnd.ms-word."  # .docm, .dotm: not the format python-docx opens
_CONTENT_TYPES_LIMIT = 1024 * 1024


def identify(data: bytes, claim: Claim | None) -> Kind:
    """The kind of the bytes: "pdf" or "docx" when they are one, "text" when no magic says
    otherwise (which does not make them text yet). Raises DocumentRefused for what
    announces a format we do not read."""
    if _is_pdf(data):
        return "pdf"
    if data.startswith(_ZIP):
        return _zip_kind(data, claim)
    if data.startswith(_OLE):
        if claim is Refusal.EXECUTABLE:
            raise DocumentRefused(Refusal.EXECUTABLE, "a Windows installer (.msi)")
        raise DocumentRefused(Refusal.UNSUPPORTED, "a legacy Microsoft Office file (.doc/.xls)")
    # A DOS/Windows executable: "MZ" and, unlike a text that starts with those letters, NULs
    # in its 64-byte header.
    if data.startswith(b"MZ") and b"\x00" in data[:64]:
        raise DocumentRefused(Refusal.EXECUTABLE, "a DOS/Windows (PE) executable")
    if data.startswith(b"BZh") and data[4:10] == b"1AY&SY":
        raise DocumentRefused(Refusal.ARCHIVE, "a bzip2 archive")
    for offset, magic, refusal, what in _MAGIC:
        # A magic of plain letters ("ID3", "OggS") could open a note: it counts only when the
        # file's head is binary, as every real file of those formats is.
        if data.startswith(magic, offset) and (not _printable(magic) or _binary(data[:1024])):
            raise DocumentRefused(refusal, what)
    return "text"


def _printable(magic: bytes) -> bool:
    return all(0x20 <= byte < 0x7F or byte == 0x0A for byte in magic)


def _binary(head: bytes) -> bool:
    """Whether bytes hold control characters no text file has (NUL among them)."""
    return any(byte < 0x09 or 0x0E <= byte < 0x1B for byte in head)


def _is_pdf(data: bytes) -> bool:
    """A PDF starts with its header, or has it in its first KiB after junk (an e-mail's or
    an HTTP response's headers) and ends with %%EOF: a note or a script that merely
    mentions "%PDF-" near its top is not one."""
    if data.lstrip(b"\x00\t\n\r\f ").startswith(b"%PDF-"):
        return True
    return b"%PDF-" in data[:_PDF_WINDOW] and b"%%EOF" in data[-_PDF_WINDOW:]


def _zip_kind(data: bytes, claim: Claim | None) -> Kind:
    """A ZIP file is a Word document when its content types say so; or another Office or
    e-book format, an Android or Java program, or just an archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            types = b""
            if "[Content_Types].xml" in names:
                with archive.open("[Content_Types].xml") as part:
                    types = part.read(_CONTENT_TYPES_LIMIT)
            mimetype = b""
            if "mimetype" in names:
                with archive.open("mimetype") as part:
                    mimetype = part.read(100)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError):
        if claim == "docx":
            raise DocumentRefused(Refusal.BROKEN, "a .docx that is not a readable ZIP") from None
        raise DocumentRefused(Refusal.ARCHIVE, "a damaged ZIP archive") from None
    if _WORD_MAIN in types:
        return "docx"
    if _MACRO_WORD in types:
        raise DocumentRefused(Refusal.UNSUPPORTED, "a Word document with macros or a template")
    if "xl/workbook.xml" in names or b"spreadsheetml" in types:
        raise DocumentRefused(Refusal.UNSUPPORTED, "an Excel workbook")
    if "ppt/presentation.xml" in names or b"presentationml" in types:
        raise DocumentRefused(Refusal.UNSUPPORTED, "a PowerPoint presentation")
    if mimetype.startswith(b"application/vnd.oasis.opendocument"):
        raise DocumentRefused(Refusal.UNSUPPORTED, "an OpenDocument file")
    if mimetype.startswith(b"application/epub+zip"):
        raise DocumentRefused(Refusal.UNSUPPORTED, "an EPUB book")
    if "AndroidManifest.xml" in names or "classes.dex" in names:
        raise DocumentRefused(Refusal.EXECUTABLE, "an Android package")
    if "META-INF/MANIFEST.MF" in names and any(name.endswith(".class") for name in names):
        raise DocumentRefused(Refusal.EXECUTABLE, "a Java archive")
    if claim == "docx":
        raise DocumentRefused(Refusal.BROKEN, "a .docx with no Word document inside")
    raise DocumentRefused(Refusal.ARCHIVE, "a ZIP archive")
