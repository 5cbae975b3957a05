"""The software key store: material is bound to its key ARN and version."""

from __future__ import annotations

import os

import pytest

from openkms.keystore import IntegrityError, KeyHandle, SoftwareKeyStore, UnsupportedByKeyStore
from openkms.seal import AesGcmRootKey
from tests.key_material import root_key_from, unwrap_material

ARN = "arn:aws:kms:us-east-1:123456789012:key/0b0f9b58-3c2c-4b8e-9a55-1b7d0d3c1a11"
OTHER = "arn:aws:kms:us-east-1:123456789012:key/1b0f9b58-3c2c-4b8e-9a55-1b7d0d3c1a11"


def _store() -> tuple[SoftwareKeyStore, AesGcmRootKey]:
    root = root_key_from(os.urandom(32))
    return SoftwareKeyStore(root), root


def test_root_key_must_be_256_bits():
    with pytest.raises(ValueError):
        root_key_from(os.urandom(16))


def test_material_is_random_wrapped_and_unwraps_only_for_its_arn_and_version():
    store, root = _store()
    wrapped = store.generate("SYMMETRIC_DEFAULT", ARN, 1)
    raw = unwrap_material(root, ARN, 1, wrapped)
    assert len(raw) == 32 and raw not in wrapped
    assert unwrap_material(root, ARN, 1, store.generate("SYMMETRIC_DEFAULT", ARN, 1)) != raw
    for arn, version in ((OTHER, 1), (ARN, 2)):
        with pytest.raises(IntegrityError):
            unwrap_material(root, arn, version, wrapped)


def test_another_root_key_cannot_unwrap():
    store, _ = _store()
    wrapped = store.generate("SYMMETRIC_DEFAULT", ARN, 1)
    with pytest.raises(IntegrityError):
        unwrap_material(os.urandom(32), ARN, 1, wrapped)
    other, _ = _store()
    nonce, sealed = store.encrypt(KeyHandle(ARN, 1, wrapped), b"x", lambda n: b"")
    with pytest.raises(IntegrityError):
        other.decrypt(KeyHandle(ARN, 1, wrapped), nonce, sealed, b"")


def test_encrypt_decrypt_with_associated_data():
    store, _ = _store()
    ref = KeyHandle(ARN, 1, store.generate("SYMMETRIC_DEFAULT", ARN, 1))
    nonce, sealed = store.encrypt(ref, b"data", lambda n: b"aad" + n)
    assert store.decrypt(ref, nonce, sealed, b"aad" + nonce) == b"data"
    with pytest.raises(IntegrityError):
        store.decrypt(ref, nonce, sealed, b"other" + nonce)
    nonce2, _ = store.encrypt(ref, b"data", lambda n: b"aad" + n)
    assert nonce2 != nonce


def test_every_message_gets_its_own_derived_key():
    store, root = _store()
    ref = KeyHandle(ARN, 1, store.generate("SYMMETRIC_DEFAULT", ARN, 1))
    raw = unwrap_material(root, ARN, 1, ref.opaque)
    nonce, sealed = store.encrypt(ref, b"same", lambda n: b"aad")
    assert len(nonce) == 32
    # Not encrypted under the backing material directly, with any IV:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    for iv in (nonce[:12], nonce[-12:], bytes(12)):
        with pytest.raises(Exception):  # noqa: B017 - InvalidTag
            AESGCM(raw).decrypt(iv, sealed, b"aad")
    with pytest.raises(IntegrityError):
        store.decrypt(ref, nonce[:12], sealed, b"aad")


def test_the_derivation_is_hkdf_sha256_as_documented():
    """An independent implementation (pyca's HKDF, written out here) opens what the store
    sealed: the blob's body is defined by the documented derivation, not by this code."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    store, root = _store()
    ref = KeyHandle(ARN, 1, store.generate("SYMMETRIC_DEFAULT", ARN, 1))
    nonce, sealed = store.encrypt(ref, b"message", lambda n: b"aad")
    derived = HKDF(
        hashes.SHA256(), 44, salt=None, info=b"openkms/message-key/v1\x00" + nonce
    ).derive(unwrap_material(root, ARN, 1, ref.opaque))
    assert AESGCM(derived[:32]).decrypt(derived[32:], sealed, b"aad") == b"message"


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256", "ML_DSA_44", "HMAC_256"])
def test_asymmetric_and_hmac_material_is_kept_only_wrapped(spec):
    """The opaque bytes are the root key's wrapping of the material, bound to the key: the
    material itself appears nowhere in them, and they open only for their own key."""
    store, root = _store()
    opaque = store.generate(spec, ARN, 1)
    material = unwrap_material(root, ARN, 1, opaque)
    assert material not in opaque and material[:16] not in opaque
    with pytest.raises(IntegrityError):
        unwrap_material(root, ARN, 2, opaque)


def test_the_public_key_is_the_kept_private_keys():
    from cryptography.hazmat.primitives import serialization

    store, root = _store()
    handle = KeyHandle(ARN, 1, store.generate("ECC_NIST_P384", ARN, 1), "ECC_NIST_P384")
    private = serialization.load_der_private_key(unwrap_material(root, ARN, 1, handle.opaque), None)
    assert store.public_key(handle) == private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_generating_an_unsupported_spec_or_importing_says_so():
    store, _ = _store()
    with pytest.raises(UnsupportedByKeyStore, match="SM2"):
        store.generate("SM2", ARN, 1)
    with pytest.raises(UnsupportedByKeyStore, match="importing"):
        store.import_material("SYMMETRIC_DEFAULT", ARN, 1, os.urandom(32))


def test_no_production_verb_hands_out_material():
    store, _ = _store()
    public = {name for name in dir(store) if not name.startswith("_")}
    assert not {n for n in public if "unwrap" in n or "material" in n} - {"import_material"}
    assert "unwrap" not in repr(store)
