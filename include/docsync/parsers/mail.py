"""E-mail: RFC 822 ``.eml`` (stdlib :mod:`email`) and Outlook ``.msg`` (python-oxmsg).

The e-mail's own text is its subject (the title), a header block (From, To, Cc, Date) and
its body: the plain-text alternative, or the HTML one when there is no plain text. Names and
addresses go through PII anonymization like any other text. Attachments (including forwarded
e-mails) are returned as children, ``attachment/<n>/<file name>``: each becomes a document of
its own, parsed by its type.
"""

from __future__ import annotations

import email
import io
import re
from email import policy
from typing import TYPE_CHECKING

from docsync.errors import Stage
from docsync.parse import Block, Child, ParsedDocument, parse_failure
from docsync.parsers.text import decode_text, text_encoding

if TYPE_CHECKING:
    from email.message import EmailMessage

MIME_EML = "message/rfc822"
MIME_MSG = "application/vnd.ms-outlook"
HEADERS = ("From", "To", "Cc", "Date")
_HEADER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*:")
_KNOWN = {"from", "to", "subject", "date", "received", "message-id", "mime-version", "return-path", "cc", "content-type"}
_UNSAFE = re.compile(r"[/\\#\x00-\x1f]+")


def looks_like_email(head: str) -> bool:
    """True when ``head`` starts with an RFC 822 header block (at least two well-known
    headers, every line a header or a continuation, up to the first blank line)."""
    head = head[:16384].replace("\r\n", "\n")
    if head.startswith("From "):  # an mbox separator line ("From sender date") before the headers
        head = head.partition("\n")[2]
    lines = head.split("\n\n", 1)[0].split("\n")
    if not lines or not _HEADER_LINE.match(lines[0]):
        return False
    names = set()
    for line in lines:
        if line[:1] in (" ", "\t"):
            continue
        if not _HEADER_LINE.match(line):
            return False
        names.add(line.split(":", 1)[0].lower())
    return len(names & _KNOWN) >= 2


def child_name(number: int, filename: str | None, fallback: str) -> str:
    """``attachment/<n>/<name>``: the name without path separators or ``#``."""
    name = _UNSAFE.sub("_", (filename or "").strip()).strip("._ ") or fallback
    return f"attachment/{number}/{name[:200]}"


def _header_block(pairs: list[tuple[str, str]]) -> Block | None:
    lines = [f"{name}: {' '.join(str(value).split())}" for name, value in pairs if value]
    return Block("\n".join(lines)) if lines else None


def _body_blocks(plain: str | None, html: str | None, path: str) -> list[Block]:
    if plain and plain.strip():
        from docsync.parsers.text import plain_blocks

        return plain_blocks(plain)  # partition_text's blocks, without its per-paragraph NLP
    if html and html.strip():
        from docsync.parsers.markup import html_blocks

        return html_blocks(html, f"{path} (HTML body)")
    return []


def _message(data: bytes) -> EmailMessage:
    encoding = text_encoding(data[:4096])
    if encoding and encoding.startswith(("utf-16", "utf-32")):
        return email.message_from_string(decode_text(data), policy=policy.default)
    return email.message_from_bytes(data, policy=policy.default)


def _part_text(part: EmailMessage | None) -> str | None:
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, ValueError):  # an unknown or lying charset: decode as text would
        payload = part.get_payload(decode=True) or b""
        return decode_text(payload) if payload else None


def parse_eml(data: bytes, path: str) -> ParsedDocument:
    try:
        message = _message(data)
        subject = str(message.get("Subject", "") or "")
        headers = [(name, str(message.get(name, "") or "")) for name in HEADERS]
        plain = _part_text(message.get_body(preferencelist=("plain",)))
        html = _part_text(message.get_body(preferencelist=("html",)))
        attachments = list(message.iter_attachments())
    except TimeoutError:
        raise
    except Exception as exc:  # the email package raises many types on broken MIME
        raise parse_failure(Stage.PARSE, f"could not read the e-mail {path}: its MIME structure is broken", exc) from exc
    blocks = [Block(" ".join(subject.split()), kind="title")] if subject.strip() else []
    header = _header_block(headers)
    blocks += [header] if header else []
    blocks += _body_blocks(plain, html, path)
    children = []
    for number, part in enumerate(attachments, start=1):
        payload = _attachment_bytes(part)
        if payload is None:
            continue
        fallback = f"part-{number}.eml" if part.get_content_type() == "message/rfc822" else f"part-{number}"
        children.append(Child(child_name(number, part.get_filename(), fallback), payload))
    return ParsedDocument(mime=MIME_EML, blocks=blocks, pages=1, children=children)


def _attachment_bytes(part: EmailMessage) -> bytes | None:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        return inner.as_bytes() if hasattr(inner, "as_bytes") else None
    return part.get_payload(decode=True)


def parse_msg(data: bytes, path: str) -> ParsedDocument:
    from oxmsg import Message

    try:
        message = Message.load(io.BytesIO(data))
        recipients = ", ".join(
            f"{r.name} <{r.email_address}>" if r.name and r.email_address else (r.name or r.email_address or "")
            for r in message.recipients
        )
        headers = message.message_headers or {}
        pairs = [("From", message.sender or headers.get("From", "")), ("To", recipients or headers.get("To", "")),
                 ("Cc", headers.get("Cc", "")), ("Date", message.sent_date.isoformat() if message.sent_date else headers.get("Date", ""))]
        subject = message.subject or ""
        plain, html = message.body, message.html_body
        attachments = [(a.file_name, a.file_bytes) for a in message.attachments]
    except TimeoutError:
        raise
    except Exception as exc:  # an OLE file that is not a readable message
        raise parse_failure(
            Stage.PARSE, f"could not read the Outlook message {path}: corrupt, encrypted or not an e-mail", exc
        ) from exc
    blocks = [Block(" ".join(subject.split()), kind="title")] if subject.strip() else []
    header = _header_block(pairs)
    blocks += [header] if header else []
    blocks += _body_blocks(plain, html, path)
    children = [
        Child(child_name(number, name, f"part-{number}"), payload)
        for number, (name, payload) in enumerate(attachments, start=1)
        if payload
    ]
    return ParsedDocument(mime=MIME_MSG, blocks=blocks, pages=1, children=children)
