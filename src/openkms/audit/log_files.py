"""The trail as CloudTrail delivers it to S3: gzip JSON log files and hourly digest files,
signed as CloudTrail's log file integrity validation signs them (``openkms audit
export-logs``).

Layout under the output directory, as in a trail's bucket (``<bucket>`` names the bucket the
files are meant for; it is part of what each digest signs)::

    AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz
    AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/
        <account>_CloudTrail-Digest_<region>_<trail>_<region>_<YYYYMMDDTHHMMSSZ>.json.gz
        … .json.gz.metadata.json

A log file is ``{"Records":[…]}``, the events of one account and region in a five-minute
window, each record byte for byte as the trail stored (and hash-chained) it; its name's time
is the window's end and its unique part the first 16 hex digits of its SHA-256. Every account
and region has a digest file per hour from its first event's hour on, with or without log
files (the export's last digest ends at the export's end time). A digest names each log file
with the hex SHA-256 of its uncompressed bytes, and the previous digest with its signature
and the hex SHA-256 of its uncompressed bytes. Its signature is SHA256withRSA (PKCS#1 v1.5)
over CloudTrail's string to sign::

    <digestEndTime>\\n<digestS3Bucket>/<digestS3Object>\\n<hex SHA-256 of the uncompressed
    digest file>\\n<previousDigestSignature, or "null" for the first>

hex encoded. CloudTrail keeps it in the digest object's S3 metadata (``signature``,
``signature-algorithm``); with no S3 here, the same two entries are the JSON sidecar file
``<digest>.metadata.json``. Files are gzip with no timestamp, so an export of the same
trail and end time writes the same bytes.

The RSA key (2048 bits) is made once, its private key wrapped by the root key like the
trail's Ed25519 key; its public key is listed by ``openkms audit public-key --format
cloudtrail`` and CloudTrail's ListPublicKeys. Its fingerprint (``digestPublicKeyFingerprint``)
is the first 16 bytes of the SHA-256 of the DER PKCS#1 public key, in hex.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import func, insert, select

from openkms.audit.store import AuditStore, events, log_file_keys
from openkms.seal import RootKey
from openkms.seal.secrets import unwrap_secret, wrap_secret

SIGNATURE_ALGORITHM = "SHA256withRSA"
HASH_ALGORITHM = "SHA-256"
DEFAULT_BUCKET = "openkms-audit-logs"
DEFAULT_TRAIL = "openkms"
METADATA_SUFFIX = ".metadata.json"
_HOUR = dt.timedelta(hours=1)
_WINDOW = dt.timedelta(minutes=5)
_TIME = "%Y-%m-%dT%H:%M:%SZ"


# -- the RSA key --------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFilePublicKey:
    fingerprint: str
    der_pkcs1: bytes
    valid_from: dt.datetime
    valid_until: dt.datetime | None

    @property
    def pem(self) -> str:
        """SubjectPublicKeyInfo PEM, as ``openssl dgst -verify`` reads it."""
        key = serialization.load_der_public_key(self.der_pkcs1)  # PKCS#1 DER loads too
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")


@dataclass(frozen=True)
class LogFileSigningKey:
    fingerprint: str
    _private: rsa.RSAPrivateKey = field(repr=False)

    def sign(self, message: bytes) -> str:
        return self._private.sign(message, padding.PKCS1v15(), hashes.SHA256()).hex()


def fingerprint_of(der_pkcs1: bytes) -> str:
    return hashlib.sha256(der_pkcs1).hexdigest()[:32]


def _pkcs1(public: rsa.RSAPublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def _label(fingerprint: str) -> str:
    return f"audit-log-file-key:{fingerprint}"


def ensure_log_file_key(
    store: AuditStore, root_key: RootKey, now: dt.datetime
) -> LogFileSigningKey:
    """The newest log-file signing key, made (once, whichever node comes first) if none is."""
    with store.engine.begin() as connection:
        store.lock(connection)
        row = connection.execute(
            select(log_file_keys).order_by(log_file_keys.c.created_at.desc()).limit(1)
        ).first()
        if row is not None:
            raw = unwrap_secret(root_key, _label(row.fingerprint), bytes(row.wrapped_private_key))
            private = serialization.load_der_private_key(raw, password=None)
            if not isinstance(private, rsa.RSAPrivateKey):
                raise ValueError("the log-file signing key is not an RSA key")
            if fingerprint_of(_pkcs1(private.public_key())) != row.fingerprint:
                raise ValueError("the log-file signing key does not match its fingerprint")
            return LogFileSigningKey(row.fingerprint, private)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = _pkcs1(private.public_key())
        fingerprint = fingerprint_of(der)
        raw = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        connection.execute(
            insert(log_file_keys).values(
                fingerprint=fingerprint,
                created_at=now,
                public_key=der,
                wrapped_private_key=wrap_secret(root_key, _label(fingerprint), raw),
            )
        )
        return LogFileSigningKey(fingerprint, private)


def public_keys(store: AuditStore) -> list[LogFilePublicKey]:
    """Every log-file public key, oldest first; each valid until the next was made."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(
                log_file_keys.c.fingerprint, log_file_keys.c.created_at, log_file_keys.c.public_key
            ).order_by(log_file_keys.c.created_at)
        ).all()
    keys = []
    for index, row in enumerate(rows):
        until = rows[index + 1].created_at if index + 1 < len(rows) else None
        keys.append(LogFilePublicKey(row.fingerprint, bytes(row.public_key), row.created_at, until))
    return keys


def public_key_list(store: AuditStore) -> dict[str, Any]:
    """The public keys as ListPublicKeys answers them (Value base64 here, as the AWS CLI
    prints it), each with its PEM for ``openssl``."""
    import base64

    listed = []
    for key in public_keys(store):
        entry: dict[str, Any] = {
            "Value": base64.b64encode(key.der_pkcs1).decode("ascii"),
            "ValidityStartTime": _text(key.valid_from),
        }
        if key.valid_until is not None:
            entry["ValidityEndTime"] = _text(key.valid_until)
        entry["Fingerprint"] = key.fingerprint
        entry["Pem"] = key.pem
        listed.append(entry)
    return {"PublicKeyList": listed}


# -- the export ---------------------------------------------------------------------------


@dataclass
class ExportReport:
    log_files: int = 0
    digest_files: int = 0
    events: int = 0
    accounts: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class _Chain:
    """One account and region's digest chain."""

    account: str
    region: str
    previous_object: str | None = None
    previous_hash: str | None = None
    previous_signature: str | None = None


def export_logs(
    store: AuditStore,
    key: LogFileSigningKey,
    out: Path,
    end: dt.datetime,
    bucket: str = DEFAULT_BUCKET,
    trail: str = DEFAULT_TRAIL,
) -> ExportReport:
    """Write the trail's events up to ``end`` as log files, and their digest files."""
    report = ExportReport()
    end = end.astimezone(dt.UTC).replace(microsecond=0)
    first = _first_event_time(store)
    if first is None:
        return report
    chains: dict[tuple[str, str], _Chain] = {}
    hour = first.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        hour_end = min(hour + _HOUR, end)
        grouped = _events_of_hour(store, hour, hour_end)
        for pair in grouped:
            chains.setdefault(pair, _Chain(*pair))
        for pair, chain in sorted(chains.items()):
            records = grouped.get(pair, [])
            logs = [
                _write_log(out, bucket, chain, window, texts) for window, texts in _windows(records)
            ]
            report.log_files += len(logs)
            report.events += len(records)
            _write_digest(out, bucket, trail, key, chain, hour, hour_end, logs, records)
            report.digest_files += 1
        hour += _HOUR
    report.accounts = set(chains)
    return report


def _first_event_time(store: AuditStore) -> dt.datetime | None:
    with store.engine.connect() as connection:
        first = connection.execute(select(func.min(events.c.event_time))).scalar()
    if first is None:
        return None
    if isinstance(first, str):  # SQLite's min() returns the stored text
        first = dt.datetime.fromisoformat(first).replace(tzinfo=dt.UTC)
    return first if first.tzinfo else first.replace(tzinfo=dt.UTC)


def _events_of_hour(
    store: AuditStore, start: dt.datetime, end: dt.datetime
) -> dict[tuple[str, str], list[tuple[dt.datetime, str]]]:
    """The hour's records by (account, region): the caller's account and the key owner's
    (a cross-account use is delivered to both, as CloudTrail does); a record of nobody known
    (failed authentication) is in no account's logs."""
    grouped: dict[tuple[str, str], list[tuple[dt.datetime, str]]] = defaultdict(list)
    c = events.c
    statement = (
        select(c.event_time, c.record)
        .where(c.event_time >= start, c.event_time < end)
        .order_by(c.event_time, c.writer_id, c.seq)
    )
    with store.engine.connect() as connection:
        for row in connection.execute(statement):
            record = orjson.loads(row.record)
            region = record.get("awsRegion")
            if not region:
                continue
            identity = record.get("userIdentity") or {}
            accounts = {record.get("recipientAccountId"), identity.get("accountId")} - {None}
            when = dt.datetime.strptime(record["eventTime"], _TIME).replace(tzinfo=dt.UTC)
            for account in accounts:
                grouped[(str(account), str(region))].append((when, row.record))
    return grouped


def _windows(
    records: list[tuple[dt.datetime, str]],
) -> Iterator[tuple[dt.datetime, list[tuple[dt.datetime, str]]]]:
    """Records by five-minute window (its end, the file's delivery time)."""
    current: list[tuple[dt.datetime, str]] = []
    window_end: dt.datetime | None = None
    for when, text in records:
        floor = when.replace(minute=when.minute - when.minute % 5, second=0)
        this_end = floor + _WINDOW
        if window_end is not None and this_end != window_end:
            yield window_end, current
            current = []
        window_end = this_end
        current.append((when, text))
    if window_end is not None and current:
        yield window_end, current


@dataclass(frozen=True)
class _LogFile:
    key: str
    hash_value: str
    oldest: dt.datetime
    newest: dt.datetime


def _write_log(
    out: Path,
    bucket: str,
    chain: _Chain,
    window_end: dt.datetime,
    records: list[tuple[dt.datetime, str]],
) -> _LogFile:
    body = b'{"Records":[' + b",".join(text.encode() for _, text in records) + b"]}"
    digest = hashlib.sha256(body).hexdigest()
    stamp = window_end.strftime("%Y%m%dT%H%MZ")
    name = f"{chain.account}_CloudTrail_{chain.region}_{stamp}_{digest[:16]}.json.gz"
    key = f"AWSLogs/{chain.account}/CloudTrail/{chain.region}/{window_end:%Y/%m/%d}/{name}"
    _write(out / key, gzip.compress(body, mtime=0))
    return _LogFile(key, digest, records[0][0], records[-1][0])


def _write_digest(
    out: Path,
    bucket: str,
    trail: str,
    key: LogFileSigningKey,
    chain: _Chain,
    start: dt.datetime,
    end: dt.datetime,
    logs: list[_LogFile],
    records: list[tuple[dt.datetime, str]],
) -> None:
    stamp = end.strftime("%Y%m%dT%H%M%SZ")
    name = (
        f"{chain.account}_CloudTrail-Digest_{chain.region}_{trail}_{chain.region}_{stamp}.json.gz"
    )
    object_key = f"AWSLogs/{chain.account}/CloudTrail-Digest/{chain.region}/{end:%Y/%m/%d}/{name}"
    digest: dict[str, Any] = {
        "awsAccountId": chain.account,
        "digestStartTime": _text(start),
        "digestEndTime": _text(end),
        "digestS3Bucket": bucket,
        "digestS3Object": object_key,
        "digestPublicKeyFingerprint": key.fingerprint,
        "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
        "newestEventTime": _text(records[-1][0]) if records else None,
        "oldestEventTime": _text(records[0][0]) if records else None,
        "previousDigestS3Bucket": bucket if chain.previous_object else None,
        "previousDigestS3Object": chain.previous_object,
        "previousDigestHashValue": chain.previous_hash,
        "previousDigestHashAlgorithm": HASH_ALGORITHM if chain.previous_object else None,
        "previousDigestSignature": chain.previous_signature,
        "logFiles": [
            {
                "s3Bucket": bucket,
                "s3Object": log.key,
                "hashValue": log.hash_value,
                "hashAlgorithm": HASH_ALGORITHM,
                "newestEventTime": _text(log.newest),
                "oldestEventTime": _text(log.oldest),
            }
            for log in logs
        ],
    }
    body = orjson.dumps(digest)
    body_hash = hashlib.sha256(body).hexdigest()
    to_sign = string_to_sign(
        digest["digestEndTime"], bucket, object_key, body_hash, chain.previous_signature
    )
    signature = key.sign(to_sign)
    _write(out / object_key, gzip.compress(body, mtime=0))
    metadata = {"signature": signature, "signature-algorithm": SIGNATURE_ALGORITHM}
    _write(out / (object_key + METADATA_SUFFIX), orjson.dumps(metadata, option=orjson.OPT_INDENT_2))
    chain.previous_object, chain.previous_hash = object_key, body_hash
    chain.previous_signature = signature


def string_to_sign(
    end_time: str, bucket: str, object_key: str, digest_hash: str, previous: str | None
) -> bytes:
    """CloudTrail's string to sign of a digest file (the first digest's previous is "null")."""
    return f"{end_time}\n{bucket}/{object_key}\n{digest_hash}\n{previous or 'null'}".encode()


def _text(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime(_TIME)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
