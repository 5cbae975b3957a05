"""Regenerate this folder: a database written by openkms 0.1.0 (commit 2c34f65).

Drives the OLD release only: it starts ``<python> -m openkms serve`` from the venv given by
``--python`` (an install of commit 2c34f65), talks to it with boto3 as any client would,
runs ``openkms admin create-account`` beside it, stops it cleanly, checkpoints the SQLite
WAL into the main file, and writes ``openkms.db``, ``root.key`` and ``manifest.json`` here.
It imports nothing from openkms; see README.md for the commands.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

RELEASE = "0.1.0"
COMMIT_PREFIX = "2c34f65"
ACCOUNT_ID = "123456789012"
ACCESS_KEY_ID = "FOOBARKEY"
SECRET_ACCESS_KEY = "FOOBARSECRET"
SECOND_ACCOUNT_ID = "111122223333"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"})
HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", required=True, help="python of a venv with openkms 0.1.0")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    source = _old_release_source(args.python)
    with tempfile.TemporaryDirectory(prefix="openkms-0.1.0-") as scratch:
        data_dir = Path(scratch) / "data"
        data_dir.mkdir()
        manifest = _populate(args.python, source, data_dir)
        _checkpoint(data_dir / "openkms.db")
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / "openkms.db", args.out / "openkms.db")
        shutil.copyfile(data_dir / "root.key", args.out / "root.key")
    (args.out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out}/openkms.db, root.key, manifest.json")


def _old_release_source(python: str) -> dict[str, str]:
    """Where the given python's openkms comes from; refuse anything but commit 2c34f65."""
    probe = (
        "import importlib.metadata as m, openkms; "
        "print(openkms.__file__); print(m.version('openkms'))"
    )
    out = subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True)
    module_file, version = out.stdout.split()
    tree = Path(module_file).resolve().parent
    commit = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--", "."],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not commit.startswith(COMMIT_PREFIX) or dirty:
        raise SystemExit(f"{python} runs openkms from {tree} at {commit} (dirty: {bool(dirty)})")
    return {"commit": commit, "version": version, "cwd": str(tree.parent.parent)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENKMS_"))}
    env.update(
        OPENKMS_ACCOUNT_ID=ACCOUNT_ID,
        OPENKMS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        OPENKMS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
    )
    return env


def _populate(python: str, source: dict[str, str], data_dir: Path) -> dict[str, Any]:
    port = _free_port()
    log = open(data_dir.parent / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [python, "-m", "openkms", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(),
        cwd=source["cwd"],
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(endpoint, server)
        second = json.loads(
            subprocess.run(
                [
                    python,
                    "-m",
                    "openkms",
                    "admin",
                    "create-account",
                    "--data-dir",
                    str(data_dir),
                    "--account-id",
                    SECOND_ACCOUNT_ID,
                ],
                check=True,
                capture_output=True,
                text=True,
                env=_env(),
                cwd=source["cwd"],
            ).stdout
        )
        manifest = _make_state(endpoint, second)
    finally:
        server.terminate()
        code = server.wait(timeout=30)
        log.close()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: -SIGTERM is a clean stop.
    if code not in (0, -signal.SIGTERM):
        log_text = (data_dir.parent / "server.log").read_text()
        raise SystemExit(f"the old server exited with {code}: {log_text}")
    manifest["made_by"] = {
        "release": RELEASE,
        "commit": source["commit"],
        "version": source["version"],
        "made_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    return manifest


def _wait_healthy(endpoint: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the old server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the old server did not become healthy")


def _client(endpoint: str, service: str, region: str, key_id: str, secret: str) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=CONFIG,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _make_state(endpoint: str, second: dict[str, str]) -> dict[str, Any]:
    accounts = {
        "first": {
            "AccountId": ACCOUNT_ID,
            "Arn": f"arn:aws:iam::{ACCOUNT_ID}:root",
            "AccessKeyId": ACCESS_KEY_ID,
            "SecretAccessKey": SECRET_ACCESS_KEY,
        },
        "second": second,
    }

    def kms(account: str, region: str = REGION) -> Any:
        creds = accounts[account]
        return _client(endpoint, "kms", region, creds["AccessKeyId"], creds["SecretAccessKey"])

    for name, creds in accounts.items():
        sts = _client(endpoint, "sts", REGION, creds["AccessKeyId"], creds["SecretAccessKey"])
        identity = sts.get_caller_identity()
        assert identity["Account"] == creds["AccountId"], (name, identity)
        creds["Arn"] = identity["Arn"]

    a = kms("first")
    a_west = kms("first", OTHER_REGION)
    b = kms("second")
    made: dict[str, tuple[str, str]] = {}  # label -> (account, region)
    ids: dict[str, str] = {}

    def create(label: str, client: Any, account: str, region: str, **params: Any) -> str:
        key_id = client.create_key(**params)["KeyMetadata"]["KeyId"]
        made[label] = (account, region)
        ids[label] = key_id
        return key_id

    payments = create(
        "payments",
        a,
        "first",
        REGION,
        Description="payments: card numbers",
        Tags=[{"TagKey": "team", "TagValue": "core"}, {"TagKey": "env", "TagValue": "prod"}],
    )
    plain = create("plain", a, "first", REGION)
    disabled = create("disabled", a, "first", REGION, Description="retired")
    odd = create(
        "odd-text",
        a,
        "first",
        REGION,
        Description="naïve ✓ back\\slash, NUL:\x00 end",
        Tags=[{"TagKey": "path\\with\\backslashes", "TagValue": "ünïcode \x00 and NUL"}],
    )
    renamed = create("updated-description", a, "first", REGION, Description="first words")
    a.update_key_description(KeyId=renamed, Description="second words")
    toggled = create("re-enabled", a, "first", REGION)
    a.disable_key(KeyId=toggled)
    a.enable_key(KeyId=toggled)
    west = create(
        "west",
        a_west,
        "first",
        OTHER_REGION,
        Description="in eu-west-1",
        Tags=[{"TagKey": "region", "TagValue": OTHER_REGION}],
    )
    second_key = create(
        "second-account",
        b,
        "second",
        REGION,
        Description="other account",
        Tags=[{"TagKey": "owner", "TagValue": "second"}],
    )

    a.create_alias(AliasName="alias/payments", TargetKeyId=payments)
    a.create_alias(AliasName="alias/payments-legacy", TargetKeyId=payments)
    a.create_alias(AliasName="alias/moved", TargetKeyId=plain)
    time.sleep(0.05)
    a.update_alias(AliasName="alias/moved", TargetKeyId=odd)
    a.create_alias(AliasName="alias/retired", TargetKeyId=disabled)
    a_west.create_alias(AliasName="alias/payments", TargetKeyId=west)
    b.create_alias(AliasName="alias/payments", TargetKeyId=second_key)

    ciphertexts: list[dict[str, Any]] = []

    def record(
        label: str,
        account: str,
        region: str,
        key: str,
        blob: bytes,
        plaintext: bytes | None,
        context: dict[str, str] | None,
        plaintext_length: int | None = None,
    ) -> None:
        item: dict[str, Any] = {
            "label": label,
            "account": account,
            "region": region,
            "key": key,
            "CiphertextBlob": _b64(blob),
            "EncryptionContext": context,
            "Plaintext": None if plaintext is None else _b64(plaintext),
        }
        if plaintext_length is not None:
            item["PlaintextLength"] = plaintext_length
        ciphertexts.append(item)

    def encrypt(
        label: str,
        client: Any,
        account: str,
        region: str,
        key: str,
        key_ref: str,
        plaintext: bytes,
        context: dict[str, str] | None = None,
    ) -> bytes:
        params: dict[str, Any] = {"KeyId": key_ref, "Plaintext": plaintext}
        if context is not None:
            params["EncryptionContext"] = context
        blob = client.encrypt(**params)["CiphertextBlob"]
        record(label, account, region, key, blob, plaintext, context)
        return blob

    encrypt("no context, by key id", a, "first", REGION, "payments", payments, b"hello, 0.1.0")
    encrypt(
        "context, by alias",
        a,
        "first",
        REGION,
        "payments",
        "alias/payments",
        b"card 4111 1111 1111 1111",
        {"purpose": "billing", "tenant": "acme", "ünï": "cödé ✓"},
    )
    encrypt(
        "by key ARN, binary plaintext",
        a,
        "first",
        REGION,
        "plain",
        f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{plain}",
        bytes(range(256)) * 2,
    )
    encrypt("one byte", a, "first", REGION, "odd-text", odd, b"\x00", {"k": ""})
    encrypt("re-enabled key", a, "first", REGION, "re-enabled", toggled, b"toggled", {"a": "b"})
    encrypt("updated description", a, "first", REGION, "updated-description", renamed, b"words")
    encrypt(
        "before it was disabled",
        a,
        "first",
        REGION,
        "disabled",
        disabled,
        b"made while enabled",
        {"state": "enabled"},
    )
    encrypt(
        "eu-west-1",
        a_west,
        "first",
        OTHER_REGION,
        "west",
        "alias/payments",
        b"from the west",
        {"region": OTHER_REGION},
    )
    encrypt(
        "second account",
        b,
        "second",
        REGION,
        "second-account",
        "alias/payments",
        b"second account secret",
        {"who": "second"},
    )

    data_key = a.generate_data_key(
        KeyId=payments, KeySpec="AES_256", EncryptionContext={"file": "backup.tar"}
    )
    record(
        "GenerateDataKey AES_256 with context",
        "first",
        REGION,
        "payments",
        data_key["CiphertextBlob"],
        data_key["Plaintext"],
        {"file": "backup.tar"},
    )
    data_key = a.generate_data_key(KeyId="alias/moved", NumberOfBytes=64)
    record(
        "GenerateDataKey 64 bytes via alias, no context",
        "first",
        REGION,
        "odd-text",
        data_key["CiphertextBlob"],
        data_key["Plaintext"],
        None,
    )
    data_key = a.generate_data_key_without_plaintext(
        KeyId=plain, KeySpec="AES_128", EncryptionContext={"x": "y"}
    )
    record(
        "GenerateDataKeyWithoutPlaintext AES_128",
        "first",
        REGION,
        "plain",
        data_key["CiphertextBlob"],
        None,
        {"x": "y"},
        plaintext_length=16,
    )
    source = a.encrypt(KeyId=plain, Plaintext=b"re-encrypted", EncryptionContext={"from": "plain"})
    moved = a.re_encrypt(
        CiphertextBlob=source["CiphertextBlob"],
        SourceEncryptionContext={"from": "plain"},
        DestinationKeyId=payments,
        DestinationEncryptionContext={"to": "payments"},
    )
    record(
        "ReEncrypt from plain to payments",
        "first",
        REGION,
        "payments",
        moved["CiphertextBlob"],
        b"re-encrypted",
        {"to": "payments"},
    )

    a.disable_key(KeyId=disabled)
    try:
        a.encrypt(KeyId=disabled, Plaintext=b"x")
        raise SystemExit("the disabled key encrypted")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "DisabledException"

    clients = {("first", REGION): a, ("first", OTHER_REGION): a_west, ("second", REGION): b}
    keys: dict[str, Any] = {}
    for label, (account, region) in made.items():
        client = clients[(account, region)]
        metadata = client.describe_key(KeyId=ids[label])["KeyMetadata"]
        metadata["CreationDate"] = metadata["CreationDate"].astimezone(dt.UTC).isoformat()
        keys[label] = {
            "account": account,
            "region": region,
            "KeyMetadata": metadata,
            "Tags": client.list_resource_tags(KeyId=ids[label])["Tags"],
        }
    listings = []
    for (account, region), client in clients.items():
        aliases = client.list_aliases()["Aliases"]
        for alias in aliases:
            for field in ("CreationDate", "LastUpdatedDate"):
                if field in alias:
                    alias[field] = alias[field].astimezone(dt.UTC).isoformat()
        listings.append(
            {
                "account": account,
                "region": region,
                "KeyIds": sorted(k["KeyId"] for k in client.list_keys()["Keys"]),
                "Aliases": aliases,
            }
        )
    return {
        "accounts": accounts,
        "keys": keys,
        "listings": listings,
        "ciphertexts": ciphertexts,
        "disabled_keys": ["disabled"],
    }


def _checkpoint(database: Path) -> None:
    """Fold the WAL into the main file, so the database is the one file committed."""
    connection = sqlite3.connect(database)
    try:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the WAL could not be checkpointed"
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        connection.close()
    for suffix in ("-wal", "-shm", "-journal"):
        leftover = database.with_name(database.name + suffix)
        if leftover.exists():
            raise SystemExit(f"{leftover} remains after the checkpoint")


if __name__ == "__main__":
    main()
