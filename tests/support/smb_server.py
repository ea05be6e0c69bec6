"""A real Samba ``smbd`` for tests: loopback only, unprivileged port, private config.

Everything Samba writes (config, passdb, locks, state, cache, pid, logs) lives under one
temporary directory; the system's ``/etc/samba`` and ``/var/lib/samba`` are never touched.
The SMB login is the Unix user running the tests (Samba maps SMB users to Unix accounts,
so it must exist); smbd needs root. Files are accessed as ``nobody`` (``force user``) so
that ordinary permissions apply: a folder with mode 000 cannot be listed over SMB, as on a
real server. The base directory and everything shared must therefore be world-readable,
which is why it is a ``tempfile.mkdtemp`` directory and not pytest's private tmp_path.

Usage::

    with SambaServer(tmp_path) as server:
        server.url  # smb://127.0.0.1:<port>/docs
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SMBD = shutil.which("smbd") or "/usr/sbin/smbd"
SMBPASSWD = shutil.which("smbpasswd") or "/usr/bin/smbpasswd"
SHARE = "docs"
FIRST_PORT = 14450

FILE_USER = "nobody"

CONFIG = """\
[global]
    server role = standalone server
    security = user
    workgroup = DOCSYNCTEST
    netbios name = DOCSYNCTEST
    server string = docsync test server
    smb ports = {port}
    interfaces = lo 127.0.0.1
    bind interfaces only = yes
    disable netbios = yes
    server min protocol = SMB2
    map to guest = never
    restrict anonymous = 2
    passdb backend = tdbsam:{tmp}/private/passdb.tdb
    smb passwd file = {tmp}/private/smbpasswd
    private dir = {tmp}/private
    lock directory = {tmp}/lock
    state directory = {tmp}/state
    cache directory = {tmp}/cache
    pid directory = {tmp}/pid
    ncalrpc dir = {tmp}/ncalrpc
    binddns dir = {tmp}/binddns
    usershare path = {tmp}/usershares
    log file = {tmp}/log/smbd.log
    max log size = 0
    log level = 1
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes
    multicast dns register = no
    obey pam restrictions = no
    unix password sync = no
    kernel oplocks = no
    kernel share modes = no
    posix locking = no

[{share}]
    path = {share_dir}
    read only = no
    browseable = yes
    valid users = {user}
    force user = {file_user}
"""


def worker_port(base: int) -> int:
    """``base`` moved by 1,000 per pytest-xdist worker: two workers that start a server at the same
    moment never both find the same port free (the second server then failed to bind, while the
    first one answered on that port for both: a slapd seed met the other's tree)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return base + 1000 * (int(worker[2:]) if worker[2:].isdigit() else 0)


def free_port(start: int = FIRST_PORT, attempts: int = 200) -> int:
    """The first port from ``start`` that nothing listens on and that we can bind."""
    for port in range(start, start + attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in {start}..{start + attempts}")


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class SambaServer:
    """Start/stop one private smbd serving ``<tmp>/share`` as ``[docs]``."""

    def __init__(self, tmp: Path, password: str | None = None, port: int | None = None) -> None:
        self.tmp = Path(tmp).resolve()
        self.share_dir = self.tmp / "share"
        self.conf = self.tmp / "smb.conf"
        self.username = getpass.getuser()
        self.file_user = FILE_USER if _user_exists(FILE_USER) else self.username
        self.password = password or "Pw-" + secrets.token_hex(8)
        self.port = port
        self.process: subprocess.Popen | None = None
        self._stderr = None

    @property
    def url(self) -> str:
        return f"smb://127.0.0.1:{self.port}/{SHARE}"

    @property
    def log_path(self) -> Path:
        return self.tmp / "log" / "smbd.log"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no smbd log)"

    def _configure(self) -> None:
        for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "binddns", "usershares", "log", "share"):
            (self.tmp / sub).mkdir(parents=True, exist_ok=True)
        for public in (self.tmp, self.share_dir):
            public.chmod(0o755)
        (self.tmp / "private").chmod(0o700)
        self.conf.write_text(
            CONFIG.format(
                port=self.port,
                tmp=self.tmp,
                share=SHARE,
                share_dir=self.share_dir,
                user=self.username,
                file_user=self.file_user,
            )
        )
        added = subprocess.run(
            [SMBPASSWD, "-L", "-c", str(self.conf), "-s", "-a", self.username],
            input=f"{self.password}\n{self.password}\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        if added.returncode != 0:
            raise RuntimeError(f"smbpasswd failed ({added.returncode}): {added.stdout} {added.stderr}")

    def start(self, timeout: float = 20.0) -> SambaServer:
        if not os.path.exists(SMBD):
            raise RuntimeError("smbd not found: install the Debian 'samba' package")
        if os.geteuid() != 0:
            raise RuntimeError("smbd must run as root (it switches to the share user per session)")
        self.port = self.port or free_port(worker_port(FIRST_PORT))
        self._configure()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMB")}
        self._stderr = open(self.tmp / "log" / "smbd.stderr", "wb")  # closed in stop()
        self.process = subprocess.Popen(
            [SMBD, "--foreground", "--no-process-group", f"--configfile={self.conf}", "--debuglevel=1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            env=env,
            # smbd signals its whole process group on shutdown: keep it out of ours.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"smbd exited with {self.process.returncode}:\n{self.log_tail()}")
            if port_open(self.port):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"smbd did not listen on 127.0.0.1:{self.port} within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        # Per-client smbd children are in the server's own session/process group (its
        # leader's pid): kill any that outlived the parent so the port is free again.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.port and port_open(self.port):
            time.sleep(0.1)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> SambaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="module")
def samba_server() -> SambaServer:
    """One real smbd per test module, in its own world-readable temporary directory."""
    base = Path(tempfile.mkdtemp(prefix="docsync-samba-"))
    server = SambaServer(base)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"cannot start a test Samba server: {exc}")
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def smb_share(samba_server: SambaServer) -> tuple[str, str, str, Path]:
    """(url, username, password, local_dir) of an empty share folder for one test.

    The URL points at a fresh sub-folder of the module's share, so tests do not see each
    other's files and no server restart is needed between tests.
    """
    name = "t-" + secrets.token_hex(4)
    local = samba_server.share_dir / name
    local.mkdir()
    local.chmod(0o755)
    yield f"{samba_server.url}/{name}", samba_server.username, samba_server.password, local
    shutil.rmtree(local, ignore_errors=True)
