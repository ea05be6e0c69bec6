"""Legacy Office (.doc/.xls/.ppt), OpenDocument and RTF through LibreOffice headless: the file
is converted to its OOXML counterpart, which the OOXML parsers read.

Each conversion runs in its own process group with a private LibreOffice profile directory
(two workers converting at once would otherwise fight over the profile's lock and one would
hang or exit without output), under the document timeout: a conversion still running then is
killed with its whole group (soffice forks ``soffice.bin``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from docsync.errors import Stage
from docsync.parse import parse_failure

# Detected MIME type -> (LibreOffice filter for --convert-to, the OOXML extension it produces)
CONVERSIONS = {
    "application/msword": ("docx:MS Word 2007 XML", "docx"),
    "application/rtf": ("docx:MS Word 2007 XML", "docx"),
    "text/rtf": ("docx:MS Word 2007 XML", "docx"),
    "application/vnd.oasis.opendocument.text": ("docx:MS Word 2007 XML", "docx"),
    "application/vnd.ms-powerpoint": ("pptx:Impress MS PowerPoint 2007 XML", "pptx"),
    "application/vnd.oasis.opendocument.presentation": ("pptx:Impress MS PowerPoint 2007 XML", "pptx"),
    "application/vnd.ms-excel": ("xlsx:Calc MS Excel 2007 XML", "xlsx"),
    "application/vnd.oasis.opendocument.spreadsheet": ("xlsx:Calc MS Excel 2007 XML", "xlsx"),
}
SUFFIX = {  # the input's name inside the private directory: LibreOffice picks its import filter by it too
    "application/msword": "doc", "application/rtf": "rtf", "text/rtf": "rtf",
    "application/vnd.oasis.opendocument.text": "odt", "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.oasis.opendocument.presentation": "odp", "application/vnd.ms-excel": "xls",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
}


def soffice() -> str | None:
    """The LibreOffice executable, or None when it is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert(data: bytes, path: str, mime: str, timeout_s: float) -> tuple[bytes, str]:
    """``data`` converted to OOXML; returns (bytes, OOXML kind). Raises ParseError with a reason."""
    binary = soffice()
    if binary is None:
        raise parse_failure(
            Stage.PARSE,
            f"{path} ({mime}) needs LibreOffice to be read, and it is not installed on this worker; "
            "install the Debian packages of the Makefile's APT_RUN (libreoffice-*-nogui)",
        )
    target, kind = CONVERSIONS[mime]
    with tempfile.TemporaryDirectory(prefix="docsync-convert-") as work:
        source = Path(work) / f"document.{SUFFIX[mime]}"
        source.write_bytes(data)
        profile = Path(work) / "profile"
        command = [
            binary, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore", "--nologo",
            "--nodefault", "--nolockcheck", "--convert-to", target, "--outdir", str(Path(work) / "out"), str(source),
        ]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")} | {"HOME": work}
        _run(command, env, path, timeout_s)
        produced = Path(work) / "out" / f"document.{kind}"
        if not produced.is_file() or produced.stat().st_size == 0:
            raise parse_failure(
                Stage.PARSE, f"LibreOffice could not read {path} as {mime}: the file looks corrupt or password protected"
            )
        return produced.read_bytes(), kind


def _run(command: list[str], env: dict, path: str, timeout_s: float) -> None:
    """Run one conversion in a new process group; the group is killed on a timeout, on the
    pipeline's own deadline (an exception raised in this thread) and on any other exit."""
    started = time.monotonic()
    proc = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _out, err = proc.communicate(timeout=timeout_s if timeout_s > 0 else None)
    except subprocess.TimeoutExpired as exc:
        raise parse_failure(
            Stage.TIMEOUT,
            f"{path}: LibreOffice conversion took longer than {timeout_s:g} s (DOCSYNC_DOC_TIMEOUT_S) and was "
            "killed; the file may be damaged or very large: split it or raise the limit",
            exc,
        ) from exc
    finally:  # soffice.bin may outlive soffice: the group is always cleared
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    if proc.returncode != 0:
        detail = (err or b"").decode("utf-8", "replace")[-300:]
        raise parse_failure(
            Stage.PARSE,
            f"LibreOffice failed to convert {path} (exit {proc.returncode} after {time.monotonic() - started:.0f} s): "
            "the file looks corrupt",
            RuntimeError(detail),
        )
