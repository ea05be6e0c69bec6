"""LDIF import (docsync.directory.ldif_reader) of the same tree the slapd tests use, the
`docsync directory-sync` / `docsync principals` commands, and crash safety: a sync killed
before its commit leaves the last good snapshot whole, and the next run converges."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from docsync import cli, directory
from docsync.config import load_settings
from docsync.directory import effective_principals
from docsync.directory.graph import effective_sets
from docsync.directory.ldif_reader import LdifError, read_ldif
from tests.support.slapd_server import EXPECTED, READER_DN, READER_PW, SEED, SUFFIX, group, person


@pytest.fixture()
def ldif_env(docsync_env, monkeypatch):
    monkeypatch.setenv("DOCSYNC_DIRECTORY_NAME", "corp")
    monkeypatch.delenv("DOCSYNC_PRINCIPAL_DOMAINS", raising=False)
    return load_settings()


def sets_of(path) -> dict[str, list[str]]:
    return {name: list(p) for name, p in effective_sets(read_ldif(path)).items()}


def test_the_seeded_tree_from_ldif_resolves_like_the_server(tmp_path):
    path = tmp_path / "seed.ldif"
    path.write_text("version: 1\n\n" + SEED)
    assert sets_of(path) == EXPECTED
    assert all(e.key.startswith("dn:") for e in read_ldif(path))  # no entryUUID in the file: keyed by DN


def test_an_export_of_the_server_imports_to_the_same_principals(slapd_server, tmp_path):
    exported = slapd_server.export(tmp_path / "export.ldif")
    assert sets_of(exported) == EXPECTED
    assert all(e.key.startswith("uuid:") for e in read_ldif(exported))  # entryUUID exported: renames are changes
    # what the reader account sees over LDAP is what the export says
    ldif = subprocess.run(["ldapsearch", "-LLL", "-x", "-H", slapd_server.url, "-D", READER_DN, "-w", READER_PW,
                           "-b", SUFFIX, "-E", "pr=3/noprompt", "(cn=finance)", "member"],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    assert f"member: {group('finance-emea')}" in ldif


def test_ldifde_style_records_folded_lines_and_base64(tmp_path):
    """What AD's ldifde writes: changetype: add, long values folded, non-ASCII in base64."""
    zoe = base64.b64encode("Zoë".encode()).decode()
    path = tmp_path / "ad.ldf"
    path.write_text(
        "# exported by ldifde\n"
        "dn: CN=Zoe,OU=Users,DC=corp,DC=example\nchangetype: add\nobjectClass: top\nobjectClass: person\n"
        "objectClass: organizationalPerson\nobjectClass: user\n"
        f"sAMAccountName:: {zoe}\nuserAccountControl: 512\nwhenChanged: 20261201120000.0Z\n\n"
        "dn: CN=Finance Department,OU=Groups,DC=corp,DC=exam\n ple\nchangetype: add\nobjectClass: group\n"
        "sAMAccountName: Finance\nmember: CN=Zoe,OU=Users,\n DC=corp,DC=example\n\n"
        "dn: CN=Ops Contact,OU=Users,DC=corp,DC=example\nchangetype: add\nobjectClass: person\n"
        "objectClass: organizationalPerson\nobjectClass: contact\ncn: Ops Contact\n\n")
    assert sets_of(path) == {"user:zoë": ["everyone", "group:finance", "user:zoë"]}  # the contact is no account


@pytest.mark.parametrize("record,problem", [
    ("dn: cn=x,dc=corp\nchangetype: modify\nadd: member\nmember: cn=y\n", "change log"),
    ("dn: cn=x,dc=corp\nobjectClass: groupOfNames\nmember:< file:///etc/passwd\n", "by URL"),
    ("objectClass: top\n", "must start with 'dn:'"),
    ("dn: cn=x,dc=corp\nnot an attribute line\n", "expected 'attribute: value'"),
])
def test_ldif_that_is_no_snapshot_is_refused_whole(tmp_path, record, problem):
    path = tmp_path / "bad.ldif"
    path.write_text(SEED + "\n" + record)
    with pytest.raises(LdifError, match=problem):
        read_ldif(path)


def test_cli_sync_and_principals(ldif_env, tmp_path, capsys):
    path = tmp_path / "seed.ldif"
    path.write_text(SEED)
    assert cli.main(["principals", "alice"]) == 2
    assert "no snapshot yet" in capsys.readouterr().err  # fail closed, and say what to do
    assert cli.main(["--json", "directory-sync", "--ldif", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["users"] == 4
    assert cli.main(["--json", "principals", "user:alice"]) == 0
    assert json.loads(capsys.readouterr().out) == EXPECTED["user:alice"]
    assert cli.main(["principals", "dave"]) == 0
    assert "no principals" in capsys.readouterr().out
    assert cli.main(["principals", "group:finance"]) == 2
    assert "not a user" in capsys.readouterr().err


@pytest.mark.slow  # two CLI processes, ~4 s
def test_a_sync_killed_before_its_commit_keeps_the_last_snapshot(ldif_env, tmp_path):
    before, after = tmp_path / "before.ldif", tmp_path / "after.ldif"
    before.write_text(SEED)
    after.write_text(SEED.replace(f"cn: finance-emea\nmember: {person('alice')}\n",
                                  f"cn: finance-emea\nmember: {person('dave')}\n"))
    settings = ldif_env.replace(directory_ldif_path=str(before))
    directory.sync_directory(settings)

    def run(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "docsync.cli", "directory-sync", "--ldif", str(after)],
                              env=os.environ | env, capture_output=True, text=True, timeout=120)

    killed = run(DOCSYNC_KILL_AT="directory:before_commit")
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert effective_principals("alice", settings) == EXPECTED["user:alice"]  # nothing of the new snapshot
    assert run().returncode == 0
    assert effective_principals("alice", settings) == ["everyone", "user:alice"]
    assert effective_principals("bob", settings) == EXPECTED["user:bob"]


def test_unreadable_export_keeps_the_last_snapshot(ldif_env, tmp_path):
    path = tmp_path / "seed.ldif"
    path.write_text(SEED)
    directory.sync_directory(ldif_env.replace(directory_ldif_path=str(path)))
    path.write_text(SEED + "\ndn: cn=x\nchangetype: delete\n")
    with pytest.raises(directory.DirectoryUnreachable, match="complete export"):
        directory.sync_directory(ldif_env.replace(directory_ldif_path=str(path)))
    path.unlink()
    with pytest.raises(directory.DirectoryUnreachable, match="could not be read"):
        directory.sync_directory(ldif_env.replace(directory_ldif_path=str(path)))
    assert effective_principals("carol", ldif_env) == EXPECTED["user:carol"]


def test_a_snapshot_from_other_principal_domains_is_not_used_until_resynced(ldif_env, tmp_path, monkeypatch):
    """Changing DOCSYNC_PRINCIPAL_DOMAINS changes spellings: the old snapshot is refused (not
    guessed at), and the next sync rewrites it whole."""
    path = tmp_path / "seed.ldif"
    path.write_text(SEED + "\ndn: uid=gus,ou=people,dc=corp,"
                    "dc=example\nobjectClass: inetOrgPerson\nuid: gus@corp.example\ncn: Gus\nsn: G\n")
    settings = ldif_env.replace(directory_ldif_path=str(path))
    directory.sync_directory(settings)
    assert effective_principals("gus@corp.example", settings) == ["everyone", "user:gus@corp.example"]
    monkeypatch.setenv("DOCSYNC_PRINCIPAL_DOMAINS", "corp.example")
    with pytest.raises(directory.DirectoryUnavailable, match="DOCSYNC_PRINCIPAL_DOMAINS"):
        effective_principals("alice", settings)
    report = directory.sync_directory(settings)
    assert report["entries_changed"] == 12 and report["revocations"] == 0
    assert effective_principals("gus", settings) == ["everyone", "user:gus"]  # gus@corp.example is gus now
    assert effective_principals("alice", settings) == EXPECTED["user:alice"]
