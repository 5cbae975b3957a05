"""Input rules that depend on the key a request names: run by the dispatcher after the key's
state and usage are checked and before DryRun answers, so that a dry run of a request that
would be refused is refused too, and so that a refused request never reaches the key store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openkms.crypto import key_pairs, rsa_oaep
from openkms.crypto.key_specs import spec_info
from openkms.crypto.signatures import RAW, SigningInputError, check_message
from openkms.errors import UnsupportedOperationException, ValidationException
from openkms.ops.declaration import Resolved
from openkms.ops.key_directory import LoadedKey


def signing_message(params: dict[str, Any], resolved: Resolved) -> None:
    """Sign and Verify: the message type and length the key and algorithm take."""
    try:
        check_message(
            resolved.keys["key"].record.key_spec,
            params["SigningAlgorithm"],
            params.get("MessageType", RAW),
            params["Message"],
        )
    except SigningInputError as error:
        raise ValidationException(str(error)) from None


def encrypt_input(params: dict[str, Any], resolved: Resolved) -> None:
    key = resolved.keys["key"]
    refuse_asymmetric_context(key, params.get("EncryptionContext"))
    check_plaintext_fits(key, params.get("EncryptionAlgorithm"), params["Plaintext"])


def decrypt_input(params: dict[str, Any], resolved: Resolved) -> None:
    refuse_asymmetric_context(resolved.keys["key"], params.get("EncryptionContext"))


def re_encrypt_input(params: dict[str, Any], resolved: Resolved) -> None:
    refuse_asymmetric_context(resolved.keys["source"], params.get("SourceEncryptionContext"))
    refuse_asymmetric_context(
        resolved.keys["destination"], params.get("DestinationEncryptionContext")
    )


def data_key_pair_input(params: dict[str, Any], resolved: Resolved) -> None:
    """After the KMS key's state: key state errors come before spec errors (AWS)."""
    spec = params.get("KeyPairSpec")
    if spec == "SM2":
        # AWS makes SM2 pairs only in its China Regions; openkms makes none (docs/behaviour.md).
        raise UnsupportedOperationException(f"KeyPairSpec {spec} is not supported in this Region")


def refuse_asymmetric_context(key: LoadedKey, context: Mapping[str, str] | None) -> None:
    if context and not spec_info(key.record.key_spec).symmetric:
        # RSAES-OAEP has nothing to bind a context to; accepting one silently would let a
        # caller believe it was bound (AWS's own answer is undocumented: docs/behaviour.md).
        raise ValidationException(
            "EncryptionContext is not supported with asymmetric KMS keys: the RSAES_OAEP "
            "algorithms cannot bind an encryption context."
        )


def check_plaintext_fits(key: LoadedKey, algorithm: str | None, plaintext: bytes) -> None:
    """RSAES-OAEP carries at most k - 2·hLen - 2 bytes (AWS's words when it cannot)."""
    spec = key.record.key_spec
    if spec not in key_pairs.RSA_BITS or algorithm is None:
        return
    limit = rsa_oaep.max_plaintext_bytes(key_pairs.RSA_BITS[spec], algorithm)
    if len(plaintext) > limit:
        raise ValidationException(
            f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than "
            f"{limit} bytes."
        )
