"""The operation × key-state matrix, against AWS's documented table.

EXPECTED below is written from the AWS KMS developer guide, "Key states of AWS KMS keys"
(the key state table and its footnotes [1]-[15]), not from openkms's own STATE_TABLE: a test
that read the table it checks could never fail. Each cell is one test: a real key made through
CreateKey, put into the state directly through the repository (a key with imported material
or in a custom key store cannot be made yet, so PendingImport, Unavailable, Creating, … are
set, not reached), then the operation through the dispatcher.

Choices where the guide's cell is conditional, for a symmetric AWS_KMS-origin key:

* Cryptographic operations on a key pending deletion: the guide says "[2] or [3]"
  (DisabledException or KMSInvalidStateException, "<key ARN> is pending deletion"). Responses
  quoted from real AWS (Decrypt) are KMSInvalidStateException, so that is what is expected.
* PendingReplicaDeletion shares the PendingDeletion column ("Pending deletion / Pending replica
  deletion"); footnote [3]'s text is "<key ARN> is pending deletion (or pending replica
  deletion)." The code is certain; the exact words for a key pending replica deletion are not
  pinned by any source, so either reading of the footnote is accepted for that state.
* EnableKey and DisableKey on an Unavailable key: "[12] The operation succeeds, but the key
  state of the KMS key does not change until it becomes available." So the call succeeds and
  DescribeKey still says Unavailable.
* UpdateAlias: "[10] If the source KMS key is pending deletion, the command succeeds. If the
  destination KMS key is pending deletion, the command fails with KMSInvalidStateException".
  Both sides are tested: the new target (the row) and the old target (always allowed).
* ReEncrypt: the row applies to the source key and to the destination key; both are tested.
* CreateAlias / DeleteAlias / ListAliases: the key is the alias's target (TargetKeyId, the
  alias's current key, the KeyId filter).
* Rotation operations in the Pending import column: "[6] ... UnsupportedOperationException"
  with "<key ARN> origin is EXTERNAL which is not valid for this operation." Only keys with
  imported material are ever PendingImport; here the key is put there directly.
* RotateKeyOnDemand on a key pending import and on an Unavailable key: the guide's cell is
  conditional ("succeeds only if ..."); for a key whose material openkms made it succeeds.

The import operations (GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial)
are tested on their own subject, an EXTERNAL-origin key with imported material (EXTERNAL_EXPECTED
below), because on any other key the guide's footnote [9] applies in every state ("If the KMS
key cannot or does not have imported key material: UnsupportedOperationException"). Readings:

* Enabled and Disabled: "? [9]": [9] does not apply to a key with imported material, so the
  operations succeed (a disabled key takes material and stays Disabled).
* Pending deletion: GetParametersForImport and ImportKeyMaterial are "[8] or [9]"; footnote
  [8], "If the KMS key has imported key material: KMSInvalidStateException", with [3]'s text
  "<key ARN> is pending deletion.". DeleteImportedKeyMaterial is "X [9]", which again does not
  apply; the API reference says "When the specified KMS key is in the PendingDeletion state,
  this operation does not change the KMS key's state", so it succeeds and the key stays
  PendingDeletion.
* Pending import: all three succeed (DeleteImportedKeyMaterial with "no effect"). Here the
  state is reached for real (the material is deleted), not set.
* Unavailable, Creating, Updating: not tested for the import operations. Unavailable keys are
  keys in custom key stores, which are never EXTERNAL-origin; Creating and Updating are
  multi-Region replica states openkms (no multi-Region keys) cannot reach, and the current
  guide's cells for them could not be read for these rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from openkms.errors import KmsError
from tests.inprocess.conftest import Kms, assert_error, set_state

STATES = (
    "Enabled",
    "Disabled",
    "PendingDeletion",
    "PendingReplicaDeletion",
    "PendingImport",
    "Unavailable",
    "Creating",
    "Updating",
)

# Outcomes, with AWS's messages (footnote numbers from the guide).
OK = "OK"  # ✓
KEPT = "OK, state kept"  # ✓ [12]: succeeds, the key stays Unavailable
DIS = ("DisabledException", "is disabled.")  # [1]
DEL = ("KMSInvalidStateException", "is pending deletion.")  # [3], [10] (and [2]/[3], see above)
IMP = ("KMSInvalidStateException", "is pending import.")  # [5]
UNA = ("KMSInvalidStateException", "is unavailable.")  # [11]
CRE = ("KMSInvalidStateException", "is creating.")  # [14]
UPD = ("KMSInvalidStateException", "is updating.")  # [15]
NPD = ("KMSInvalidStateException", "is not pending deletion.")  # [4]
EXT = ("UnsupportedOperationException", "origin is EXTERNAL which is not valid for this operation.")

NA = "not applicable"  # the guide's cell is empty: such keys cannot be in that state
_CRYPTO = (OK, DIS, DEL, IMP, UNA, CRE, OK)
# Asymmetric and HMAC keys cannot be in custom key stores, so never Unavailable.
_ASYMMETRIC = (OK, DIS, DEL, IMP, NA, CRE, OK)
_ALWAYS = (OK, OK, OK, OK, OK, OK, OK)
_NOT_PENDING_DELETION = (OK, OK, DEL, OK, OK, OK, OK)
_ENABLE_DISABLE = (OK, OK, DEL, IMP, KEPT, CRE, UPD)

# AWS's columns: Enabled, Disabled, Pending deletion / Pending replica deletion, Pending
# import, Unavailable, Creating, Updating.
EXPECTED: dict[str, tuple[Any, ...]] = {
    "DescribeKey": _ALWAYS,
    "EnableKey": _ENABLE_DISABLE,
    "DisableKey": _ENABLE_DISABLE,
    "UpdateKeyDescription": _NOT_PENDING_DELETION,
    "Encrypt": _CRYPTO,
    "Decrypt": _CRYPTO,
    "ReEncrypt (source)": _CRYPTO,
    "ReEncrypt (destination)": _CRYPTO,
    "GenerateDataKey": _CRYPTO,
    "GenerateDataKeyWithoutPlaintext": _CRYPTO,
    "TagResource": _NOT_PENDING_DELETION,
    "UntagResource": _NOT_PENDING_DELETION,
    "ListResourceTags": _ALWAYS,
    "CreateAlias (target)": _NOT_PENDING_DELETION,
    "UpdateAlias (new target)": _NOT_PENDING_DELETION,  # [10]
    "UpdateAlias (old target)": _ALWAYS,  # [10]
    "DeleteAlias": _ALWAYS,
    "ListAliases (KeyId filter)": _ALWAYS,
    "ScheduleKeyDeletion": (OK, OK, DEL, OK, OK, OK, UPD),
    "CancelKeyDeletion": (NPD, NPD, OK, NPD, NPD, NPD, NPD),
    "EnableKeyRotation": (OK, DIS, DEL, EXT, OK, CRE, OK),
    "DisableKeyRotation": (OK, DIS, DEL, EXT, OK, CRE, OK),
    "GetKeyRotationStatus": (OK, OK, OK, EXT, OK, OK, OK),
    "ListKeyRotations": (OK, OK, OK, EXT, OK, OK, OK),
    "RotateKeyOnDemand": (OK, DIS, DEL, OK, OK, CRE, UPD),
    "GetPublicKey": _ASYMMETRIC,
    "Sign": _ASYMMETRIC,
    "Verify": _ASYMMETRIC,
    "GenerateMac": _ASYMMETRIC,
    "VerifyMac": _ASYMMETRIC,
    "DeriveSharedSecret": _ASYMMETRIC,
    "Encapsulate": _ASYMMETRIC,
    "Decapsulate": _ASYMMETRIC,
    # Run with a symmetric key, which can be Unavailable.
    "GenerateDataKeyPair": _CRYPTO,
    "GenerateDataKeyPairWithoutPlaintext": _CRYPTO,
    "CreateGrant": (OK, DIS, DEL, IMP, OK, CRE, OK),
    "ListGrants": _ALWAYS,
    "RetireGrant": _ALWAYS,
    "RevokeGrant": _ALWAYS,
}

_COLUMN = {
    "Enabled": 0,
    "Disabled": 1,
    "PendingDeletion": 2,
    "PendingReplicaDeletion": 2,
    "PendingImport": 3,
    "Unavailable": 4,
    "Creating": 5,
    "Updating": 6,
}

# Cells where openkms answers otherwise than the guide (strict: the test fails once fixed).
DISAGREEMENTS: dict[tuple[str, str], str] = {
    # (operation, state): "why", e.g. ("EnableKey", "Unavailable"): "footnote [12]: …"
}


# -- the operations -------------------------------------------------------------------------


@dataclass
class Subject:
    """The key under test (made Enabled), and whatever the operation needs besides it."""

    kms: Kms
    key_id: str
    arn: str
    state: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def alias(self) -> str:
        return f"alias/cell-{self.key_id}"


@dataclass(frozen=True)
class Operation:
    # Runs while the key is still Enabled: ciphertexts, aliases, tags, other keys.
    prepare: Callable[[Subject], None]
    act: Callable[[Subject], dict[str, Any]]
    # After success: the operation did its work.
    done: Callable[[Subject, dict[str, Any]], None]
    # After a refusal: the operation changed nothing.
    untouched: Callable[[Subject], None] = lambda s: None
    # The key under test, as CreateKey is asked for it (default: symmetric encryption).
    key: dict[str, str] = field(default_factory=dict)


def _nothing(s: Subject) -> None:
    pass


def _describe(s: Subject) -> dict[str, Any]:
    return s.kms.call("DescribeKey", KeyId=s.key_id)["KeyMetadata"]


def _alias_target(s: Subject) -> str | None:
    """The key id the cell's alias names now (DescribeKey is allowed in every state)."""
    try:
        return s.kms.call("DescribeKey", KeyId=s.alias)["KeyMetadata"]["KeyId"]
    except KmsError as error:
        assert_error(error, "NotFoundException")
        return None


def _tags(s: Subject) -> list[dict[str, str]]:
    return s.kms.call("ListResourceTags", KeyId=s.key_id)["Tags"]


def _other_key(s: Subject, name: str) -> None:
    s.extra[name] = s.kms.create_key(Description=name)


def _ciphertext(s: Subject) -> None:
    s.extra["blob"] = s.kms.call(
        "Encrypt", KeyId=s.key_id, Plaintext=b"state table", EncryptionContext={"cell": s.state}
    )["CiphertextBlob"]


def _tag(s: Subject) -> None:
    s.kms.call("TagResource", KeyId=s.key_id, Tags=[{"TagKey": "t", "TagValue": "v"}])


def _alias_to_key(s: Subject) -> None:
    s.kms.call("CreateAlias", AliasName=s.alias, TargetKeyId=s.key_id)


# DescribeKey --------------------------------------------------------------------------------


def _describe_done(s: Subject, result: dict[str, Any]) -> None:
    metadata = result["KeyMetadata"]
    assert (metadata["Arn"], metadata["KeyState"]) == (s.arn, s.state)
    assert metadata["Enabled"] is (s.state == "Enabled")


# EnableKey / DisableKey ---------------------------------------------------------------------


def _state_now(target: str) -> Callable[[Subject, dict[str, Any]], None]:
    def done(s: Subject, result: dict[str, Any]) -> None:
        assert result == {}
        # [12]: an Unavailable key keeps its state until it becomes available.
        expected = "Unavailable" if s.state == "Unavailable" else target
        assert s.kms.key_state(s.key_id) == expected

    return done


def _state_kept(s: Subject) -> None:
    assert s.kms.key_state(s.key_id) == s.state


# UpdateKeyDescription -----------------------------------------------------------------------


def _description_done(s: Subject, result: dict[str, Any]) -> None:
    assert _describe(s)["Description"] == "changed"


def _description_untouched(s: Subject) -> None:
    assert _describe(s)["Description"] == ""


# Encrypt, Decrypt, ReEncrypt, GenerateDataKey* ----------------------------------------------


def _encrypt_done(s: Subject, result: dict[str, Any]) -> None:
    assert result["KeyId"] == s.arn
    assert len(result["CiphertextBlob"]) > len(b"state table")


def _decrypt(s: Subject) -> dict[str, Any]:
    return s.kms.call(
        "Decrypt", CiphertextBlob=s.extra["blob"], EncryptionContext={"cell": s.state}
    )


def _decrypt_done(s: Subject, result: dict[str, Any]) -> None:
    assert (result["KeyId"], result["Plaintext"]) == (s.arn, b"state table")


def _re_encrypt_source_prepare(s: Subject) -> None:
    _ciphertext(s)
    _other_key(s, "destination")


def _re_encrypt_source(s: Subject) -> dict[str, Any]:
    return s.kms.call(
        "ReEncrypt",
        CiphertextBlob=s.extra["blob"],
        SourceEncryptionContext={"cell": s.state},
        DestinationKeyId=s.extra["destination"]["KeyId"],
    )


def _re_encrypt_source_done(s: Subject, result: dict[str, Any]) -> None:
    assert (result["SourceKeyId"], result["KeyId"]) == (s.arn, s.extra["destination"]["Arn"])


def _re_encrypt_destination_prepare(s: Subject) -> None:
    _other_key(s, "source")
    s.extra["blob"] = s.kms.call(
        "Encrypt", KeyId=s.extra["source"]["KeyId"], Plaintext=b"state table"
    )["CiphertextBlob"]


def _re_encrypt_destination(s: Subject) -> dict[str, Any]:
    return s.kms.call("ReEncrypt", CiphertextBlob=s.extra["blob"], DestinationKeyId=s.key_id)


def _re_encrypt_destination_done(s: Subject, result: dict[str, Any]) -> None:
    assert (result["SourceKeyId"], result["KeyId"]) == (s.extra["source"]["Arn"], s.arn)


def _data_key_done(s: Subject, result: dict[str, Any]) -> None:
    assert result["KeyId"] == s.arn
    assert len(result["Plaintext"]) == 32


def _data_key_without_plaintext_done(s: Subject, result: dict[str, Any]) -> None:
    assert result["KeyId"] == s.arn
    assert "Plaintext" not in result


# Tags ---------------------------------------------------------------------------------------


def _tagged(s: Subject, result: dict[str, Any] | None = None) -> None:
    assert _tags(s) == [{"TagKey": "t", "TagValue": "v"}]


def _untagged(s: Subject, result: dict[str, Any] | None = None) -> None:
    assert _tags(s) == []


def _list_tags_done(s: Subject, result: dict[str, Any]) -> None:
    assert result["Tags"] == [{"TagKey": "t", "TagValue": "v"}]


# Aliases ------------------------------------------------------------------------------------


def _alias_targets(key_name: str | None) -> Callable[..., None]:
    """The cell's alias names the key under test (None), another key of the cell, or nothing
    ("")."""

    def check(s: Subject, result: dict[str, Any] | None = None) -> None:
        if key_name == "":
            assert _alias_target(s) is None
            return
        expected = s.key_id if key_name is None else s.extra[key_name]["KeyId"]
        assert _alias_target(s) == expected

    return check


def _update_alias_new_prepare(s: Subject) -> None:
    _other_key(s, "old")
    s.kms.call("CreateAlias", AliasName=s.alias, TargetKeyId=s.extra["old"]["KeyId"])


def _update_alias_old_prepare(s: Subject) -> None:
    _alias_to_key(s)
    _other_key(s, "new")


def _list_aliases_done(s: Subject, result: dict[str, Any]) -> None:
    names = [(a["AliasName"], a["TargetKeyId"]) for a in result["Aliases"]]
    assert names == [(s.alias, s.key_id)]


# Rotation and deletion ----------------------------------------------------------------------


def _stored(s: Subject) -> Any:
    """The key's row as stored (GetKeyRotationStatus is itself refused in some states)."""
    with s.kms.runtime.services.db.transaction(readonly=True) as tx:
        return tx.get_key(s.key_id)


def _rotation(enabled: bool) -> Callable[..., None]:
    def check(s: Subject, result: dict[str, Any] | None = None) -> None:
        assert (_stored(s).rotation_period_days is not None) is enabled

    return check


def _enable_rotation(s: Subject) -> None:
    s.kms.call("EnableKeyRotation", KeyId=s.key_id)


def _rotate(s: Subject) -> None:
    s.kms.call("RotateKeyOnDemand", KeyId=s.key_id)


def _materials(count: int) -> Callable[..., None]:
    def check(s: Subject, result: dict[str, Any] | None = None) -> None:
        assert _stored(s).current_version == count

    return check


def _status_done(s: Subject, result: dict[str, Any]) -> None:
    assert result == {"KeyId": s.key_id, "KeyRotationEnabled": False}


def _rotations_done(s: Subject, result: dict[str, Any]) -> None:
    assert [r["RotationType"] for r in result["Rotations"]] == ["ON_DEMAND"]


def _scheduled(s: Subject, result: dict[str, Any]) -> None:
    assert (result["KeyState"], s.kms.key_state(s.key_id)) == ("PendingDeletion",) * 2


def _cancelled(s: Subject, result: dict[str, Any]) -> None:
    assert (result["KeyId"], s.kms.key_state(s.key_id)) == (s.arn, "Disabled")


# Sign / Verify, GenerateMac / VerifyMac, key agreement and KEM ----------------------------

_SIGNING_KEY = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
_MAC_KEY = {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}
_AGREEMENT_KEY = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"}
_KEM_KEY = {"KeySpec": "ML_KEM_768", "KeyUsage": "ENCAPSULATE_DECAPSULATE"}


def _public_key_done(s: Subject, result: dict[str, Any]) -> None:
    assert result["KeyId"] == s.arn
    serialization.load_der_public_key(result["PublicKey"])


def _signature(s: Subject) -> None:
    s.extra["signature"] = _sign(s)["Signature"]


def _sign(s: Subject) -> dict[str, Any]:
    return s.kms.call("Sign", KeyId=s.key_id, Message=b"cell", SigningAlgorithm="ECDSA_SHA_256")


def _signed(s: Subject, result: dict[str, Any]) -> None:
    assert result["KeyId"] == s.arn
    public = serialization.load_der_public_key(
        s.kms.call("GetPublicKey", KeyId=s.key_id)["PublicKey"]
    )
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(result["Signature"], b"cell", ec.ECDSA(hashes.SHA256()))


def _verify(s: Subject) -> dict[str, Any]:
    return s.kms.call(
        "Verify",
        KeyId=s.key_id,
        Message=b"cell",
        Signature=s.extra["signature"],
        SigningAlgorithm="ECDSA_SHA_256",
    )


def _mac_of(s: Subject) -> None:
    s.extra["mac"] = _generate_mac(s)["Mac"]


def _generate_mac(s: Subject) -> dict[str, Any]:
    return s.kms.call("GenerateMac", KeyId=s.key_id, Message=b"cell", MacAlgorithm="HMAC_SHA_256")


def _mac_done(s: Subject, result: dict[str, Any]) -> None:
    assert (result["KeyId"], len(result["Mac"])) == (s.arn, 32)


def _verify_mac(s: Subject) -> dict[str, Any]:
    return s.kms.call(
        "VerifyMac",
        KeyId=s.key_id,
        Message=b"cell",
        Mac=s.extra["mac"],
        MacAlgorithm="HMAC_SHA_256",
    )


def _valid(member: str) -> Callable[[Subject, dict[str, Any]], None]:
    def done(s: Subject, result: dict[str, Any]) -> None:
        assert (result["KeyId"], result[member]) == (s.arn, True)

    return done


def _derive(s: Subject) -> dict[str, Any]:
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    return s.kms.call(
        "DeriveSharedSecret",
        KeyId=s.key_id,
        KeyAgreementAlgorithm="ECDH",
        PublicKey=peer.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


def _secret_done(s: Subject, result: dict[str, Any]) -> None:
    assert result["KeyId"] == s.arn
    assert len(result["SharedSecret"]) == 32


def _encapsulated(s: Subject) -> None:
    s.extra["encapsulated"] = _encapsulate(s)


def _encapsulate(s: Subject) -> dict[str, Any]:
    return s.kms.call("Encapsulate", KeyId=s.key_id, EncapsulationAlgorithm="ML_KEM")


def _decapsulate(s: Subject) -> dict[str, Any]:
    return s.kms.call(
        "Decapsulate",
        KeyId=s.key_id,
        EncapsulationAlgorithm="ML_KEM",
        SharedSecretCiphertextBlob=s.extra["encapsulated"]["SharedSecretCiphertextBlob"],
    )


def _decapsulated(s: Subject, result: dict[str, Any]) -> None:
    assert result["SharedSecret"] == s.extra["encapsulated"]["SharedSecret"]


def _key_pair(with_plaintext: bool) -> Callable[[Subject, dict[str, Any]], None]:
    def done(s: Subject, result: dict[str, Any]) -> None:
        assert result["KeyId"] == s.arn
        serialization.load_der_public_key(result["PublicKey"])
        assert ("PrivateKeyPlaintext" in result) is with_plaintext

    return done


def _grant_to_root(s: Subject) -> None:
    s.extra["grant"] = s.kms.call(
        "CreateGrant",
        KeyId=s.key_id,
        GranteePrincipal=s.kms.principal.arn,
        Operations=["Encrypt"],
    )


def _grant_ids(s: Subject) -> list[str]:
    return [g["GrantId"] for g in s.kms.call("ListGrants", KeyId=s.key_id)["Grants"]]


def _granted(s: Subject, result: dict[str, Any]) -> None:
    assert _grant_ids(s) == [result["GrantId"]]


def _no_grants(s: Subject) -> None:
    assert _grant_ids(s) == []


def _grant_gone(s: Subject, result: dict[str, Any]) -> None:
    assert _grant_ids(s) == []


def _grant_kept(s: Subject) -> None:
    assert _grant_ids(s) == [s.extra["grant"]["GrantId"]]


def _grants_listed(s: Subject, result: dict[str, Any]) -> None:
    assert [g["GrantId"] for g in result["Grants"]] == [s.extra["grant"]["GrantId"]]


OPERATIONS: dict[str, Operation] = {
    "CreateGrant": Operation(
        _nothing,
        lambda s: s.kms.call(
            "CreateGrant",
            KeyId=s.key_id,
            GranteePrincipal=s.kms.principal.arn,
            Operations=["Encrypt"],
        ),
        _granted,
        _no_grants,
    ),
    "ListGrants": Operation(
        _grant_to_root, lambda s: s.kms.call("ListGrants", KeyId=s.key_id), _grants_listed
    ),
    "RetireGrant": Operation(
        _grant_to_root,
        lambda s: s.kms.call("RetireGrant", GrantToken=s.extra["grant"]["GrantToken"]),
        _grant_gone,
        _grant_kept,
    ),
    "RevokeGrant": Operation(
        _grant_to_root,
        lambda s: s.kms.call("RevokeGrant", KeyId=s.key_id, GrantId=s.extra["grant"]["GrantId"]),
        _grant_gone,
        _grant_kept,
    ),
    "GetPublicKey": Operation(
        _nothing,
        lambda s: s.kms.call("GetPublicKey", KeyId=s.key_id),
        _public_key_done,
        key=_SIGNING_KEY,
    ),
    "Sign": Operation(_nothing, _sign, _signed, key=_SIGNING_KEY),
    "Verify": Operation(_signature, _verify, _valid("SignatureValid"), key=_SIGNING_KEY),
    "GenerateMac": Operation(_nothing, _generate_mac, _mac_done, key=_MAC_KEY),
    "VerifyMac": Operation(_mac_of, _verify_mac, _valid("MacValid"), key=_MAC_KEY),
    "DeriveSharedSecret": Operation(_nothing, _derive, _secret_done, key=_AGREEMENT_KEY),
    "Encapsulate": Operation(_nothing, _encapsulate, _secret_done, key=_KEM_KEY),
    "Decapsulate": Operation(_encapsulated, _decapsulate, _decapsulated, key=_KEM_KEY),
    "GenerateDataKeyPair": Operation(
        _nothing,
        lambda s: s.kms.call("GenerateDataKeyPair", KeyId=s.key_id, KeyPairSpec="ECC_NIST_P256"),
        _key_pair(with_plaintext=True),
    ),
    "GenerateDataKeyPairWithoutPlaintext": Operation(
        _nothing,
        lambda s: s.kms.call(
            "GenerateDataKeyPairWithoutPlaintext", KeyId=s.key_id, KeyPairSpec="ECC_NIST_P256"
        ),
        _key_pair(with_plaintext=False),
    ),
    "DescribeKey": Operation(
        _nothing, lambda s: s.kms.call("DescribeKey", KeyId=s.key_id), _describe_done
    ),
    "EnableKey": Operation(
        _nothing,
        lambda s: s.kms.call("EnableKey", KeyId=s.key_id),
        _state_now("Enabled"),
        _state_kept,
    ),
    "DisableKey": Operation(
        _nothing,
        lambda s: s.kms.call("DisableKey", KeyId=s.key_id),
        _state_now("Disabled"),
        _state_kept,
    ),
    "UpdateKeyDescription": Operation(
        _nothing,
        lambda s: s.kms.call("UpdateKeyDescription", KeyId=s.key_id, Description="changed"),
        _description_done,
        _description_untouched,
    ),
    "Encrypt": Operation(
        _nothing,
        lambda s: s.kms.call("Encrypt", KeyId=s.key_id, Plaintext=b"state table"),
        _encrypt_done,
    ),
    "Decrypt": Operation(_ciphertext, _decrypt, _decrypt_done),
    "ReEncrypt (source)": Operation(
        _re_encrypt_source_prepare, _re_encrypt_source, _re_encrypt_source_done
    ),
    "ReEncrypt (destination)": Operation(
        _re_encrypt_destination_prepare, _re_encrypt_destination, _re_encrypt_destination_done
    ),
    "GenerateDataKey": Operation(
        _nothing,
        lambda s: s.kms.call("GenerateDataKey", KeyId=s.key_id, KeySpec="AES_256"),
        _data_key_done,
    ),
    "GenerateDataKeyWithoutPlaintext": Operation(
        _nothing,
        lambda s: s.kms.call("GenerateDataKeyWithoutPlaintext", KeyId=s.key_id, NumberOfBytes=32),
        _data_key_without_plaintext_done,
    ),
    "TagResource": Operation(
        _nothing,
        lambda s: s.kms.call(
            "TagResource", KeyId=s.key_id, Tags=[{"TagKey": "t", "TagValue": "v"}]
        ),
        _tagged,
        _untagged,
    ),
    "UntagResource": Operation(
        _tag,
        lambda s: s.kms.call("UntagResource", KeyId=s.key_id, TagKeys=["t"]),
        _untagged,
        _tagged,
    ),
    "ListResourceTags": Operation(
        _tag, lambda s: s.kms.call("ListResourceTags", KeyId=s.key_id), _list_tags_done
    ),
    "CreateAlias (target)": Operation(
        _nothing,
        lambda s: s.kms.call("CreateAlias", AliasName=s.alias, TargetKeyId=s.key_id),
        _alias_targets(None),
        _alias_targets(""),
    ),
    "UpdateAlias (new target)": Operation(
        _update_alias_new_prepare,
        lambda s: s.kms.call("UpdateAlias", AliasName=s.alias, TargetKeyId=s.key_id),
        _alias_targets(None),
        _alias_targets("old"),
    ),
    "UpdateAlias (old target)": Operation(
        _update_alias_old_prepare,
        lambda s: s.kms.call("UpdateAlias", AliasName=s.alias, TargetKeyId=s.extra["new"]["KeyId"]),
        _alias_targets("new"),
        _alias_targets(None),
    ),
    "DeleteAlias": Operation(
        _alias_to_key,
        lambda s: s.kms.call("DeleteAlias", AliasName=s.alias),
        _alias_targets(""),
        _alias_targets(None),
    ),
    "ListAliases (KeyId filter)": Operation(
        _alias_to_key,
        lambda s: s.kms.call("ListAliases", KeyId=s.key_id),
        _list_aliases_done,
    ),
    "ScheduleKeyDeletion": Operation(
        _nothing,
        lambda s: s.kms.call("ScheduleKeyDeletion", KeyId=s.key_id, PendingWindowInDays=7),
        _scheduled,
    ),
    "CancelKeyDeletion": Operation(
        _nothing, lambda s: s.kms.call("CancelKeyDeletion", KeyId=s.key_id), _cancelled
    ),
    "EnableKeyRotation": Operation(_nothing, _enable_rotation, _rotation(True), _rotation(False)),
    "DisableKeyRotation": Operation(
        _enable_rotation,
        lambda s: s.kms.call("DisableKeyRotation", KeyId=s.key_id),
        _rotation(False),
        _rotation(True),
    ),
    "GetKeyRotationStatus": Operation(
        _nothing, lambda s: s.kms.call("GetKeyRotationStatus", KeyId=s.key_id), _status_done
    ),
    "ListKeyRotations": Operation(
        _rotate, lambda s: s.kms.call("ListKeyRotations", KeyId=s.key_id), _rotations_done
    ),
    "RotateKeyOnDemand": Operation(_nothing, _rotate, _materials(2), _materials(1)),
}


def _cells() -> list[Any]:
    cells = []
    for operation in EXPECTED:
        for state in STATES:
            if EXPECTED[operation][_COLUMN[state]] is NA:
                continue
            marks = []
            reason = DISAGREEMENTS.get((operation, state))
            if reason is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            cells.append(pytest.param(operation, state, marks=marks, id=f"{operation}-{state}"))
    return cells


def test_every_operation_of_the_table_is_tested() -> None:
    assert set(OPERATIONS) == set(EXPECTED)


@pytest.mark.parametrize(("operation", "state"), _cells())
def test_key_state_cell(module_kms: Kms, operation: str, state: str) -> None:
    kms = module_kms
    expected = EXPECTED[operation][_COLUMN[state]]
    op = OPERATIONS[operation]
    key = kms.create_key(**op.key)
    subject = Subject(kms, key["KeyId"], key["Arn"], state)
    op.prepare(subject)
    set_state(kms.runtime, subject.key_id, state)

    if expected in (OK, KEPT):
        op.done(subject, op.act(subject))
        return

    code, text = expected
    with pytest.raises(KmsError) as caught:
        op.act(subject)
    error = caught.value
    allowed = {f"{subject.arn} {text}"}
    if state == "PendingReplicaDeletion" and expected is DEL:
        # Footnote [3]: "is pending deletion (or pending replica deletion)."; see the top.
        allowed.add(f"{subject.arn} is pending replica deletion.")
    assert (error.code, error.message in allowed) == (code, True), (
        f"expected {code}: {sorted(allowed)}, got {error.code}: {error.message!r}"
    )
    op.untouched(subject)
    assert kms.key_state(subject.key_id) == state


# -- the import operations, on keys with imported material ---------------------------------

EXTERNAL_STATES = (
    "Enabled",
    "Disabled",
    "PendingDeletion",
    "PendingReplicaDeletion",
    "PendingImport",
)

# Columns: Enabled, Disabled, Pending deletion / Pending replica deletion, Pending import.
EXTERNAL_EXPECTED: dict[str, tuple[Any, ...]] = {
    "GetParametersForImport": (OK, OK, DEL, OK),  # ? [9], ? [9], [8] or [9], ✓
    "ImportKeyMaterial": (OK, OK, DEL, OK),  # ? [9], ? [9], [8] or [9], ✓
    "DeleteImportedKeyMaterial": (OK, OK, OK, OK),  # ? [9], ? [9], X [9] (see top), ✓ no effect
}
_EXTERNAL_COLUMN = {
    "Enabled": 0,
    "Disabled": 1,
    "PendingDeletion": 2,
    "PendingReplicaDeletion": 2,
    "PendingImport": 3,
}


def _wrapped_for(s: Subject, material: bytes) -> dict[str, Any]:
    given = s.kms.call(
        "GetParametersForImport",
        KeyId=s.key_id,
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    public_key = serialization.load_der_public_key(given["PublicKey"])
    assert isinstance(public_key, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return {
        "ImportToken": given["ImportToken"],
        "EncryptedKeyMaterial": public_key.encrypt(material, oaep),
    }


def _stored_material(s: Subject) -> Any:
    with s.kms.runtime.services.db.transaction(readonly=True) as tx:
        (material,) = tx.list_materials(s.key_id)
    return material


def _parameters_done(s: Subject, result: dict[str, Any]) -> None:
    assert result["KeyId"] == s.arn
    assert isinstance(serialization.load_der_public_key(result["PublicKey"]), rsa.RSAPublicKey)
    assert s.kms.key_state(s.key_id) == s.state


def _reimport(s: Subject) -> dict[str, Any]:
    return s.kms.call(
        "ImportKeyMaterial",
        KeyId=s.key_id,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        KeyMaterialDescription="cell",
        **s.extra["wrapped"],
    )


def _reimport_prepare(s: Subject) -> None:
    s.extra["wrapped"] = _wrapped_for(s, s.extra["material"])


def _reimported(s: Subject, result: dict[str, Any]) -> None:
    assert (result["KeyId"], result["KeyMaterialId"]) == (s.arn, s.extra["material_id"])
    stored = _stored_material(s)
    assert (stored.description, stored.wrapped_material is not None) == ("cell", True)
    # Material back in a key pending import makes it usable; other states are kept.
    expected = "Enabled" if s.state == "PendingImport" else s.state
    assert s.kms.key_state(s.key_id) == expected


def _not_reimported(s: Subject) -> None:
    assert _stored_material(s).description is None


def _material_deleted(s: Subject, result: dict[str, Any]) -> None:
    assert (result["KeyId"], result["KeyMaterialId"]) == (s.arn, s.extra["material_id"])
    assert _stored_material(s).wrapped_material is None
    expected = "PendingImport" if s.state in ("Enabled", "Disabled") else s.state
    assert s.kms.key_state(s.key_id) == expected


EXTERNAL_OPERATIONS: dict[str, Operation] = {
    "GetParametersForImport": Operation(
        _nothing,
        lambda s: s.kms.call(
            "GetParametersForImport",
            KeyId=s.key_id,
            WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
            WrappingKeySpec="RSA_2048",
        ),
        _parameters_done,
    ),
    "ImportKeyMaterial": Operation(_reimport_prepare, _reimport, _reimported, _not_reimported),
    "DeleteImportedKeyMaterial": Operation(
        _nothing,
        lambda s: s.kms.call("DeleteImportedKeyMaterial", KeyId=s.key_id),
        _material_deleted,
    ),
}


def test_every_import_operation_of_the_table_is_tested() -> None:
    assert set(EXTERNAL_OPERATIONS) == set(EXTERNAL_EXPECTED)


@pytest.mark.parametrize("state", EXTERNAL_STATES)
@pytest.mark.parametrize("operation", EXTERNAL_EXPECTED)
def test_key_state_cell_of_a_key_with_imported_material(
    module_kms: Kms, operation: str, state: str
) -> None:
    kms = module_kms
    expected = EXTERNAL_EXPECTED[operation][_EXTERNAL_COLUMN[state]]
    op = EXTERNAL_OPERATIONS[operation]
    key = kms.create_key(Origin="EXTERNAL")
    subject = Subject(kms, key["KeyId"], key["Arn"], state)
    subject.extra["material"] = os.urandom(32)
    imported = kms.call(
        "ImportKeyMaterial",
        KeyId=subject.key_id,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        **_wrapped_for(subject, subject.extra["material"]),
    )
    subject.extra["material_id"] = imported["KeyMaterialId"]
    assert kms.key_state(subject.key_id) == "Enabled"
    op.prepare(subject)
    if state == "PendingImport":
        kms.call("DeleteImportedKeyMaterial", KeyId=subject.key_id)
        assert kms.key_state(subject.key_id) == "PendingImport"
    else:
        set_state(kms.runtime, subject.key_id, state)

    if expected == OK:
        op.done(subject, op.act(subject))
        return

    code, text = expected
    with pytest.raises(KmsError) as caught:
        op.act(subject)
    allowed = {f"{subject.arn} {text}"}
    if state == "PendingReplicaDeletion":
        allowed.add(f"{subject.arn} is pending replica deletion.")
    assert (caught.value.code, caught.value.message in allowed) == (code, True), caught.value
    op.untouched(subject)
    assert kms.key_state(subject.key_id) == state
