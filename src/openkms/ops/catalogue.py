"""All 56 KMS operations, each declared once: IAM action(s) and their resources, how the
resources are found, read-only or not, DryRun, the request members an audit record may carry,
and the key usages and algorithms accepted.

Actions and resources follow AWS's permissions reference: ReEncrypt needs kms:ReEncryptFrom
on the source key and kms:ReEncryptTo on the destination; CreateAlias and DeleteAlias need
their action on the alias and on the key; UpdateAlias on the alias, the new target and the old
one; account-level operations (CreateKey, ListKeys, GenerateRandom, custom key stores, …) are
checked on the account ("*"). Audit parameters are what CloudTrail records for the operation,
less anything that could be a secret (the dispatcher refuses to start if one could).
"""

from __future__ import annotations

from typing import Any

from openkms.crypto.key_specs import DATA_KEY_BYTES, AlgorithmFamily, DataKeySpec, KeyUsage
from openkms.domain import imports
from openkms.errors import ValidationException
from openkms.ops import key_input_rules
from openkms.ops.declaration import Declaration, KeyUse, Permission, Resolve

_ENCRYPT = (KeyUsage.ENCRYPT_DECRYPT,)
_RECIPIENT_UNSUPPORTED = {
    "Recipient": "Recipient (Nitro Enclaves attestation) is not supported by this openkms server."
}

# Grants to AWS service principals serve AWS services' own use of a key: no such service
# calls openkms (docs/behaviour.md).
_SERVICE_PRINCIPALS = {
    member: f"{member} is not supported by this openkms server: no AWS service calls it."
    for member in ("GranteeServicePrincipal", "RetiringServicePrincipal")
}


def _data_key_size(req: dict[str, Any]) -> None:
    if ("KeySpec" in req) == ("NumberOfBytes" in req):
        raise ValidationException("Please specify either number of bytes or key spec.")


def data_key_bytes(req: dict[str, Any]) -> int:
    """The plaintext data key size a GenerateDataKey* request asks for (already checked)."""
    if "KeySpec" in req:
        return DATA_KEY_BYTES[DataKeySpec(req["KeySpec"])]
    return int(req["NumberOfBytes"])


def _pending_window(req: dict[str, Any]) -> None:
    # The model allows 1-365; AWS accepts 7-30, and answers in these words.
    window = req.get("PendingWindowInDays")
    if window is not None and not 7 <= window <= 30:
        raise ValidationException("PendingWindowInDays must be between 7 and 30")


def _random_input(req: dict[str, Any]) -> None:
    if "NumberOfBytes" not in req:
        raise ValidationException("NumberOfBytes is required.")


def _key_op(
    name: str,
    *,
    read_only: bool,
    resolve: Resolve = Resolve.KEY_ID_OR_ARN,
    dry_run: bool = False,
    audit: tuple[str, ...] = ("KeyId",),
    uses: tuple[KeyUse, ...] = (),
    implemented: bool = False,
    **extra: Any,
) -> Declaration:
    """An operation on one key, checked with kms:<name> on that key."""
    return Declaration(
        name=name,
        permissions=(Permission(f"kms:{name}"),),
        resolve=resolve,
        read_only=read_only,
        dry_run=dry_run,
        audit_parameters=audit,
        key_uses=uses,
        implemented=implemented,
        **extra,
    )


def _account_op(
    name: str,
    *,
    read_only: bool,
    audit: tuple[str, ...] = (),
    implemented: bool = False,
    resolve: Resolve = Resolve.ACCOUNT,
    **extra: Any,
) -> Declaration:
    return Declaration(
        name=name,
        permissions=(Permission(f"kms:{name}", role="account"),),
        resolve=resolve,
        read_only=read_only,
        audit_parameters=audit,
        implemented=implemented,
        **extra,
    )


def _encryption_use(parameter: str = "EncryptionAlgorithm", role: str = "key") -> KeyUse:
    return KeyUse(
        _ENCRYPT, role, parameter, AlgorithmFamily.ENCRYPTION, default_algorithm="SYMMETRIC_DEFAULT"
    )


_DATA_KEY_USE = KeyUse(_ENCRYPT, symmetric_only=True)


def _crypto_op(name: str, audit: tuple[str, ...], use: KeyUse, **extra: Any) -> Declaration:
    """A cryptographic operation on one key named by id, ARN or alias; DryRun applies."""
    return _key_op(
        name,
        read_only=True,
        resolve=Resolve.KEY,
        dry_run=True,
        audit=("KeyId", *audit),
        uses=(use,),
        implemented=True,
        **extra,
    )


_SIGNING = KeyUse((KeyUsage.SIGN_VERIFY,), "key", "SigningAlgorithm", AlgorithmFamily.SIGNING)
_MAC = KeyUse((KeyUsage.GENERATE_VERIFY_MAC,), "key", "MacAlgorithm", AlgorithmFamily.MAC)
_KEY_AGREEMENT = KeyUse(
    (KeyUsage.KEY_AGREEMENT,), "key", "KeyAgreementAlgorithm", AlgorithmFamily.KEY_AGREEMENT
)
_ENCAPSULATION = KeyUse(
    (KeyUsage.ENCAPSULATE_DECAPSULATE,),
    "key",
    "EncapsulationAlgorithm",
    AlgorithmFamily.ENCAPSULATION,
)
_STORE = Resolve.CUSTOM_KEY_STORE
# What CreateCustomKeyStore and UpdateCustomKeyStore record of an external key store proxy
# (never its authentication credential).
_XKS_AUDIT = (
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName",
    "XksProxyVpcEndpointServiceOwner",
    "XksProxyConnectivity",
)

_ALL: tuple[Declaration, ...] = (
    # -- keys -------------------------------------------------------------------------------
    Declaration(
        name="CreateKey",
        permissions=(
            Permission("kms:CreateKey", role="account"),
            # AWS: "To use the Tags parameter, kms:TagResource (IAM policy)".
            Permission("kms:TagResource", role="account", only_with="Tags"),
        ),
        resolve=Resolve.ACCOUNT,
        read_only=False,
        audit_parameters=(
            "Description",
            "KeyUsage",
            "KeySpec",
            "CustomerMasterKeySpec",
            "Origin",
            "CustomKeyStoreId",
            "BypassPolicyLockoutSafetyCheck",
            "Tags",
            "MultiRegion",
        ),
        implemented=True,
    ),
    _key_op("DescribeKey", read_only=True, resolve=Resolve.KEY, implemented=True),
    _account_op("ListKeys", read_only=True, audit=("Limit", "Marker"), implemented=True),
    _key_op("EnableKey", read_only=False, implemented=True),
    _key_op("DisableKey", read_only=False, implemented=True),
    _key_op(
        "UpdateKeyDescription",
        read_only=False,
        audit=("KeyId", "Description"),
        implemented=True,
    ),
    _key_op("GetKeyLastUsage", read_only=True, implemented=True),
    # -- symmetric cryptography ------------------------------------------------------------
    _key_op(
        "Encrypt",
        read_only=True,
        resolve=Resolve.KEY,
        dry_run=True,
        audit=("KeyId", "EncryptionContext", "EncryptionAlgorithm"),
        uses=(_encryption_use(),),
        check_with_keys=key_input_rules.encrypt_input,
        implemented=True,
    ),
    _key_op(
        "Decrypt",
        read_only=True,
        resolve=Resolve.CIPHERTEXT,
        dry_run=True,
        audit=("KeyId", "EncryptionContext", "EncryptionAlgorithm", "DryRunModifiers"),
        uses=(_encryption_use(),),
        unsupported_members=_RECIPIENT_UNSUPPORTED,
        check_with_keys=key_input_rules.decrypt_input,
        implemented=True,
    ),
    Declaration(
        name="ReEncrypt",
        permissions=(
            Permission("kms:ReEncryptFrom", role="source"),
            Permission("kms:ReEncryptTo", role="destination"),
        ),
        resolve=Resolve.RE_ENCRYPT,
        read_only=True,
        dry_run=True,
        audit_parameters=(
            "SourceKeyId",
            "DestinationKeyId",
            "SourceEncryptionContext",
            "DestinationEncryptionContext",
            "SourceEncryptionAlgorithm",
            "DestinationEncryptionAlgorithm",
            "DryRunModifiers",
        ),
        key_uses=(
            _encryption_use("SourceEncryptionAlgorithm", "source"),
            _encryption_use("DestinationEncryptionAlgorithm", "destination"),
        ),
        check_with_keys=key_input_rules.re_encrypt_input,
    ),
    _key_op(
        "GenerateDataKey",
        read_only=True,
        resolve=Resolve.KEY,
        dry_run=True,
        audit=("KeyId", "EncryptionContext", "NumberOfBytes", "KeySpec"),
        uses=(_DATA_KEY_USE,),
        check_input=_data_key_size,
        unsupported_members=_RECIPIENT_UNSUPPORTED,
        implemented=True,
    ),
    _key_op(
        "GenerateDataKeyWithoutPlaintext",
        read_only=True,
        resolve=Resolve.KEY,
        dry_run=True,
        audit=("KeyId", "EncryptionContext", "NumberOfBytes", "KeySpec"),
        uses=(_DATA_KEY_USE,),
        check_input=_data_key_size,
        implemented=True,
    ),
    _key_op(
        "GenerateDataKeyPair",
        read_only=True,
        resolve=Resolve.KEY,
        dry_run=True,
        audit=("KeyId", "EncryptionContext", "KeyPairSpec"),
        uses=(_DATA_KEY_USE,),
        unsupported_members=_RECIPIENT_UNSUPPORTED,
        check_with_keys=key_input_rules.data_key_pair_input,
        implemented=True,
    ),
    _key_op(
        "GenerateDataKeyPairWithoutPlaintext",
        read_only=True,
        resolve=Resolve.KEY,
        dry_run=True,
        audit=("KeyId", "EncryptionContext", "KeyPairSpec"),
        uses=(_DATA_KEY_USE,),
        check_with_keys=key_input_rules.data_key_pair_input,
        implemented=True,
    ),
    _account_op(
        "GenerateRandom",
        read_only=True,
        audit=("NumberOfBytes", "CustomKeyStoreId"),
        unsupported_members=_RECIPIENT_UNSUPPORTED,
        check_input=_random_input,
        implemented=True,
    ),
    # -- asymmetric, HMAC, key agreement, KEM ----------------------------------------------
    _key_op("GetPublicKey", read_only=True, resolve=Resolve.KEY, implemented=True),
    _crypto_op(
        "Sign",
        ("MessageType", "SigningAlgorithm"),
        _SIGNING,
        check_with_keys=key_input_rules.signing_message,
    ),
    _crypto_op(
        "Verify",
        ("MessageType", "SigningAlgorithm"),
        _SIGNING,
        check_with_keys=key_input_rules.signing_message,
    ),
    _crypto_op("GenerateMac", ("MacAlgorithm",), _MAC),
    _crypto_op("VerifyMac", ("MacAlgorithm",), _MAC),
    _crypto_op(
        "DeriveSharedSecret",
        ("KeyAgreementAlgorithm",),
        _KEY_AGREEMENT,
        unsupported_members=_RECIPIENT_UNSUPPORTED,
    ),
    _crypto_op("Encapsulate", ("EncapsulationAlgorithm",), _ENCAPSULATION),
    _crypto_op("Decapsulate", ("EncapsulationAlgorithm",), _ENCAPSULATION),
    # -- aliases ----------------------------------------------------------------------------
    Declaration(
        name="CreateAlias",
        permissions=(Permission("kms:CreateAlias", "alias"), Permission("kms:CreateAlias")),
        resolve=Resolve.ALIAS_TARGET,
        read_only=False,
        audit_parameters=("AliasName", "TargetKeyId"),
    ),
    Declaration(
        name="UpdateAlias",
        permissions=(
            Permission("kms:UpdateAlias", "alias"),
            Permission("kms:UpdateAlias"),
            Permission("kms:UpdateAlias", "old_key"),
        ),
        resolve=Resolve.ALIAS_RETARGET,
        read_only=False,
        audit_parameters=("AliasName", "TargetKeyId"),
        state_roles=("key",),
    ),
    Declaration(
        name="DeleteAlias",
        permissions=(Permission("kms:DeleteAlias", "alias"), Permission("kms:DeleteAlias")),
        resolve=Resolve.ALIAS,
        read_only=False,
        audit_parameters=("AliasName",),
    ),
    Declaration(
        name="ListAliases",
        # An account-level action; a KeyId filter names a key, which must be the caller's.
        permissions=(Permission("kms:ListAliases"),),
        resolve=Resolve.OPTIONAL_KEY,
        read_only=True,
        audit_parameters=("KeyId", "Limit", "Marker"),
    ),
    # -- tags -------------------------------------------------------------------------------
    _key_op("TagResource", read_only=False, audit=("KeyId", "Tags"), implemented=True),
    _key_op("UntagResource", read_only=False, audit=("KeyId", "TagKeys"), implemented=True),
    _key_op(
        "ListResourceTags", read_only=True, audit=("KeyId", "Limit", "Marker"), implemented=True
    ),
    # -- key policies -----------------------------------------------------------------------
    _key_op("GetKeyPolicy", read_only=True, audit=("KeyId", "PolicyName"), implemented=True),
    _key_op(
        "PutKeyPolicy",
        read_only=False,
        audit=("KeyId", "PolicyName", "Policy", "BypassPolicyLockoutSafetyCheck"),
        implemented=True,
    ),
    _key_op(
        "ListKeyPolicies", read_only=True, audit=("KeyId", "Limit", "Marker"), implemented=True
    ),
    # -- grants -----------------------------------------------------------------------------
    _key_op(
        "CreateGrant",
        read_only=False,
        resolve=Resolve.GRANT_KEY,
        dry_run=True,
        audit=(
            "KeyId",
            "GranteePrincipal",
            "RetiringPrincipal",
            "Operations",
            "Constraints",
            "Name",
            "GranteeServicePrincipal",
            "RetiringServicePrincipal",
        ),
        unsupported_members=_SERVICE_PRINCIPALS,
        implemented=True,
    ),
    _key_op(
        "ListGrants",
        read_only=True,
        audit=("KeyId", "GrantId", "GranteePrincipal", "GranteeServicePrincipal", "Limit"),
        unsupported_members=_SERVICE_PRINCIPALS,
        implemented=True,
    ),
    _account_op(
        "ListRetirableGrants",
        read_only=True,
        audit=("RetiringPrincipal", "RetiringServicePrincipal", "Limit", "Marker"),
        unsupported_members=_SERVICE_PRINCIPALS,
        implemented=True,
    ),
    # RetireGrant may name its grant by token alone; the token is never recorded. Who may
    # retire is the grant's to say first (its retiring principal, its grantee if it gives
    # RetireGrant, its account), then the policies (openkms.authz).
    Declaration(
        name="RetireGrant",
        permissions=(Permission("kms:RetireGrant"),),
        resolve=Resolve.GRANT,
        read_only=False,
        dry_run=True,
        audit_parameters=("KeyId", "GrantId"),
        implemented=True,
    ),
    _key_op(
        "RevokeGrant",
        read_only=False,
        dry_run=True,
        audit=("KeyId", "GrantId"),
        implemented=True,
    ),
    # -- lifecycle --------------------------------------------------------------------------
    _key_op(
        "ScheduleKeyDeletion",
        read_only=False,
        audit=("KeyId", "PendingWindowInDays"),
        check_input=_pending_window,
        implemented=True,
    ),
    _key_op("CancelKeyDeletion", read_only=False, implemented=True),
    _key_op(
        "EnableKeyRotation",
        read_only=False,
        audit=("KeyId", "RotationPeriodInDays"),
        implemented=True,
    ),
    _key_op("DisableKeyRotation", read_only=False, implemented=True),
    _key_op("GetKeyRotationStatus", read_only=True, implemented=True),
    _key_op("RotateKeyOnDemand", read_only=False, implemented=True),
    _key_op(
        "ListKeyRotations",
        read_only=True,
        audit=("KeyId", "IncludeKeyMaterial", "Limit", "Marker"),
        implemented=True,
    ),
    # -- imported key material --------------------------------------------------------------
    _key_op(
        "GetParametersForImport",
        read_only=True,
        audit=("KeyId", "WrappingAlgorithm", "WrappingKeySpec"),
        check_input=imports.check_import_parameters_input,
        implemented=True,
    ),
    _key_op(
        "ImportKeyMaterial",
        read_only=False,
        audit=(
            "KeyId",
            "ValidTo",
            "ExpirationModel",
            "ImportType",
            "KeyMaterialDescription",
            "KeyMaterialId",
        ),
        check_input=imports.check_import_material_input,
        implemented=True,
    ),
    _key_op(
        "DeleteImportedKeyMaterial",
        read_only=False,
        audit=("KeyId", "KeyMaterialId"),
        implemented=True,
    ),
    # -- multi-Region keys ------------------------------------------------------------------
    _key_op(
        "ReplicateKey",
        read_only=False,
        audit=(
            "KeyId",
            "ReplicaRegion",
            "Policy",
            "BypassPolicyLockoutSafetyCheck",
            "Description",
            "Tags",
        ),
    ),
    _key_op("UpdatePrimaryRegion", read_only=False, audit=("KeyId", "PrimaryRegion")),
    # -- custom key stores ------------------------------------------------------------------
    _account_op(
        "CreateCustomKeyStore",
        read_only=False,
        audit=(
            "CustomKeyStoreName",
            "CloudHsmClusterId",
            "CustomKeyStoreType",
            *_XKS_AUDIT,
        ),
        implemented=True,
    ),
    _account_op(
        "DescribeCustomKeyStores",
        read_only=True,
        audit=("CustomKeyStoreId", "CustomKeyStoreName", "Limit", "Marker"),
        implemented=True,
    ),
    _account_op(
        "UpdateCustomKeyStore",
        read_only=False,
        resolve=_STORE,
        audit=(
            "CustomKeyStoreId",
            "NewCustomKeyStoreName",
            "CloudHsmClusterId",
            *_XKS_AUDIT,
        ),
        implemented=True,
    ),
    _account_op(
        "DeleteCustomKeyStore",
        read_only=False,
        resolve=_STORE,
        audit=("CustomKeyStoreId",),
        implemented=True,
    ),
    _account_op(
        "ConnectCustomKeyStore",
        read_only=False,
        resolve=_STORE,
        audit=("CustomKeyStoreId",),
        implemented=True,
    ),
    _account_op(
        "DisconnectCustomKeyStore",
        read_only=False,
        resolve=_STORE,
        audit=("CustomKeyStoreId",),
        implemented=True,
    ),
)

DECLARATIONS: dict[str, Declaration] = {d.name: d for d in _ALL}
