"""What a file's name and MIME type say it is: a hint only, heard after the bytes have spoken
(app/documents/sniff.py), since anyone can rename an .exe to .txt."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

from app.domain.documents import Refusal

# A claim: one of the formats we read, or the refusal its kind of file earns.
Claim = Literal["pdf", "docx"] | Refusal

_READ: dict[str, Literal["pdf", "docx"]] = {".pdf": "pdf", ".docx": "docx"}


def _suffixes(names: str) -> frozenset[str]:
    return frozenset(names.split())


_EXTENSIONS: dict[Refusal, frozenset[str]] = {
    Refusal.EXECUTABLE: _suffixes(
        ".exe .dll .so .dylib .apk .aab .xapk .ipa .msi .msix .appx .com .scr .sys .cpl "
        ".ocx .jar .class .dex .wasm .elf .appimage .o .a .lib .pyc"
    ),
    Refusal.ARCHIVE: _suffixes(
        ".zip .rar .7z .tar .gz .tgz .bz2 .tbz .tbz2 .xz .txz .zst .lz .lzma .lz4 .cab .iso "
        ".dmg .arj .z .deb .rpm .cpio .ar .zipx"
    ),
    Refusal.UNSUPPORTED: _suffixes(
        ".doc .dot .docm .dotx .xls .xlsx .xlsm .xlsb .ppt .pptx .pptm .odt .ods .odp .odg "
        ".epub .mobi .djvu .png .jpg .jpeg .gif .bmp .webp .tif .tiff .heic .heif .avif .ico "
        ".psd .mp3 .ogg .oga .opus .wav .flac .m4a .aac .wma .amr .mp4 .mov .avi .mkv .webm "
        ".3gp .flv .wmv .m4v .sqlite .db .ttf .otf .woff .woff2"
    ),
}

_MIMES: dict[str, Claim] = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/zip": Refusal.ARCHIVE,
    "application/x-zip-compressed": Refusal.ARCHIVE,
    "application/x-7z-compressed": Refusal.ARCHIVE,
    "application/x-rar-compressed": Refusal.ARCHIVE,
    "application/vnd.rar": Refusal.ARCHIVE,
    "application/gzip": Refusal.ARCHIVE,
    "application/x-gzip": Refusal.ARCHIVE,
    "application/x-tar": Refusal.ARCHIVE,
    "application/x-bzip2": Refusal.ARCHIVE,
    "application/x-xz": Refusal.ARCHIVE,
    "application/zstd": Refusal.ARCHIVE,
    "application/x-msdownload": Refusal.EXECUTABLE,
    "application/x-dosexec": Refusal.EXECUTABLE,
    "application/x-executable": Refusal.EXECUTABLE,
    "application/x-sharedlib": Refusal.EXECUTABLE,
    "application/x-mach-binary": Refusal.EXECUTABLE,
    "application/x-msi": Refusal.EXECUTABLE,
    "application/x-ms-installer": Refusal.EXECUTABLE,
    "application/vnd.android.package-archive": Refusal.EXECUTABLE,
    "application/java-archive": Refusal.EXECUTABLE,
    "application/wasm": Refusal.EXECUTABLE,
}


def claim_of(file_name: str, mime_type: str | None) -> Claim | None:
    """What the extension says, else what the MIME type says (Telegram's clients mostly derive
    one from the other), else nothing: most text files (.log, .py, .csv) claim nothing here."""
    suffix = PurePosixPath(file_name.replace("\\", "/")).suffix.lower()
    if suffix in _READ:
        return _READ[suffix]
    for refusal, suffixes in _EXTENSIONS.items():
        if suffix in suffixes:
            return refusal
    mime = (mime_type or "").split(";")[0].strip().lower()
    if mime in _MIMES:
        return _MIMES[mime]
    if mime.startswith(("image/", "audio/", "video/", "font/")) and mime != "image/svg+xml":
        return Refusal.UNSUPPORTED
    return None
