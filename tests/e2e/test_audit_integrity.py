"""Tamper evidence: ``openkms audit verify`` with only the public key proves the trail is as
written, and catches each kind of edit, in the database and in an exported file; the digest
signatures check out with ``cryptography`` and the ``openssl`` command alone."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests.e2e.audit_support import (
    audit_command,
    by_request,
    public_key,
    request_id,
    trail_path,
    verify,
)
from tests.support import OpenKmsServer, time_travel


def _traffic(server: OpenKmsServer, count: int) -> list[str]:
    kms = server.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    return [request_id(kms.encrypt(KeyId=key, Plaintext=b"x")) for _ in range(count)]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[OpenKmsServer, Path]:
    """A stopped SQLite server whose trail has two writers (a restart), digests made at the
    interval and at each stop, and its exported public key. Tests tamper with copies."""
    tmp_path = tmp_path_factory.mktemp("written")
    server = OpenKmsServer(tmp_path / "data", extra_args=["--workers", "1"]).start()
    _traffic(server, 4)
    with time_travel(120, server):  # past the 60 s digest interval: a digest while running
        _traffic(server, 3)
    server.restart()
    _traffic(server, 3)
    server.stop()
    return server, public_key(server, tmp_path)


def _copy(server: OpenKmsServer, directory: Path) -> OpenKmsServer:
    """The stopped server's data in ``directory``: a server object to point the CLI at."""
    shutil.copytree(server.data_dir, directory)
    return OpenKmsServer(directory)


def _sql(server: OpenKmsServer, *statements: str) -> None:
    with sqlite3.connect(trail_path(server)) as connection:
        for statement in statements:
            connection.execute(statement)


def _rows(server: OpenKmsServer, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(trail_path(server)) as connection:
        return list(connection.execute(query))


def _first_writer(server: OpenKmsServer) -> str:
    return str(_rows(server, "SELECT writer_id FROM audit_writers WHERE position = 1")[0][0])


def _event_hash(previous: str, seq: int, record: str) -> str:
    # The documented formula (docs/behaviour.md), written out again here on purpose.
    return hashlib.sha256(
        bytes.fromhex(previous) + seq.to_bytes(8, "big") + record.encode()
    ).hexdigest()


def _rehash_from(server: OpenKmsServer, writer: str) -> None:
    """What a careful forger does after an edit: recompute every stored hash of the chain."""
    (previous,) = _rows(server, f"SELECT hash FROM audit_writers WHERE writer_id = '{writer}'")[0]
    rows = _rows(
        server, f"SELECT seq, record FROM audit_events WHERE writer_id = '{writer}' ORDER BY seq"
    )
    with sqlite3.connect(trail_path(server)) as connection:
        for seq, record in rows:
            previous = _event_hash(previous, seq, record)
            connection.execute(
                "UPDATE audit_events SET hash = ? WHERE writer_id = ? AND seq = ?",
                (previous, writer, seq),
            )


def test_an_untouched_trail_verifies_and_its_chain_is_as_documented(written):
    server, key = written
    result = verify(server, key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout and "BROKEN" not in result.stdout
    report = json.loads(verify(server, key, "--json").stdout)
    assert report["ok"] and report["writers"] == 2 and report["events"] >= 12
    writers = _rows(server, "SELECT writer_id, hash FROM audit_writers ORDER BY position")
    for writer, previous in writers:
        for seq, record, stored in _rows(
            server,
            f"SELECT seq, record, hash FROM audit_events WHERE writer_id = '{writer}' ORDER BY seq",
        ):
            previous = _event_hash(previous, seq, record)
            assert stored == previous
    digests = _rows(server, "SELECT writer_id, record FROM audit_digests ORDER BY digest_seq")
    first = [json.loads(r) for w, r in digests if w == writers[0][0]]
    assert len(first) == 2 and not first[0]["final"] and first[1]["final"]  # interval, stop


def test_digest_signatures_verify_with_cryptography_and_openssl(written, tmp_path):
    server, key = written
    public = serialization.load_pem_public_key(key.read_bytes())
    digests = _rows(server, "SELECT record, signature FROM audit_digests")
    writers = _rows(server, "SELECT record, signature FROM audit_writers")
    assert len(digests) >= 3
    for record, signature in digests + writers:
        public.verify(base64.b64decode(signature), record.encode())  # type: ignore[union-attr]
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    record, signature = digests[0]
    (tmp_path / "digest.json").write_bytes(record.encode())
    (tmp_path / "digest.sig").write_bytes(base64.b64decode(signature))
    checked = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(key), "-rawin",
         "-in", str(tmp_path / "digest.json"), "-sigfile", str(tmp_path / "digest.sig")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0 and "Signature Verified Successfully" in checked.stdout
    (tmp_path / "digest.json").write_bytes(record.replace('"final"', '"Final"').encode())
    forged = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(key), "-rawin",
         "-in", str(tmp_path / "digest.json"), "-sigfile", str(tmp_path / "digest.sig")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert forged.returncode != 0


def _modify(copy: OpenKmsServer) -> str:
    writer = _first_writer(copy)
    _sql(
        copy,
        "UPDATE audit_events SET record = replace(record, '\"Encrypt\"', '\"Decrypt\"') "
        f"WHERE writer_id = '{writer}' AND seq = 3",
    )
    return f"writer {writer} event 3: the chain breaks here"


def _modify_and_rehash(copy: OpenKmsServer) -> str:
    writer = _first_writer(copy)
    _modify(copy)
    _rehash_from(copy, writer)
    return f"writer {writer} digest 1: the events 1.."


def _delete(copy: OpenKmsServer) -> str:
    writer = _first_writer(copy)
    _sql(copy, f"DELETE FROM audit_events WHERE writer_id = '{writer}' AND seq = 4")
    return f"writer {writer} event 5: expected event 4 next"


def _delete_the_last(copy: OpenKmsServer) -> str:
    writer = _first_writer(copy)
    (last,) = _rows(copy, f"SELECT max(seq) FROM audit_events WHERE writer_id = '{writer}'")[0]
    _sql(copy, f"DELETE FROM audit_events WHERE writer_id = '{writer}' AND seq = {last}")
    return f"writer {writer} digest"


def _insert(copy: OpenKmsServer) -> str:
    writer = _first_writer(copy)
    _sql(
        copy,
        # At 3: inside digest 1 whatever the batches were (it covers at least the first
        # traffic's five events; at 6 it depended on whether the writer's idle wake-up
        # wrote the digest before the next request arrived).
        f"UPDATE audit_events SET seq = seq + 1000 WHERE writer_id = '{writer}' AND seq > 2",
        f"UPDATE audit_events SET seq = seq - 999 WHERE writer_id = '{writer}' AND seq > 1000",
        "INSERT INTO audit_events SELECT writer_id, 3, event_id, event_time, event_source, "
        "event_name, principal_arn, access_key_id, error_code, resources, record, hash "
        f"FROM audit_events WHERE writer_id = '{writer}' AND seq = 2",
    )
    _rehash_from(copy, writer)
    return f"writer {writer} digest 1: the events 1.."


def _reorder(copy: OpenKmsServer) -> str:
    writer = _first_writer(copy)
    _sql(
        copy,
        f"UPDATE audit_events SET seq = -1 WHERE writer_id = '{writer}' AND seq = 2",
        f"UPDATE audit_events SET seq = 2 WHERE writer_id = '{writer}' AND seq = 3",
        f"UPDATE audit_events SET seq = 3 WHERE writer_id = '{writer}' AND seq = -1",
    )
    return f"writer {writer} event 2: the chain breaks here"


def _append_after_final(copy: OpenKmsServer) -> str:
    writer = _first_writer(copy)
    (last,) = _rows(copy, f"SELECT max(seq) FROM audit_events WHERE writer_id = '{writer}'")[0]
    _sql(
        copy,
        "INSERT INTO audit_events SELECT writer_id, seq + 1, event_id, event_time, event_source,"
        " event_name, principal_arn, access_key_id, error_code, resources, record, hash "
        f"FROM audit_events WHERE writer_id = '{writer}' AND seq = {last}",
    )
    _rehash_from(copy, writer)
    return f"writer {writer} event {last + 1}: an event after the writer's final digest"


def _delete_a_digest(copy: OpenKmsServer) -> str:
    writer = _first_writer(copy)
    _sql(copy, f"DELETE FROM audit_digests WHERE writer_id = '{writer}' AND digest_seq = 1")
    return f"writer {writer} digest 2: digests 1..1 were removed"


def _delete_a_writer(copy: OpenKmsServer) -> str:
    writer = _first_writer(copy)
    for table in ("audit_events", "audit_digests", "audit_writers"):
        _sql(copy, f"DELETE FROM {table} WHERE writer_id = '{writer}'")
    return "the writers' chain skips from 0 to 2"


TAMPERING: dict[str, Callable[[OpenKmsServer], str]] = {
    "modified": _modify,
    "modified-and-rehashed": _modify_and_rehash,
    "deleted": _delete,
    "deleted-last": _delete_the_last,
    "inserted-and-rehashed": _insert,
    "reordered": _reorder,
    "appended-after-final": _append_after_final,
    "digest-deleted": _delete_a_digest,
    "writer-deleted": _delete_a_writer,
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_each_tampering_in_the_database_is_caught_and_named(written, tmp_path, how):
    server, key = written
    copy = _copy(server, tmp_path / how)
    expected = TAMPERING[how](copy)
    result = verify(copy, key)
    assert result.returncode == 1, result.stdout
    assert "NOT verified" in result.stdout
    assert expected in result.stdout, result.stdout


def test_an_exported_trail_verifies_and_edits_to_it_are_caught(written, tmp_path):
    server, key = written
    exported = tmp_path / "trail.jsonl"
    assert "events written" in audit_command(server, "export", "--out", str(exported)).stdout
    clean = verify(server, key, "--file", str(exported))
    assert clean.returncode == 0, clean.stdout
    lines = exported.read_bytes().splitlines(keepends=True)
    events = [i for i, line in enumerate(lines) if b'"type":"event"' in line]

    def caught(edited: list[bytes], name: str) -> str:
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"".join(edited))
        result = verify(server, key, "--file", str(path))
        assert result.returncode == 1, (name, result.stdout)
        return result.stdout

    modified = list(lines)
    modified[events[2]] = modified[events[2]].replace(b"Encrypt", b"Decrypt")
    assert "the chain breaks here" in caught(modified, "modified")
    deleted = [line for i, line in enumerate(lines) if i != events[3]]
    assert "removed" in caught(deleted, "deleted")
    swapped = list(lines)
    first, second = json.loads(lines[events[1]]), json.loads(lines[events[2]])
    first["seq"], second["seq"] = second["seq"], first["seq"]
    swapped[events[1]] = json.dumps(first).encode() + b"\n"
    swapped[events[2]] = json.dumps(second).encode() + b"\n"
    assert "the chain breaks here" in caught(swapped, "reordered")
    shuffled = list(reversed(lines))  # the order of lines is not the order of events
    path = tmp_path / "shuffled.jsonl"
    path.write_bytes(b"".join(shuffled))
    assert verify(server, key, "--file", str(path)).returncode == 0


def test_a_key_other_than_the_trails_verifies_nothing(written, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    server, _ = written
    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = verify(server, other)
    assert result.returncode == 1 and "signed by a key not given" in result.stdout


def _load(servers: list[OpenKmsServer], threads: int, each: int) -> list[str]:
    """``threads`` clients at once, spread over ``servers``; every request id answered."""
    ids: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            got = _traffic(servers[index % len(servers)], each)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
            return
        with lock:
            ids.extend(got)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    return ids


def test_several_worker_processes_lose_and_duplicate_nothing(tmp_path):
    server = OpenKmsServer(tmp_path / "data", extra_args=["--workers", "3"]).start()
    try:
        ids = _load([server], threads=6, each=25)
    finally:
        server.stop()
    found = by_request(server)
    assert all(len(found[i]) == 1 for i in ids)
    assert len({r[0]["eventID"] for r in found.values()}) == len(found)
    key = public_key(server, tmp_path)
    result = verify(server, key, "--json")
    report = json.loads(result.stdout)
    assert report["ok"], report
    # The three workers' events, written at once, are one chain: the node's one writer.
    assert report["writers"] == 1
    assert report["events"] == len(found)


def test_two_nodes_on_one_postgresql_lose_and_duplicate_nothing(tmp_path, database_url_factory):
    url = database_url_factory("postgresql")  # skips without PostgreSQL
    root_key = tmp_path / "cluster-root.key"
    nodes = [
        OpenKmsServer(tmp_path / f"node{i}", url, ["--workers", "2"], root_key_file=root_key)
        for i in (1, 2)
    ]
    try:
        for node in nodes:
            node.start()
        ids = _load(nodes, threads=6, each=20)
    finally:
        for node in nodes:
            node.stop()
    found = by_request(nodes[0])
    assert all(len(found[i]) == 1 for i in ids)
    key = public_key(nodes[0], tmp_path)
    report = json.loads(verify(nodes[1], key, "--json").stdout)
    assert report["ok"], report
    # On PostgreSQL each worker writes its own chain: four writers at once.
    assert report["writers"] == 4 and report["events"] == len(found)
