"""Neither key material nor plaintext is ever in the database or the server log."""

from __future__ import annotations

import base64
import os
import sqlite3
from pathlib import Path

from tests.key_material import unwrap_material
from tests.support import SECRET_ACCESS_KEY


def _database_bytes(server) -> bytes:
    """Every byte the database holds: the SQLite files, or every row of every table."""
    if server.database_url is None:
        chunks = []
        for path in server.data_dir.iterdir():
            if path.name.startswith("openkms.db"):
                chunks.append(path.read_bytes())
        return b"".join(chunks)
    import psycopg

    base, _, query = server.database_url.partition("?")
    schema = query.rsplit("%3D", 1)[-1]
    chunks = []
    with psycopg.connect(base) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            for row in connection.execute(f'SELECT * FROM "{schema}"."{table}"'):
                for value in row:
                    chunks.append(
                        bytes(value)
                        if isinstance(value, bytes | memoryview)
                        else str(value).encode()
                    )
    return b"\x00".join(chunks)


def _wrapped_materials(server) -> list[tuple[str, int, bytes]]:
    query = (
        "SELECT k.arn, m.version, m.wrapped_material FROM key_materials m "
        "JOIN kms_keys k ON k.key_id = m.key_id"
    )
    if server.database_url is None:
        with sqlite3.connect(server.data_dir / "openkms.db") as connection:
            return [(a, v, bytes(w)) for a, v, w in connection.execute(query)]
    import psycopg

    base, _, options = server.database_url.partition("?")
    schema = options.rsplit("%3D", 1)[-1]
    with psycopg.connect(base, options=f"-csearch_path={schema}") as connection:
        return [(a, v, bytes(w)) for a, v, w in connection.execute(query)]


def _forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret)]


def test_database_and_log_hold_no_key_material_plaintext_or_secret(own_server):
    own_server.start()
    kms = own_server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    plaintext = b"TOP-SECRET-" + os.urandom(24).hex().encode()
    blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
    data_key = kms.generate_data_key(KeyId=key_id, NumberOfBytes=32)["Plaintext"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    kms.generate_random(NumberOfBytes=64)
    kms.rotate_key_on_demand(KeyId=key_id)  # a second material, made by rotation
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    own_server.stop()

    root_key = (own_server.data_dir / "root.key").read_bytes()
    wrapped_rows = _wrapped_materials(own_server)
    materials = [
        unwrap_material(root_key, arn, version, wrapped) for arn, version, wrapped in wrapped_rows
    ]
    assert len(materials) == 2 and all(len(m) == 32 for m in materials)

    stored = _database_bytes(own_server)
    log = Path(own_server.log_path).read_bytes()
    # The scan really reads what is stored: the wrapped forms are there, the raw ones not.
    assert all(wrapped in stored for _, _, wrapped in wrapped_rows)
    assert key_id.encode() in stored
    secrets = [plaintext, data_key, SECRET_ACCESS_KEY.encode(), *materials]
    for secret in secrets:
        for form in _forms(secret):
            assert form not in stored
            assert form not in log


def test_no_private_key_mac_key_or_shared_secret_is_in_the_database_or_log(own_server):
    """Asymmetric and HMAC material, the private halves of data key pairs and the shared
    secrets of key agreement and encapsulation: stored only wrapped, logged never."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    own_server.start()
    kms = own_server.client()
    specs = [
        ("RSA_2048", "SIGN_VERIFY"),
        ("ECC_NIST_P256", "KEY_AGREEMENT"),
        ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"),
        ("ML_DSA_44", "SIGN_VERIFY"),
        ("ML_KEM_512", "ENCAPSULATE_DECAPSULATE"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ]
    keys = {
        spec: kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
        for spec, usage in specs
    }
    kms.sign(KeyId=keys["RSA_2048"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")
    kms.sign(KeyId=keys["ML_DSA_44"], Message=b"m", SigningAlgorithm="ML_DSA_SHAKE_256")
    kms.generate_mac(KeyId=keys["HMAC_256"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    peer = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    shared = kms.derive_shared_secret(
        KeyId=keys["ECC_NIST_P256"], KeyAgreementAlgorithm="ECDH", PublicKey=peer
    )["SharedSecret"]
    encapsulated = kms.encapsulate(KeyId=keys["ML_KEM_512"], EncapsulationAlgorithm="ML_KEM")
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    pair = kms.generate_data_key_pair(KeyId=symmetric, KeyPairSpec="ECC_NIST_P384")
    own_server.stop()

    root_key = (own_server.data_dir / "root.key").read_bytes()
    wrapped_rows = _wrapped_materials(own_server)
    materials = [unwrap_material(root_key, a, v, w) for a, v, w in wrapped_rows]
    assert len(materials) == len(specs) + 1
    stored = _database_bytes(own_server)
    log = Path(own_server.log_path).read_bytes()
    assert all(wrapped in stored for _, _, wrapped in wrapped_rows)
    secrets = [
        *materials,
        shared,
        encapsulated["SharedSecret"],
        pair["PrivateKeyPlaintext"],
        # The private scalar inside the PKCS#8, whatever encoding would carry it.
        serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
        .private_numbers()
        .private_value.to_bytes(48, "big"),
    ]
    for secret in secrets:
        for form in _forms(secret):
            assert form not in stored
            assert form not in log
