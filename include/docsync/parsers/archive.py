"""ZIP archives: each member becomes a document of its own (``archive.zip#path/in/zip``).

The archive's own text is its table of contents (member names: "which archive holds the
2019 audit?"). The zip-bomb limits of :func:`docsync.parse.check_zip_bomb` apply to the
declared sizes first; a member is read only when the process step reaches it, and never more
than its declared size (``zipfile`` stops there) nor more than ``DOCSYNC_MAX_FILE_MB``.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import TYPE_CHECKING

from docsync.errors import Stage
from docsync.parse import Block, Child, ParsedDocument, check_zip_bomb, parse_failure

if TYPE_CHECKING:
    from docsync.config import Settings

MIME_ZIP = "application/zip"
MAX_MEMBERS = 1000  # more is a data dump or a bomb of many small files, not a document folder
_UNSAFE = re.compile(r"[#\\\x00-\x1f]+")


def member_name(name: str) -> str:
    """A member's path as part of a document path: no ``#``, no ``..`` or leading ``/``."""
    parts = [p for p in _UNSAFE.sub("_", name).split("/") if p not in ("", ".", "..")]
    return "/".join(parts)


def parse_zip(data: bytes, path: str, settings: Settings) -> ParsedDocument:
    check_zip_bomb(data, path)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [i for i in archive.infolist() if not i.is_dir()]
    except zipfile.BadZipFile as exc:
        raise parse_failure(Stage.PARSE, f"corrupt ZIP archive {path}: cannot be opened", exc) from exc
    if len(members) > MAX_MEMBERS:
        raise parse_failure(
            Stage.LIMITS,
            f"ZIP archive {path} holds {len(members)} files, more than {MAX_MEMBERS}: unpack it onto the share "
            "so that its files are synced one by one",
        )
    names = []
    children = []
    for info in members:
        name = member_name(info.filename)
        if not name or name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1].startswith("._"):
            continue  # macOS resource forks: metadata, no document
        if name in names:  # two members that read the same once made safe: keep both, apart
            name = f"{name}~{len(names)}"
        names.append(name)
        children.append(Child(name, loader=_loader(archive, info, path, settings), size=info.file_size))
    blocks = [Block(f"Archive {path.rsplit('/', 1)[-1]}: {len(names)} files", kind="title")]
    blocks += [Block("\n".join(names[i : i + 50])) for i in range(0, len(names), 50)]
    return ParsedDocument(mime=MIME_ZIP, blocks=blocks, pages=1, children=children)


def _loader(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, settings: Settings):
    def load() -> bytes:
        where = f"{path}#{member_name(info.filename)}"
        if info.file_size > settings.source.max_file_bytes:
            raise parse_failure(
                Stage.DETECT,
                f"{where} is {info.file_size / 2**20:.1f} MiB, over DOCSYNC_MAX_FILE_MB; unpack it or raise the limit",
            )
        if info.flag_bits & 0x1:
            raise parse_failure(Stage.PARSE, f"{where} is encrypted in its archive; ask the owner for an unprotected copy")
        try:
            return archive.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise parse_failure(Stage.PARSE, f"{where} cannot be extracted: the archive is corrupt", exc) from exc

    return load
