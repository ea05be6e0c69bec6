"""Format-specific parsers behind :func:`docsync.parse.parse_document`: one module per family.

- :mod:`~docsync.parsers.text`: text in any common encoding, NDJSON, the markup/junk measure;
- :mod:`~docsync.parsers.sheets`: CSV/TSV, XLSX, XLS as rows with their header;
- :mod:`~docsync.parsers.convert`: legacy Office, OpenDocument and RTF through LibreOffice headless;
- :mod:`~docsync.parsers.markup`: any HTML flavour (XHTML, inline XBRL, an XML prolog), EPUB;
- :mod:`~docsync.parsers.mail`: e-mail (``.eml``, Outlook ``.msg``) with attachments as children;
- :mod:`~docsync.parsers.archive`: ZIP archives, whose members become documents of their own.

Containers (e-mail, archives) return their parts as :class:`docsync.parse.Child` entries; the
process step turns each into a document of its own (see ARCHITECTURE.md, "Containers").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from docsync.config import Settings
    from docsync.parse import ParsedDocument

    Handler = Callable[[bytes, str, str, Settings], ParsedDocument]

AUDIO_VIDEO = ("audio/", "video/")
BINARY = {
    "application/x-executable", "application/x-sharedlib", "application/x-pie-executable",
    "application/x-dosexec", "application/x-mach-binary", "application/x-object", "application/x-archive",
    "application/java-archive", "application/x-iso9660-image", "application/x-sqlite3",
}


def _eml(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parsers.mail import parse_eml

    return parse_eml(data, path)


def _msg(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parsers.mail import parse_msg

    return parse_msg(data, path)


def _zip(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parsers.archive import parse_zip

    return parse_zip(data, path, settings)


def _html(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parsers.markup import parse_html

    return parse_html(data, path)


def _xml(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parsers.markup import parse_xml

    return parse_xml(data, path, mime)


def _epub(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parsers.markup import parse_epub

    return parse_epub(data, path, mime)


def _delimited(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parsers.sheets import parse_delimited

    return parse_delimited(data, path, mime)


def _xlsx(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parsers.sheets import parse_xlsx

    return parse_xlsx(data, path, mime)


def _ndjson(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parsers.text import parse_ndjson

    return parse_ndjson(data, path, mime)


def _xls(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from docsync.parse import ParseError
    from docsync.parsers.sheets import parse_xls

    try:
        return parse_xls(data, path, mime)
    except ParseError:  # xlrd reads BIFF5-8 only: older or odd workbooks go through LibreOffice
        return _converted(data, path, mime, settings)


def _converted(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    """Legacy Office / OpenDocument / RTF: converted to OOXML by LibreOffice, then parsed as
    that; the document keeps its own type."""
    from docsync.parse import OOXML, _partition, check_zip_bomb
    from docsync.parsers.convert import convert
    from docsync.parsers.sheets import parse_xlsx

    converted, kind = convert(data, path, mime, settings.sync.doc_timeout_s)
    check_zip_bomb(converted, path)
    if kind == "xlsx":
        return parse_xlsx(converted, path, mime)
    return _partition(converted, path, mime, as_type=OOXML[kind])


HANDLERS: dict[str, Handler] = {
    "message/rfc822": _eml,
    "application/vnd.ms-outlook": _msg,
    "application/zip": _zip,
    "text/html": _html,
    "application/xhtml+xml": _html,
    "text/xml": _xml,
    "application/xml": _xml,
    "application/epub+zip": _epub,
    "text/csv": _delimited,
    "text/tab-separated-values": _delimited,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _xlsx,
    "application/x-ndjson": _ndjson,
    "application/vnd.ms-excel": _xls,
    "application/msword": _converted,
    "application/rtf": _converted,
    "text/rtf": _converted,
    "application/vnd.ms-powerpoint": _converted,
    "application/vnd.oasis.opendocument.text": _converted,
    "application/vnd.oasis.opendocument.spreadsheet": _converted,
    "application/vnd.oasis.opendocument.presentation": _converted,
}


def handler(mime: str) -> Handler | None:
    """The parser of a detected type (None: the generic OOXML/text path or unsupported)."""
    return HANDLERS.get(mime)


def unsupported_reason(mime: str, path: str) -> str:
    """Why a type docsync cannot read is refused, for the reviewer."""
    if mime.startswith(AUDIO_VIDEO):
        kind = "audio" if mime.startswith("audio/") else "video"
        return (f"unsupported file type {mime!r} for {path}: {kind} holds no text docsync can read "
                "(speech is not transcribed); exclude it with DOCSYNC_EXCLUDE")
    if mime in BINARY:
        return (f"unsupported file type {mime!r} for {path}: a program, library or binary data image, "
                "not a document; exclude it with DOCSYNC_EXCLUDE")
    return (f"unsupported or unrecognised file type {mime!r} for {path} (detected from content): binary data "
            "of no document format docsync reads; convert it to PDF/DOCX/text or exclude it with DOCSYNC_EXCLUDE")
