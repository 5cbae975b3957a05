"""``openkms audit export-logs``: the trail as CloudTrail's gzip JSON log files with hourly
digest files, checked here the way ``aws cloudtrail validate-logs`` checks a trail's bucket
(public keys from ListPublicKeys, SHA256withRSA over CloudTrail's string to sign, each log
file's SHA-256, the digests' chain), by this file's own code, ``cryptography`` and
``openssl dgst``; and tampering with any file caught."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.e2e.audit_support import request_id
from tests.support import OpenKmsServer, time_travel

HOUR = 3600


@pytest.fixture
def account(server: OpenKmsServer) -> dict[str, str]:
    return server.create_account()


def export_logs(server: OpenKmsServer, out: Path, end: dt.datetime) -> str:
    command = [sys.executable, "-m", "openkms", "audit", "export-logs", "--to", str(out)]
    command += ["--end-time", end.isoformat(), "--data-dir", str(server.data_dir)]
    command += server._storage_args()
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@dataclass
class Digest:
    path: Path
    raw: bytes
    body: dict[str, Any]
    signature: str


def digests_of(out: Path, account_id: str) -> list[Digest]:
    """The account's digest files, oldest first (their names sort by end time)."""
    found = []
    base = out / "AWSLogs" / account_id / "CloudTrail-Digest"
    for path in sorted(base.rglob("*.json.gz"), key=lambda p: p.name):
        raw = gzip.decompress(path.read_bytes())
        metadata = json.loads(path.with_name(path.name + ".metadata.json").read_text())
        assert metadata["signature-algorithm"] == "SHA256withRSA"
        found.append(Digest(path, raw, json.loads(raw), metadata["signature"]))
    return found


def validate(out: Path, account_id: str, public_keys: list[dict[str, Any]]) -> list[str]:
    """What ``aws cloudtrail validate-logs`` would report as invalid; [] if all is valid."""
    keys = {k["Fingerprint"]: serialization.load_der_public_key(k["Value"]) for k in public_keys}
    problems: list[str] = []
    previous: Digest | None = None
    for digest in digests_of(out, account_id):
        body = digest.body
        to_sign = "\n".join(
            [
                body["digestEndTime"],
                f"{body['digestS3Bucket']}/{body['digestS3Object']}",
                hashlib.sha256(digest.raw).hexdigest(),
                body["previousDigestSignature"] or "null",
            ]
        ).encode()
        key = keys.get(body["digestPublicKeyFingerprint"])
        assert isinstance(key, rsa.RSAPublicKey)
        try:
            key.verify(
                bytes.fromhex(digest.signature), to_sign, padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            problems.append(f"digest {digest.path.name}: invalid signature")
        if previous is None:
            assert body["previousDigestSignature"] is None
        else:
            if body["previousDigestSignature"] != previous.signature:
                problems.append(f"digest {digest.path.name}: chain broken (signature)")
            if body["previousDigestHashValue"] != hashlib.sha256(previous.raw).hexdigest():
                problems.append(f"digest {digest.path.name}: chain broken (hash)")
            if body["digestStartTime"] != previous.body["digestEndTime"]:
                problems.append(f"digest {digest.path.name}: a gap before it")
        for log in body["logFiles"]:
            path = out / log["s3Object"]
            if not path.exists():
                problems.append(f"log {path.name}: missing")
            elif hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() != log["hashValue"]:
                problems.append(f"log {path.name}: hash mismatch")
        previous = digest
    return problems


def records_of(out: Path, account_id: str) -> list[dict[str, Any]]:
    base = out / "AWSLogs" / account_id / "CloudTrail"
    records: list[dict[str, Any]] = []
    for path in sorted(base.rglob("*.json.gz")):
        records += json.loads(gzip.decompress(path.read_bytes()))["Records"]
    return records


def test_exported_logs_hold_the_accounts_events_and_validate_as_cloudtrails_do(
    server, account, tmp_path
):
    kms = server.client_for(account)
    cloudtrail = server.client_for(account, "cloudtrail")
    start = dt.datetime.now(dt.UTC)
    key = kms.create_key()["KeyMetadata"]
    encrypted = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"quarterly figures")
    with time_travel(2 * HOUR + 600, server):  # two idle hours, then a use in the third
        decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
    end = start + dt.timedelta(hours=3, minutes=30)
    out, again = tmp_path / "bucket", tmp_path / "again"
    export_logs(server, out, end)
    export_logs(server, again, end)
    # The same export again writes the same bytes.
    written = [p for p in out.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert (again / path.relative_to(out)).read_bytes() == path.read_bytes()

    public_keys = cloudtrail.list_public_keys()["PublicKeyList"]
    assert len(public_keys) >= 1
    assert validate(out, account["AccountId"], public_keys) == []

    # A digest for every hour from the account's first event's hour, idle hours too, and the
    # last one ends at the export's end.
    digests = digests_of(out, account["AccountId"])
    assert len(digests) >= 4
    assert digests[-1].body["digestEndTime"] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert any(d.body["logFiles"] == [] for d in digests)

    # The log files hold the account's records, as the trail stored them, and no secret.
    records = records_of(out, account["AccountId"])
    ids = [r["requestID"] for r in records]
    for response in (encrypted, decrypted):
        assert request_id(response) in ids
    assert all(
        account["AccountId"] in (r.get("recipientAccountId"), r["userIdentity"].get("accountId"))
        for r in records
    )
    text = b"".join(gzip.decompress(p.read_bytes()) for p in (out / "AWSLogs").rglob("*.json.gz"))
    assert b"quarterly figures" not in text
    assert account["SecretAccessKey"].encode() not in text

    # openssl checks a digest's signature the same way.
    pem = tmp_path / "digest-key.pem"
    first = digests[0]
    key_der = next(
        k["Value"]
        for k in public_keys
        if k["Fingerprint"] == first.body["digestPublicKeyFingerprint"]
    )
    pem.write_bytes(
        serialization.load_der_public_key(key_der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    signed = tmp_path / "to-sign"
    signed.write_bytes(
        f"{first.body['digestEndTime']}\n{first.body['digestS3Bucket']}/"
        f"{first.body['digestS3Object']}\n{hashlib.sha256(first.raw).hexdigest()}\nnull".encode()
    )
    signature = tmp_path / "signature"
    signature.write_bytes(bytes.fromhex(first.signature))
    checked = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            str(pem),
            "-signature",
            str(signature),
            str(signed),
        ],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked


def test_tampering_with_a_log_or_a_digest_file_is_caught(server, account, tmp_path):
    kms = server.client_for(account)
    cloudtrail = server.client_for(account, "cloudtrail")
    start = dt.datetime.now(dt.UTC)
    key = kms.create_key()["KeyMetadata"]
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with time_travel(HOUR + 60, server):
        kms.describe_key(KeyId=key["KeyId"])
    clean = tmp_path / "clean"
    export_logs(server, clean, start + dt.timedelta(hours=2, minutes=30))
    public_keys = cloudtrail.list_public_keys()["PublicKeyList"]
    account_id = account["AccountId"]
    assert validate(clean, account_id, public_keys) == []

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(clean, target)
        return target

    # An edited record in a log file.
    edited = copy("edited")
    log = next((edited / "AWSLogs" / account_id / "CloudTrail").rglob("*.json.gz"))
    body = gzip.decompress(log.read_bytes()).replace(b'"eventName":"', b'"eventName":"X', 1)
    log.write_bytes(gzip.compress(body))
    assert validate(edited, account_id, public_keys) == [f"log {log.name}: hash mismatch"]

    # A log file removed.
    removed = copy("removed")
    log = next((removed / "AWSLogs" / account_id / "CloudTrail").rglob("*.json.gz"))
    log.unlink()
    assert validate(removed, account_id, public_keys) == [f"log {log.name}: missing"]

    # A digest edited to drop its log files: its signature no longer holds.
    forged = copy("forged")
    digest = next(d for d in digests_of(forged, account_id) if d.body["logFiles"])
    changed = json.dumps({**digest.body, "logFiles": []}, separators=(",", ":")).encode()
    digest.path.write_bytes(gzip.compress(changed))
    problems = validate(forged, account_id, public_keys)
    assert f"digest {digest.path.name}: invalid signature" in problems

    # A digest deleted: the chain shows the gap.
    cut = copy("cut")
    middle = digests_of(cut, account_id)[1]
    middle.path.unlink()
    assert any("chain broken" in p for p in validate(cut, account_id, public_keys))


def test_list_public_keys_refuses_a_reversed_time_range(server, account):
    from botocore.exceptions import ClientError

    cloudtrail = server.client_for(account, "cloudtrail")
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(ClientError) as info:
        cloudtrail.list_public_keys(StartTime=now, EndTime=now - dt.timedelta(hours=1))
    assert info.value.response["Error"]["Code"] == "InvalidTimeRangeException"
