"""Imported material meets deletion and rotation: the key never ends up enabled without its
material, and material that never became current leaves no trace. The material is wrapped
here, on the client's side, with ``cryptography`` (never with openkms code)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from openkms.clock import ManualClock
from tests.inprocess.conftest import Kms

DAY = 86_400
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _import(kms: Kms, key_id: str, material: bytes, **params: Any) -> dict[str, Any]:
    given = kms.call(
        "GetParametersForImport",
        KeyId=key_id,
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    public_key = serialization.load_der_public_key(given["PublicKey"])
    params.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return kms.call(
        "ImportKeyMaterial",
        KeyId=key_id,
        ImportToken=given["ImportToken"],
        EncryptedKeyMaterial=public_key.encrypt(material, _OAEP),  # type: ignore[union-attr]
        **params,
    )


def _external_key(kms: Kms) -> dict[str, Any]:
    return kms.create_key(Origin="EXTERNAL")


def _pending_import_refusals(kms: Kms, key: dict[str, Any]) -> None:
    assert kms.key_state(key["KeyId"]) == "PendingImport"
    for operation in ("EnableKey", "Encrypt"):
        params = {"Plaintext": b"x"} if operation == "Encrypt" else {}
        with kms.refused("KMSInvalidStateException", f"{key['Arn']} is pending import."):
            kms.call(operation, KeyId=key["KeyId"], **params)


def test_a_cancelled_deletion_of_a_key_never_imported_is_pending_import(kms: Kms) -> None:
    key = _external_key(kms)
    kms.call("ScheduleKeyDeletion", KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.call("CancelKeyDeletion", KeyId=key["KeyId"])
    _pending_import_refusals(kms, key)
    _import(kms, key["KeyId"], os.urandom(32))
    assert kms.key_state(key["KeyId"]) == "Enabled"


def test_material_deleted_while_pending_deletion_leaves_the_key_pending_import(kms: Kms) -> None:
    key = _external_key(kms)
    material = os.urandom(32)
    _import(kms, key["KeyId"], material)
    blob = kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"kept")["CiphertextBlob"]
    kms.call("ScheduleKeyDeletion", KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.call("DeleteImportedKeyMaterial", KeyId=key["KeyId"])
    assert kms.key_state(key["KeyId"]) == "PendingDeletion"
    kms.call("CancelKeyDeletion", KeyId=key["KeyId"])
    _pending_import_refusals(kms, key)
    _import(kms, key["KeyId"], material)
    # Re-imported: Enabled at once (the key was not Disabled by the user).
    assert kms.key_state(key["KeyId"]) == "Enabled"
    assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_material_expired_while_pending_deletion_leaves_the_key_pending_import(
    kms: Kms, clock: ManualClock
) -> None:
    key = _external_key(kms)
    valid_to = clock.now().replace(microsecond=0) + dt.timedelta(days=10)
    _import(
        kms,
        key["KeyId"],
        os.urandom(32),
        ExpirationModel="KEY_MATERIAL_EXPIRES",
        ValidTo=valid_to.timestamp(),
    )
    kms.call("ScheduleKeyDeletion", KeyId=key["KeyId"], PendingWindowInDays=30)
    clock.advance(11 * DAY)
    assert kms.runtime.jobs.run_once().expired == 1
    kms.call("CancelKeyDeletion", KeyId=key["KeyId"])
    _pending_import_refusals(kms, key)


def test_a_key_with_its_material_cancelled_out_of_deletion_is_disabled(kms: Kms) -> None:
    key = _external_key(kms)
    _import(kms, key["KeyId"], os.urandom(32))
    kms.call("ScheduleKeyDeletion", KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.call("CancelKeyDeletion", KeyId=key["KeyId"])
    assert kms.key_state(key["KeyId"]) == "Disabled"


def test_deleted_pending_material_is_gone_and_new_material_may_follow(kms: Kms) -> None:
    key = _external_key(kms)
    _import(kms, key["KeyId"], os.urandom(32))
    pending = _import(kms, key["KeyId"], os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    kms.call(
        "DeleteImportedKeyMaterial", KeyId=key["KeyId"], KeyMaterialId=pending["KeyMaterialId"]
    )
    assert kms.key_state(key["KeyId"]) == "Enabled"
    listed = kms.call("ListKeyRotations", KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [m["KeyMaterialState"] for m in listed["Rotations"]] == ["CURRENT"]
    with kms.refused(
        "KMSInvalidStateException",
        f"No available key material pending rotation for the key: {key['Arn']}.",
    ):
        kms.call("RotateKeyOnDemand", KeyId=key["KeyId"])
    following = _import(kms, key["KeyId"], os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    kms.call("RotateKeyOnDemand", KeyId=key["KeyId"])
    current = kms.call("DescribeKey", KeyId=key["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
    assert current == following["KeyMaterialId"]
