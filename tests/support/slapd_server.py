"""A real OpenLDAP ``slapd`` for tests: loopback only, free ports (LDAP with StartTLS, and
LDAPS), a private config, database and certificates under one temporary directory; the system's
/etc/ldap and /var/lib/ldap are never touched. Debian packages ``slapd`` and ``ldap-utils``
(the Makefile's APT_TEST).

The tree (:data:`SEED`) has nested groups, a cycle, a disabled user, a posixGroup, and a
read-only service account; anonymous users read nothing. The reader's size limit is 4 entries
except in paged searches, so a reader that does not page fails. The ``refint`` overlay keeps
``member`` DNs in step with renames, as Active Directory does.

Usage: the ``slapd_server`` fixture, a fresh server per test (it starts in ~0.3 s)."""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.smb_server import free_port, port_open, worker_port

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SUFFIX = "dc=corp,dc=example"
ADMIN_DN, ADMIN_PW = f"cn=admin,{SUFFIX}", "admin-secret"
READER_DN, READER_PW = f"cn=reader,ou=service,{SUFFIX}", "reader-secret"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload refint
pidfile {tmp}/slapd.pid
argsfile {tmp}/slapd.args
TLSCACertificateFile {tmp}/ca.pem
TLSCertificateFile {tmp}/server.pem
TLSCertificateKeyFile {tmp}/server.key
database mdb
maxsize 33554432
suffix "{suffix}"
rootdn "{admin_dn}"
rootpw {admin_pw}
directory {tmp}/db
overlay refint
refint_attributes member uniqueMember
limits dn.exact="{reader_dn}" size.soft=4 size.hard=4 size.pr=4 size.prtotal=unlimited
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{reader_dn}" read by * none
"""


def _people(uid: str, extra: str = "") -> str:
    return (f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\n{extra}uid: {uid}\n"
            f"cn: {uid.title()}\nsn: {uid.title()}\n")


def _group(cn: str, *members: str) -> str:
    lines = "".join(f"member: {m}\n" for m in members)
    return f"dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}"


def person(uid: str) -> str:
    return f"uid={uid},ou=people,{SUFFIX}"


def group(cn: str) -> str:
    return f"cn={cn},ou=groups,{SUFFIX}"


# alice in finance-emea, in finance, in all-staff; bob in all-staff and sales; carol in cycle-a
# (cycle-a in cycle-b in cycle-a) and, by memberUid, in the posixGroup ops; dave is disabled
# (shadowExpire in 1970) and in sales.
SEED = "\n".join([
    f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n",
    f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
    f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
    f"dn: ou=service,{SUFFIX}\nobjectClass: organizationalUnit\nou: service\n",
    f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n"
    f"userPassword: {READER_PW}\n",
    _people("alice"), _people("bob"), _people("carol"),
    _people("dave", "objectClass: shadowAccount\nshadowExpire: 1\n"),
    _group("finance-emea", person("alice")),
    _group("finance", group("finance-emea")),
    _group("all-staff", group("finance"), person("bob")),
    _group("cycle-a", group("cycle-b"), person("carol")),
    _group("cycle-b", group("cycle-a")),
    _group("sales", person("bob"), person("dave")),
    f"dn: cn=ops,ou=groups,{SUFFIX}\nobjectClass: posixGroup\ncn: ops\ngidNumber: 5000\nmemberUid: carol\n",
])


def make_certificates(tmp: Path, name: str = "ca") -> None:
    """A CA (``<name>.pem``) and a server certificate for 127.0.0.1 (not `localhost`) signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"docsync test {name}")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (tmp / f"{name}.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    if name != "ca":
        return
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))


class SlapdServer:
    """One private slapd with :data:`SEED` loaded; ``url`` (StartTLS) and ``ldaps_url``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = Path(tmp)
        self.port = free_port(worker_port(13890))
        self.ldaps_port = free_port(self.port + 1)
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_url = f"ldaps://127.0.0.1:{self.ldaps_port}"
        self.ca_file = str(self.tmp / "ca.pem")
        self.proc: subprocess.Popen | None = None

    def start(self) -> SlapdServer:
        if not Path(SLAPD).exists():
            pytest.fail("slapd is required: `apt-get install slapd ldap-utils` (make test installs them)")
        make_certificates(self.tmp)
        make_certificates(self.tmp, "other-ca")
        (self.tmp / "db").mkdir(exist_ok=True)
        config = self.tmp / "slapd.conf"
        config.write_text(CONFIG.format(tmp=self.tmp, suffix=SUFFIX, admin_dn=ADMIN_DN, admin_pw=ADMIN_PW,
                                        reader_dn=READER_DN))
        self.proc = subprocess.Popen(
            [SLAPD, "-d", "0", "-f", str(config), "-h", f"{self.url}/ {self.ldaps_url}/"],
            stdout=subprocess.DEVNULL, stderr=open(self.tmp / "slapd.log", "wb"),
        )
        deadline = time.monotonic() + 20
        while not (port_open(self.port) and port_open(self.ldaps_port)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"slapd did not start: {(self.tmp / 'slapd.log').read_text()[-2000:]}")
            time.sleep(0.05)
        time.sleep(0.2)  # a slapd that could not bind exits at once: not ours answering on the port
        if self.proc.poll() is not None:
            raise RuntimeError(f"slapd exited at start: {(self.tmp / 'slapd.log').read_text()[-2000:]}")
        self.modify(SEED, add=True)
        return self

    def modify(self, ldif: str, add: bool = False) -> None:
        """Apply LDIF as the administrator with ldapmodify (ldap-utils)."""
        args = ["ldapmodify", "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PW] + (["-a"] if add else [])
        proc = subprocess.run(args, input=ldif, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"ldapmodify failed: {proc.stderr}")

    def export(self, path: Path) -> Path:
        """An LDIF export of the tree, as a site would hand it over (ldapsearch, operational attributes)."""
        proc = subprocess.run(
            ["ldapsearch", "-LLL", "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PW, "-b", SUFFIX,
             "-E", "pr=2/noprompt", "*", "entryUUID", "modifyTimestamp"],
            capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"ldapsearch failed: {proc.stderr}")
        path.write_text(proc.stdout)
        return path

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture()
def slapd_server():
    tmp = Path(tempfile.mkdtemp(prefix="docsync-slapd-"))
    server = SlapdServer(tmp)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# What the seeded tree resolves to (the LDAP and the LDIF tests check the same).
EXPECTED = {
    "user:alice": ["everyone", "group:all-staff", "group:finance", "group:finance-emea", "user:alice"],
    "user:bob": ["everyone", "group:all-staff", "group:sales", "user:bob"],
    "user:carol": ["everyone", "group:cycle-a", "group:cycle-b", "group:ops", "user:carol"],
    "user:dave": [],  # disabled
}
