"""No egress: a real `docsync sync` (the CLI) over a share with e-mails, phone numbers and a
scanned page, in a fresh home without any cache, opens no connection to anything but this
machine. Traced with `strace -f -e trace=connect` (apt package strace), every thread and child
process (tesseract) included.

Before: Presidio's e-mail recognizer called tldextract, which on its first e-mail resolved
publicsuffix.org / raw.githubusercontent.com (DNS to the resolver, then HTTPS, no timeout).
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docsync.config import OFFLINE_ENV

DOCSYNC = Path(sys.executable).with_name("docsync")
ACL = json.dumps({"allow": ["group:staff"]})
TEXT = (
    "Vendor contacts for the data-centre move.\n\n"
    "Alice Admin runs the migration; write to alice.admin@corp.internal or alice@example.com, "
    "call +1 212 555 0147 or (646) 555-0199.\n\n"
    "The printer queue is owned by printers@fileserver.local and the badge desk by "
    "badges@hq.lan; escalations go to oncall@northwind.io.\n"
)
SCAN_LINES = ["Onboarding form", "Employee: Bruno Keller", "Mail: bruno.keller@corp.internal", "Phone: 212 555 0188"]


def _scan_pdf() -> bytes:
    """A scanned-looking page: the text exists only as pixels, OCR has to read it."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1700, 600), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=48)
    for i, line in enumerate(SCAN_LINES):
        draw.text((60, 60 + i * 120), line, fill=0, font=font)
    buffer = io.BytesIO()
    image.save(buffer, "PDF", resolution=150.0)
    return buffer.getvalue()


def _share(root: Path) -> Path:
    for rel, data in {"team/contacts.txt": TEXT.encode(), "scans/onboarding.pdf": _scan_pdf()}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.with_name(path.name + ".acl.json").write_text(ACL)
    return root


_ADDRESS = re.compile(
    r'connect\(\d+, \{sa_family=(?P<family>AF_INET6?),\s*sin6?_port=htons\((?P<port>\d+)\),'
    r'.*?(?:inet_addr\("(?P<v4>[^"]+)"\)|inet_pton\(AF_INET6, "(?P<v6>[^"]+)")'
)


def outbound(trace: str) -> list[str]:
    """connect() calls in an strace log that leave the machine: AF_INET/AF_INET6 to anything
    but loopback, and any DNS query (port 53: a name lookup means something wanted the network,
    even when the resolver itself listens on loopback)."""
    found = []
    for line in trace.splitlines():
        if "connect(" not in line or "AF_INET" not in line:
            continue
        match = _ADDRESS.search(line)
        if not match:
            found.append(line)  # an internet socket we cannot parse: count it
            continue
        address = ipaddress.ip_address(match["v4"] or match["v6"])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_loopback or match["port"] == "53":
            found.append(line)
    return found


def test_outbound_parser_flags_what_leaves_the_machine():
    trace = "\n".join([
        '12 connect(5, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT',
        '12 connect(5, {sa_family=AF_INET, sin_port=htons(6333), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '12 connect(5, {sa_family=AF_INET6, sin6_port=htons(5432), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '13 connect(7, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0',
        '13 connect(7, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
        '14 connect(8, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("185.199.108.133")}, 16) = -1',
        '15 connect(9, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2606:50c0:8000::154", &sin6_addr), sin6_scope_id=0}, 28) = -1',
    ])
    flagged = outbound(trace)
    assert len(flagged) == 4
    assert all(("htons(53)" in line or "htons(443)" in line) for line in flagged)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (make test installs it: APT_TEST)")
def test_sync_opens_no_connection_beyond_this_machine(tmp_path):
    share = _share(tmp_path / "share")
    home = tmp_path / "home"  # no ~/.cache: tldextract, Hugging Face, spaCy start empty
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        # docsync must be offline by itself (not because the test runner's env says so), and
        # a proxy on loopback would hide a connection attempt.
        if k not in OFFLINE_ENV and "proxy" not in k.lower() and not k.startswith(("DOCSYNC_", "TLDEXTRACT_"))
    }
    env |= {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "DOCSYNC_HOME": str(tmp_path / "docsync-home"),
        "DOCSYNC_FILESHARE_ROOT": str(share),
        "DOCSYNC_DATA_DOCS": "0",
    }
    trace = tmp_path / "connect.trace"
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace),
         str(DOCSYNC), "--json", "sync", "--root", str(share)],
        env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    flagged = outbound(trace.read_text())
    assert flagged == [], "\n".join(flagged[:20])
    summary = json.loads(proc.stdout)
    assert summary["indexed"] == 2, summary  # the e-mails were analysed, the scan was OCR'd
