"""HSM auto-unseal through PKCS#11, on a real SoftHSM2 token made for the test: the keyring is
wrapped by a non-extractable AES key in the token, and nothing on disk opens it without it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.e2e.test_sealing import (
    _FIXED,
    fresh_client,
    init_shamir,
    openkms,
    operator_env,
    status,
    unseal,
)
from tests.support import SOFTHSM_LIBRARY, OpenKmsServer, softhsm_tokens

PIN = "4321-token-pin"
TOKEN = "openkms-test"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh SoftHSM2 token in a temporary directory (SOFTHSM2_CONF points at it)."""
    base = tmp_path_factory.mktemp("softhsm")
    conf = softhsm_tokens(base, PIN, "8765-so-pin", TOKEN)
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin_file = base / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    yield {"conf": str(conf), "pin_file": str(pin_file), "tokens": str(base / "tokens")}
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def init_pkcs11(
    data_dir: Path, token: dict[str, str], key_label: str
) -> subprocess.CompletedProcess[str]:
    return openkms(
        "operator", "init", "--data-dir", str(data_dir), "--seal", "pkcs11",
        "--pkcs11-library", SOFTHSM_LIBRARY, "--token-label", TOKEN,
        "--pin-file", token["pin_file"], "--key-label", key_label,
        env={**_FIXED, "SOFTHSM2_CONF": token["conf"]},
    )  # fmt: skip


def test_the_server_unseals_through_the_token_and_keeps_its_data(token, tmp_path):
    done = init_pkcs11(tmp_path / "data", token, "seal-a")
    assert done.returncode == 0, done.stderr
    assert PIN not in done.stdout + done.stderr
    server = OpenKmsServer(
        tmp_path / "data", env={"SOFTHSM2_CONF": token["conf"]}, extra_args=["--workers", "2"]
    ).start()
    try:
        assert status(server)["sealed"] is False and status(server)["type"] == "pkcs11"
        kms = fresh_client(server)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"hsm")["CiphertextBlob"]
        # Sealed by the operator, it stays sealed until a restart unseals it through the token.
        done = openkms("operator", "seal", "--endpoint", server.endpoint, env=operator_env())
        assert done.returncode == 0, done.stderr
        assert status(server)["sealed"]
        with pytest.raises(ClientError, match="sealed"):
            kms.decrypt(CiphertextBlob=blob)
        done = openkms("operator", "unseal", "--endpoint", server.endpoint)
        assert done.returncode != 0 and "restart" in done.stderr
        assert status(server)["sealed"]
        server.restart()
        for _ in range(4):  # every worker
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hsm"
        assert PIN not in server.log()
    finally:
        server.stop()


def test_the_token_never_reveals_the_seal_key(token, tmp_path):
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11.exceptions import AttributeSensitive, PKCS11Error

    assert init_pkcs11(tmp_path / "data", token, "seal-b").returncode == 0
    session = pkcs11.lib(SOFTHSM_LIBRARY).get_token(token_label=TOKEN).open(user_pin=PIN)
    try:
        key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label="seal-b")
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.EXTRACTABLE] is False
        with pytest.raises((AttributeSensitive, PKCS11Error)):
            key[Attribute.VALUE]
    finally:
        session.close()


def test_without_the_token_or_with_a_wrong_pin_nothing_starts(token, tmp_path):
    assert init_pkcs11(tmp_path / "data", token, "seal-c").returncode == 0
    pin_file = Path(token["pin_file"])
    pin_file.write_text("0000-wrong\n")
    try:
        done = openkms(
            "serve", "--data-dir", str(tmp_path / "data"), env={"SOFTHSM2_CONF": token["conf"]}
        )
        assert done.returncode != 0 and "cannot log in to the token" in done.stderr
        assert "0000-wrong" not in done.stderr and PIN not in done.stderr
    finally:
        pin_file.write_text(PIN + "\n")
    empty = tmp_path / "empty"
    (empty / "tokens").mkdir(parents=True)
    (empty / "conf").write_text(f"directories.tokendir = {empty / 'tokens'}\n")
    done = openkms(
        "serve", "--data-dir", str(tmp_path / "data"), env={"SOFTHSM2_CONF": str(empty / "conf")}
    )
    assert done.returncode != 0 and "no PKCS#11 token labelled" in done.stderr
    # The admin commands cannot open the store either.
    done = openkms(
        "admin", "create-account", "--data-dir", str(tmp_path / "data"),
        env={"SOFTHSM2_CONF": str(empty / "conf")},
    )  # fmt: skip
    assert done.returncode != 0 and "PKCS#11" in done.stderr


def opens_with_any_window(files: list[Path], sealed: bytes, aad: bytes) -> bool:
    """Whether any 32 bytes anywhere in ``files`` open the sealed keyring (format byte,
    12-byte nonce, AES-256-GCM): the auditor's test that no file holds the seal key."""
    nonce, body = sealed[1:13], sealed[13:]
    for path in files:
        data = path.read_bytes()
        for start in range(max(0, len(data) - 31)):
            try:
                AESGCM(data[start : start + 32]).decrypt(nonce, body, aad)
                return True
            except InvalidTag:
                continue
    return False


def sealed_keyring(data_dir: Path) -> tuple[bytes, bytes]:
    with sqlite3.connect(data_dir / "openkms.db") as db:
        rows = dict(db.execute("select name, value from server_settings"))
    seal_id = json.loads(rows["seal-config"])["seal_id"]
    return bytes(rows["seal-keyring"]), b"openkms/keyring/v1\x00" + seal_id.encode()


def disk_files(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if p.is_file() and p.stat().st_size < 2_000_000]


def test_no_file_of_a_shamir_store_holds_a_key_that_opens_the_keyring(tmp_path):
    """The data directory after init, serve, unseal and use: no 32 bytes in it open the
    keyring, while the combined shares do (so the check would find a key if one were there)."""
    import shamir_mnemonic

    shares = init_shamir(tmp_path / "data")
    server = OpenKmsServer(tmp_path / "data").start()
    try:
        for share in shares[:3]:
            unseal(server, share)
        fresh_client(server).create_key()
    finally:
        server.stop()
    sealed, aad = sealed_keyring(tmp_path / "data")
    assert not opens_with_any_window(disk_files(tmp_path / "data"), sealed, aad)
    seal_key = shamir_mnemonic.combine_mnemonics(shares[2:])
    control = tmp_path / "control"
    control.write_bytes(b"x" * 7 + seal_key + b"y" * 5)
    assert opens_with_any_window([control], sealed, aad)
    # Nor do the seal key or the root key itself appear anywhere, raw or as hex.
    keyring = json.loads(AESGCM(seal_key).decrypt(sealed[1:13], sealed[13:], aad))
    secrets = [seal_key, *(bytes.fromhex(k) for k in keyring.values())]
    for path in disk_files(tmp_path / "data"):
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data and secret.hex().encode() not in data, path


def test_no_file_of_an_hsm_store_opens_the_keyring(token, tmp_path):
    assert init_pkcs11(tmp_path / "data", token, "seal-d").returncode == 0
    server = OpenKmsServer(tmp_path / "data", env={"SOFTHSM2_CONF": token["conf"]}).start()
    try:
        fresh_client(server).create_key()
    finally:
        server.stop()
    sealed, aad = sealed_keyring(tmp_path / "data")
    assert not opens_with_any_window(disk_files(tmp_path / "data"), sealed, aad)
