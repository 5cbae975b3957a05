"""Imported key material (BYOK), through boto3 against a running server.

The customer's side is done as a customer does it: the key material is wrapped with the
public key by ``cryptography`` or by the ``openssl`` command line, never by openkms code.
Time moves with ``time_travel`` (import tokens last 24 hours; material expires at ValidTo and
the server's lifecycle jobs, a pass every second, delete it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.e2e.kms_management import client, fails, near, new_key, refused_to_other_account
from tests.e2e.test_secrets_at_rest import _database_bytes, _forms
from tests.key_material import root_key_from
from tests.support import eventually, time_travel

DAY = 86_400.0
ALGORITHMS = (
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "RSA_AES_KEY_WRAP_SHA_1",
    "RSA_AES_KEY_WRAP_SHA_256",
)
SPECS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
NO_EXPIRY = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}


# -- the customer's side ----------------------------------------------------------------------


def wrap(public_key_der: bytes, algorithm: str, material: bytes) -> bytes:
    """EncryptedKeyMaterial as AWS's import guide makes it."""
    public_key = serialization.load_der_public_key(public_key_der)
    assert isinstance(public_key, rsa.RSAPublicKey)
    digest = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()  # noqa: S303
    oaep = padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)
    if algorithm.startswith("RSAES_OAEP"):
        return public_key.encrypt(material, oaep)
    aes_key = os.urandom(32)
    return public_key.encrypt(aes_key, oaep) + keywrap.aes_key_wrap_with_padding(aes_key, material)


def wrap_with_openssl(
    public_key_der: bytes, algorithm: str, material: bytes, workdir: Path
) -> bytes:
    """The same with the openssl command line, as AWS's guide shows it."""
    md = "sha1" if algorithm.endswith("SHA_1") else "sha256"
    (workdir / "public.der").write_bytes(public_key_der)
    (workdir / "material.bin").write_bytes(material)

    def rsa_oaep(source: str, target: str) -> bytes:
        subprocess.run(
            [
                "openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", "public.der",
                "-keyform", "DER", "-in", source, "-out", target,
                "-pkeyopt", "rsa_padding_mode:oaep",
                "-pkeyopt", f"rsa_oaep_md:{md}", "-pkeyopt", f"rsa_mgf1_md:{md}",
            ],
            cwd=workdir, check=True, capture_output=True,
        )  # fmt: skip
        return (workdir / target).read_bytes()

    if algorithm.startswith("RSAES_OAEP"):
        return rsa_oaep("material.bin", "material.enc")
    aes_key = os.urandom(32)
    (workdir / "aes.bin").write_bytes(aes_key)
    subprocess.run(
        [
            "openssl", "enc", "-id-aes256-wrap-pad", "-K", aes_key.hex(), "-iv", "A65959A6",
            "-in", "material.bin", "-out", "material.kwp",
        ],
        cwd=workdir, check=True, capture_output=True,
    )  # fmt: skip
    return rsa_oaep("aes.bin", "aes.enc") + (workdir / "material.kwp").read_bytes()


def material_id(key_id: str, material: bytes) -> str:
    """How openkms names imported material (docs/behaviour.md): a MAC keyed by the material."""
    label = b"openkms/imported-key-material-id/v1\x00"
    return hmac.new(material, label + key_id.encode(), hashlib.sha256).hexdigest()


def external_key(kms: Any) -> dict[str, Any]:
    return new_key(kms, Origin="EXTERNAL")


def parameters(
    kms: Any, key_id: str, algorithm: str = "RSAES_OAEP_SHA_256", spec: str = "RSA_2048"
) -> dict[str, Any]:
    return kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec
    )


def import_material(
    kms: Any, key_id: str, material: bytes, algorithm: str = "RSAES_OAEP_SHA_256", **params: Any
) -> dict[str, Any]:
    given = parameters(kms, key_id, algorithm)
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=given["ImportToken"],
        EncryptedKeyMaterial=wrap(given["PublicKey"], algorithm, material),
        **(params or NO_EXPIRY),
    )


def describe(kms: Any, key_id: str) -> dict[str, Any]:
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]


# -- a key for imported material --------------------------------------------------------------


def test_an_external_key_starts_pending_import_without_material(kms):
    key = external_key(kms)
    assert (key["Origin"], key["KeyState"], key["Enabled"]) == ("EXTERNAL", "PendingImport", False)
    assert "CurrentKeyMaterialId" not in key and "ExpirationModel" not in key
    metadata = describe(kms, key["KeyId"])
    assert metadata["KeyState"] == "PendingImport"
    assert "CurrentKeyMaterialId" not in metadata and "ValidTo" not in metadata
    pending = f"{key['Arn']} is pending import."
    fails(kms.encrypt, "KMSInvalidStateException", pending, KeyId=key["KeyId"], Plaintext=b"x")
    fails(
        kms.generate_data_key,
        "KMSInvalidStateException",
        pending,
        KeyId=key["KeyId"],
        NumberOfBytes=32,
    )
    # Deleting material a key never had is allowed and changes nothing (AWS: "no effect").
    assert kms.delete_imported_key_material(KeyId=key["KeyId"])["KeyId"] == key["Arn"]
    assert describe(kms, key["KeyId"])["KeyState"] == "PendingImport"


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_material_wrapped_with_every_algorithm_and_wrapping_key_spec_imports(kms, algorithm, spec):
    key = external_key(kms)
    given = parameters(kms, key["KeyId"], algorithm, spec)
    assert given["KeyId"] == key["Arn"]
    public_key = serialization.load_der_public_key(given["PublicKey"])
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == SPECS[spec]
    assert near(given["ParametersValidTo"], dt.datetime.now(dt.UTC) + dt.timedelta(days=1))

    material = os.urandom(32)
    imported = kms.import_key_material(
        KeyId=key["KeyId"],
        ImportToken=given["ImportToken"],
        EncryptedKeyMaterial=wrap(given["PublicKey"], algorithm, material),
        **NO_EXPIRY,
    )
    expected_id = material_id(key["KeyId"], material)
    assert (imported["KeyId"], imported["KeyMaterialId"]) == (key["Arn"], expected_id)
    metadata = describe(kms, key["KeyId"])
    assert (metadata["KeyState"], metadata["Enabled"]) == ("Enabled", True)
    assert metadata["CurrentKeyMaterialId"] == expected_id
    assert metadata["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "ValidTo" not in metadata
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"imported")["CiphertextBlob"]
    decrypted = kms.decrypt(CiphertextBlob=blob)
    assert (decrypted["Plaintext"], decrypted["KeyMaterialId"]) == (b"imported", expected_id)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_material_wrapped_by_the_openssl_command_line_imports(kms, tmp_path, algorithm):
    key = external_key(kms)
    given = parameters(kms, key["KeyId"], algorithm, "RSA_3072")
    material = os.urandom(32)
    imported = kms.import_key_material(
        KeyId=key["KeyId"],
        ImportToken=given["ImportToken"],
        EncryptedKeyMaterial=wrap_with_openssl(given["PublicKey"], algorithm, material, tmp_path),
        **NO_EXPIRY,
    )
    assert imported["KeyMaterialId"] == material_id(key["KeyId"], material)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"openssl")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"openssl"


# -- keeping a copy: expiry, deletion, re-import ----------------------------------------------


def test_expired_material_is_deleted_and_the_same_material_brings_the_old_ciphertexts_back(
    server, kms
):
    key = external_key(kms)
    material = os.urandom(32)  # the customer's copy, kept to import again
    valid_to = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    imported = import_material(
        kms,
        key["KeyId"],
        material,
        ValidTo=valid_to,
        KeyMaterialDescription="first import",
    )
    metadata = describe(kms, key["KeyId"])
    assert (metadata["KeyState"], metadata["ExpirationModel"]) == (
        "Enabled",
        "KEY_MATERIAL_EXPIRES",
    )
    assert near(metadata["ValidTo"], valid_to, 1)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"keep a copy")["CiphertextBlob"]

    with time_travel(DAY + 60, server):

        def expired() -> dict[str, Any]:
            metadata = describe(kms, key["KeyId"])
            assert metadata["KeyState"] == "PendingImport"
            return metadata

        metadata = eventually(expired)
        # As AWS: the current material's id stays, its expiry is gone.
        assert metadata["CurrentKeyMaterialId"] == imported["KeyMaterialId"]
        assert "ExpirationModel" not in metadata and "ValidTo" not in metadata
        pending = f"{key['Arn']} is pending import."
        fails(kms.decrypt, "KMSInvalidStateException", pending, CiphertextBlob=blob)
        fails(kms.encrypt, "KMSInvalidStateException", pending, KeyId=key["KeyId"], Plaintext=b"x")

        # Import the same material again (ImportType defaults to EXISTING_KEY_MATERIAL now).
        again = import_material(kms, key["KeyId"], material)
        assert again["KeyMaterialId"] == imported["KeyMaterialId"]
        metadata = describe(kms, key["KeyId"])
        assert (metadata["KeyState"], metadata["ExpirationModel"]) == (
            "Enabled",
            "KEY_MATERIAL_DOES_NOT_EXPIRE",
        )
        decrypted = kms.decrypt(CiphertextBlob=blob)
        assert (decrypted["Plaintext"], decrypted["KeyMaterialId"]) == (
            b"keep a copy",
            imported["KeyMaterialId"],
        )
        (entry,) = kms.list_key_rotations(
            KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL"
        )["Rotations"]
        # The description of the earlier import is kept when the re-import gives none.
        assert (entry["ImportState"], entry["KeyMaterialDescription"]) == (
            "IMPORTED",
            "first import",
        )
    assert server.log().count(f"of key {key['KeyId']}: expired") == 1


def test_deleted_material_can_be_imported_again_under_its_id(kms):
    key = external_key(kms)
    material = os.urandom(32)
    imported = import_material(kms, key["KeyId"], material)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"deleted")["CiphertextBlob"]

    deleted = kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert (deleted["KeyId"], deleted["KeyMaterialId"]) == (key["Arn"], imported["KeyMaterialId"])
    metadata = describe(kms, key["KeyId"])
    assert (metadata["KeyState"], metadata["CurrentKeyMaterialId"]) == (
        "PendingImport",
        imported["KeyMaterialId"],
    )
    fails(
        kms.decrypt,
        "KMSInvalidStateException",
        f"{key['Arn']} is pending import.",
        CiphertextBlob=blob,
    )
    # Again, by its id: nothing left to delete, and nothing changes.
    kms.delete_imported_key_material(KeyId=key["KeyId"], KeyMaterialId=imported["KeyMaterialId"])

    again = import_material(
        kms,
        key["KeyId"],
        material,
        "RSA_AES_KEY_WRAP_SHA_256",
        ImportType="EXISTING_KEY_MATERIAL",
        KeyMaterialId=imported["KeyMaterialId"],
        **NO_EXPIRY,
    )
    assert again["KeyMaterialId"] == imported["KeyMaterialId"]
    assert describe(kms, key["KeyId"])["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"deleted"


def test_a_disabled_key_whose_material_is_deleted_is_pending_import_then_enabled_on_reimport(kms):
    key = external_key(kms)
    material = os.urandom(32)
    import_material(kms, key["KeyId"], material)
    kms.disable_key(KeyId=key["KeyId"])
    kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert describe(kms, key["KeyId"])["KeyState"] == "PendingImport"
    import_material(kms, key["KeyId"], material)
    assert describe(kms, key["KeyId"])["KeyState"] == "Enabled"


# -- new material and on-demand rotation ------------------------------------------------------


def test_new_material_waits_for_on_demand_rotation_and_every_material_still_decrypts(kms):
    key = external_key(kms)
    first, second, third = (os.urandom(32) for _ in range(3))
    first_id = import_material(kms, key["KeyId"], first)["KeyMaterialId"]
    fails(
        kms.rotate_key_on_demand,
        "KMSInvalidStateException",
        f"No available key material pending rotation for the key: {key['Arn']}.",
        KeyId=key["KeyId"],
    )
    old_blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"old")["CiphertextBlob"]

    second_id = import_material(
        kms,
        key["KeyId"],
        second,
        ImportType="NEW_KEY_MATERIAL",
        KeyMaterialDescription="second",
        **NO_EXPIRY,
    )["KeyMaterialId"]
    assert second_id == material_id(key["KeyId"], second) != first_id
    assert describe(kms, key["KeyId"])["CurrentKeyMaterialId"] == first_id
    pending_blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"pending")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=pending_blob)["KeyMaterialId"] == first_id
    fails(
        kms.import_key_material,
        "KMSInvalidStateException",
        f"New key material (id: {material_id(key['KeyId'], third)}) cannot be imported into "
        f"KMS key {key['Arn']}, because another key material (id: {second_id}) is pending "
        "rotation.",
        **_import_request(kms, key["KeyId"], third, ImportType="NEW_KEY_MATERIAL", **NO_EXPIRY),
    )

    assert kms.rotate_key_on_demand(KeyId=key["KeyId"])["KeyId"] == key["Arn"]
    assert describe(kms, key["KeyId"])["CurrentKeyMaterialId"] == second_id
    new_blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"new")["CiphertextBlob"]
    for blob, plaintext, used in (
        (old_blob, b"old", first_id),
        (pending_blob, b"pending", first_id),
        (new_blob, b"new", second_id),
    ):
        decrypted = kms.decrypt(CiphertextBlob=blob)
        assert (decrypted["Plaintext"], decrypted["KeyMaterialId"]) == (plaintext, used)

    third_id = import_material(
        kms, key["KeyId"], third, ImportType="NEW_KEY_MATERIAL", **NO_EXPIRY
    )["KeyMaterialId"]
    everything = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")
    entries = {e["KeyMaterialId"]: e for e in everything["Rotations"]}
    assert [e["KeyMaterialId"] for e in everything["Rotations"]] == [first_id, second_id, third_id]
    assert {i: e["KeyMaterialState"] for i, e in entries.items()} == {
        first_id: "NON_CURRENT",
        second_id: "CURRENT",
        third_id: "PENDING_ROTATION",
    }
    assert all(e["ImportState"] == "IMPORTED" for e in entries.values())
    assert all(e["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" for e in entries.values())
    assert entries[second_id]["RotationType"] == "ON_DEMAND"
    assert entries[second_id]["KeyMaterialDescription"] == "second"
    assert "RotationDate" not in entries[first_id] and "RotationDate" not in entries[third_id]
    rotations = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert [e["KeyMaterialId"] for e in rotations] == [second_id]

    # Pending material is not yet the key's: deleting it leaves the key Enabled.
    kms.delete_imported_key_material(KeyId=key["KeyId"], KeyMaterialId=third_id)
    assert describe(kms, key["KeyId"])["KeyState"] == "Enabled"
    entries = {
        e["KeyMaterialId"]: e
        for e in kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")[
            "Rotations"
        ]
    }
    # It never became current (no ciphertext used it), so it goes altogether.
    assert third_id not in entries and set(entries) == {first_id, second_id}
    fails(
        kms.rotate_key_on_demand,
        "KMSInvalidStateException",
        f"No available key material pending rotation for the key: {key['Arn']}.",
        KeyId=key["KeyId"],
    )
    # Deleting a material the key is built on makes it unusable.
    kms.delete_imported_key_material(KeyId=key["KeyId"], KeyMaterialId=first_id)
    assert describe(kms, key["KeyId"])["KeyState"] == "PendingImport"
    fails(
        kms.rotate_key_on_demand,
        "KMSInvalidStateException",
        f"{key['Arn']} is pending import.",
        KeyId=key["KeyId"],
    )


def test_automatic_rotation_stays_refused_for_imported_material(kms):
    key = external_key(kms)
    import_material(kms, key["KeyId"], os.urandom(32))
    for call in (kms.enable_key_rotation, kms.disable_key_rotation, kms.get_key_rotation_status):
        fails(
            call,
            "UnsupportedOperationException",
            f"{key['Arn']} origin is EXTERNAL which is not valid for this operation.",
            KeyId=key["KeyId"],
        )


def _import_request(kms: Any, key_id: str, material: bytes, **params: Any) -> dict[str, Any]:
    given = parameters(kms, key_id)
    return {
        "KeyId": key_id,
        "ImportToken": given["ImportToken"],
        "EncryptedKeyMaterial": wrap(given["PublicKey"], "RSAES_OAEP_SHA_256", material),
        **params,
    }


# -- refusals: each changes nothing -----------------------------------------------------------


def _unchanged(kms: Any, key_id: str, expected: dict[str, Any]) -> None:
    metadata = describe(kms, key_id)
    assert {k: metadata.get(k) for k in expected} == expected
    rotations = kms.list_key_rotations if expected.get("KeyState") == "Enabled" else None
    if rotations is not None:
        entries = rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
        assert [e["KeyMaterialId"] for e in entries] == [expected["CurrentKeyMaterialId"]]


def test_an_expired_import_token_is_refused(server, kms):
    key = external_key(kms)
    given = parameters(kms, key["KeyId"])
    encrypted = wrap(given["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    with time_travel(DAY + 60, server):
        fails(
            kms.import_key_material,
            "ExpiredImportTokenException",
            KeyId=key["KeyId"],
            ImportToken=given["ImportToken"],
            EncryptedKeyMaterial=encrypted,
            **NO_EXPIRY,
        )
    _unchanged(kms, key["KeyId"], {"KeyState": "PendingImport", "CurrentKeyMaterialId": None})
    # Within its 24 hours the same token works.
    with time_travel(DAY - 120, server):
        kms.import_key_material(
            KeyId=key["KeyId"],
            ImportToken=given["ImportToken"],
            EncryptedKeyMaterial=encrypted,
            **NO_EXPIRY,
        )
    assert describe(kms, key["KeyId"])["KeyState"] == "Enabled"


def test_a_token_of_another_key_or_a_garbled_one_is_refused(kms):
    key, other = external_key(kms), external_key(kms)
    mine, theirs = parameters(kms, key["KeyId"]), parameters(kms, other["KeyId"])
    material = os.urandom(32)
    invalid = "The import token is invalid or is associated with a different KMS key."
    garbled = bytearray(mine["ImportToken"])
    garbled[len(garbled) // 2] ^= 1
    for token, public_key in (
        (theirs["ImportToken"], theirs["PublicKey"]),
        (bytes(garbled), mine["PublicKey"]),
        (os.urandom(600), mine["PublicKey"]),
    ):
        fails(
            kms.import_key_material,
            "InvalidImportTokenException",
            invalid,
            KeyId=key["KeyId"],
            ImportToken=token,
            EncryptedKeyMaterial=wrap(public_key, "RSAES_OAEP_SHA_256", material),
            **NO_EXPIRY,
        )
    _unchanged(kms, key["KeyId"], {"KeyState": "PendingImport", "CurrentKeyMaterialId": None})
    _unchanged(kms, other["KeyId"], {"KeyState": "PendingImport", "CurrentKeyMaterialId": None})


@pytest.mark.parametrize("algorithm", ["RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"])
def test_material_that_does_not_unwrap_is_refused(kms, algorithm):
    key = external_key(kms)
    given = parameters(kms, key["KeyId"], algorithm)
    stranger = rsa.generate_private_key(65537, 2048).public_key()
    stranger_der = stranger.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = wrap(given["PublicKey"], algorithm, os.urandom(32))
    other_hash = algorithm.replace("SHA_256", "SHA_1")
    for encrypted in (
        wrap(stranger_der, algorithm, os.urandom(32)),  # another wrapping key
        wrap(given["PublicKey"], other_hash, os.urandom(32)),  # another algorithm
        good[:-1],
        good + b"\x00",
    ):
        fails(
            kms.import_key_material,
            "InvalidCiphertextException",
            KeyId=key["KeyId"],
            ImportToken=given["ImportToken"],
            EncryptedKeyMaterial=encrypted,
            **NO_EXPIRY,
        )
    fails(
        kms.import_key_material,
        "ValidationException",
        "The key material of a SYMMETRIC_DEFAULT key must be 256 bits (32 bytes).",
        KeyId=key["KeyId"],
        ImportToken=given["ImportToken"],
        EncryptedKeyMaterial=wrap(given["PublicKey"], algorithm, os.urandom(16)),
        **NO_EXPIRY,
    )
    _unchanged(kms, key["KeyId"], {"KeyState": "PendingImport", "CurrentKeyMaterialId": None})


def test_other_material_where_the_key_expects_material_it_had_is_refused(kms):
    key = external_key(kms)
    material, other = os.urandom(32), os.urandom(32)
    material_of_key = import_material(kms, key["KeyId"], material)["KeyMaterialId"]
    state = {"KeyState": "Enabled", "CurrentKeyMaterialId": material_of_key}
    for params in (
        {},  # EXISTING_KEY_MATERIAL by default once the key has had material
        {"ImportType": "EXISTING_KEY_MATERIAL"},
        {"ImportType": "EXISTING_KEY_MATERIAL", "KeyMaterialId": material_of_key},
    ):
        fails(
            kms.import_key_material,
            "IncorrectKeyMaterialException",
            **_import_request(kms, key["KeyId"], other, **params, **NO_EXPIRY),
        )
        _unchanged(kms, key["KeyId"], state)
    # The right material under another id; the same material as "new".
    for params in (
        {"ImportType": "EXISTING_KEY_MATERIAL", "KeyMaterialId": "ab" * 32},
        {"ImportType": "NEW_KEY_MATERIAL"},
    ):
        fails(
            kms.import_key_material,
            "IncorrectKeyMaterialException",
            **_import_request(kms, key["KeyId"], material, **params, **NO_EXPIRY),
        )
        _unchanged(kms, key["KeyId"], state)
    # A key that never had material expects new material.
    fresh = external_key(kms)
    fails(
        kms.import_key_material,
        "IncorrectKeyMaterialException",
        **_import_request(
            kms, fresh["KeyId"], material, ImportType="EXISTING_KEY_MATERIAL", **NO_EXPIRY
        ),
    )
    fails(
        kms.delete_imported_key_material,
        "NotFoundException",
        KeyId=key["KeyId"],
        KeyMaterialId="cd" * 32,
    )
    _unchanged(kms, key["KeyId"], state)


def _valid_to_cases() -> list[Any]:
    now = dt.datetime.now(dt.UTC)
    must = "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
    return [
        pytest.param({}, must, id="no-expiry-fields"),
        pytest.param({"ExpirationModel": "KEY_MATERIAL_EXPIRES"}, must, id="expires-no-date"),
        pytest.param(
            {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE", "ValidTo": now + dt.timedelta(1)},
            "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE",
            id="date-without-expiry",
        ),
        pytest.param(
            {"ValidTo": now - dt.timedelta(minutes=5)},
            "The validTo date must be a future date and time.",
            id="past",
        ),
        pytest.param(
            {"ValidTo": now + dt.timedelta(days=366)},
            "The validTo date must be no more than 365 days from the date of the request.",
            id="too-far",
        ),
        pytest.param(
            {"ImportType": "NEW_KEY_MATERIAL", "KeyMaterialId": "ab" * 32, **NO_EXPIRY},
            "A KeyMaterialId cannot be specified when the ImportType is NEW_KEY_MATERIAL",
            id="new-with-id",
        ),
    ]


@pytest.mark.parametrize(("params", "message"), _valid_to_cases())
def test_bad_expiry_and_import_type_combinations_are_refused(kms, params, message):
    key = external_key(kms)
    fails(
        kms.import_key_material,
        "ValidationException",
        message,
        **_import_request(kms, key["KeyId"], os.urandom(32), **params),
    )
    _unchanged(kms, key["KeyId"], {"KeyState": "PendingImport", "CurrentKeyMaterialId": None})


def test_a_valid_to_up_to_a_year_ahead_is_accepted(kms):
    key = external_key(kms)
    valid_to = dt.datetime.now(dt.UTC) + dt.timedelta(days=364)
    import_material(kms, key["KeyId"], os.urandom(32), ValidTo=valid_to)
    metadata = describe(kms, key["KeyId"])
    assert (metadata["ExpirationModel"], near(metadata["ValidTo"], valid_to, 1)) == (
        "KEY_MATERIAL_EXPIRES",
        True,
    )


@pytest.mark.parametrize(
    ("algorithm", "spec", "code"),
    [
        ("RSAES_PKCS1_V1_5", "RSA_2048", "ValidationException"),
        ("SM2PKE", "SM2", "UnsupportedOperationException"),
        ("RSAES_OAEP_SHA_256", "SM2", "UnsupportedOperationException"),
        ("SM2PKE", "RSA_2048", "UnsupportedOperationException"),
    ],
)
def test_retired_and_china_only_wrapping_is_refused(kms, algorithm, spec, code):
    key = external_key(kms)
    fails(
        kms.get_parameters_for_import,
        code,
        KeyId=key["KeyId"],
        WrappingAlgorithm=algorithm,
        WrappingKeySpec=spec,
    )


def test_keys_whose_material_openkms_made_take_no_import(kms):
    key = new_key(kms)
    message = f"{key['Arn']} origin is AWS_KMS which is not valid for this operation."
    fails(
        kms.get_parameters_for_import,
        "UnsupportedOperationException",
        message,
        KeyId=key["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    # A token of an EXTERNAL key changes nothing for it either.
    donor = external_key(kms)
    fails(
        kms.import_key_material,
        "UnsupportedOperationException",
        message,
        **_import_request(kms, donor["KeyId"], os.urandom(32), **NO_EXPIRY) | {"KeyId": key["Arn"]},
    )
    fails(
        kms.delete_imported_key_material,
        "UnsupportedOperationException",
        message,
        KeyId=key["KeyId"],
    )
    _unchanged(
        kms,
        key["KeyId"],
        {"KeyState": "Enabled", "CurrentKeyMaterialId": key["CurrentKeyMaterialId"]},
    )


@pytest.mark.parametrize(
    ("operation", "action"),
    [
        ("get_parameters_for_import", "kms:GetParametersForImport"),
        ("import_key_material", "kms:ImportKeyMaterial"),
        ("delete_imported_key_material", "kms:DeleteImportedKeyMaterial"),
    ],
)
def test_another_account_cannot_import_or_delete_material(
    server, kms, other_account, operation, action
):
    key = external_key(kms)
    material = os.urandom(32)
    import_material(kms, key["KeyId"], material)
    request = _import_request(kms, key["KeyId"], material, **NO_EXPIRY)
    params = {
        "get_parameters_for_import": {
            "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
            "WrappingKeySpec": "RSA_2048",
        },
        "import_key_material": {k: v for k, v in request.items() if k != "KeyId"},
        "delete_imported_key_material": {},
    }[operation]
    other = client(server, other_account)
    refused_to_other_account(
        getattr(other, operation), other_account["AccountId"], key, action, **params
    )
    assert describe(kms, key["KeyId"])["KeyState"] == "Enabled"


# -- secrets ----------------------------------------------------------------------------------


def test_neither_the_material_nor_the_wrapping_private_key_is_stored_or_logged(own_server):
    server = own_server.start()
    kms = client(server)
    key = external_key(kms)
    material = os.urandom(32)
    given = parameters(kms, key["KeyId"], "RSA_AES_KEY_WRAP_SHA_256")
    kms.import_key_material(
        KeyId=key["KeyId"],
        ImportToken=given["ImportToken"],
        EncryptedKeyMaterial=wrap(given["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", material),
        ValidTo=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
    )
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"scan")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"scan"
    kms.delete_imported_key_material(KeyId=key["KeyId"])
    import_material(kms, key["KeyId"], material)
    server.stop()

    # The test's own way into the token (never the server's): it is the root key's wrapping
    # of a header and the PKCS#8 private key, bound to the key's ARN.
    root = root_key_from((server.data_dir / "root.key").read_bytes())
    payload = root.unwrap(
        given["ImportToken"], b"openkms/import-token/v1\x00" + key["Arn"].encode()
    )
    private_der = payload[11:]
    private_key = serialization.load_der_private_key(private_der, None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    numbers = private_key.private_numbers()
    prime = numbers.p.to_bytes((numbers.p.bit_length() + 7) // 8, "big")

    stored = _database_bytes(server)
    log = server.log_path.read_bytes()
    assert (
        key["KeyId"].encode() in stored and material_id(key["KeyId"], material).encode() in stored
    )
    for secret in (material, private_der, prime, given["ImportToken"]):
        for form in _forms(secret):
            assert form not in stored
            assert form not in log
