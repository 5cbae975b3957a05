"""The software key store: material is bound to its key ARN and version."""

from __future__ import annotations

import os

import pytest

from openkms.keystore import MaterialRef, SoftwareKeyStore
from openkms.keystore.base import IntegrityError

ARN = "arn:aws:kms:us-east-1:123456789012:key/0b0f9b58-3c2c-4b8e-9a55-1b7d0d3c1a11"
OTHER = "arn:aws:kms:us-east-1:123456789012:key/1b0f9b58-3c2c-4b8e-9a55-1b7d0d3c1a11"


def test_root_key_must_be_256_bits():
    with pytest.raises(ValueError):
        SoftwareKeyStore(os.urandom(16))


def test_material_is_random_wrapped_and_unwraps_only_for_its_arn_and_version():
    store = SoftwareKeyStore(os.urandom(32))
    wrapped = store.new_symmetric_material(ARN, 1)
    raw = store.unwrap_material(MaterialRef(ARN, 1, wrapped))
    assert len(raw) == 32 and raw not in wrapped
    assert store.unwrap_material(MaterialRef(ARN, 1, store.new_symmetric_material(ARN, 1))) != raw
    for ref in (MaterialRef(OTHER, 1, wrapped), MaterialRef(ARN, 2, wrapped)):
        with pytest.raises(IntegrityError):
            store.unwrap_material(ref)


def test_another_root_key_cannot_unwrap():
    wrapped = SoftwareKeyStore(os.urandom(32)).new_symmetric_material(ARN, 1)
    with pytest.raises(IntegrityError):
        SoftwareKeyStore(os.urandom(32)).unwrap_material(MaterialRef(ARN, 1, wrapped))


def test_encrypt_decrypt_with_associated_data():
    store = SoftwareKeyStore(os.urandom(32))
    ref = MaterialRef(ARN, 1, store.new_symmetric_material(ARN, 1))
    nonce, sealed = store.encrypt(ref, b"data", lambda n: b"aad" + n)
    assert store.decrypt(ref, nonce, sealed, b"aad" + nonce) == b"data"
    with pytest.raises(IntegrityError):
        store.decrypt(ref, nonce, sealed, b"other" + nonce)
    nonce2, _ = store.encrypt(ref, b"data", lambda n: b"aad" + n)
    assert nonce2 != nonce


def test_secrets_are_bound_to_their_label():
    store = SoftwareKeyStore(os.urandom(32))
    wrapped = store.wrap_secret("access-key:A", b"secret")
    assert b"secret" not in wrapped
    assert store.unwrap_secret("access-key:A", wrapped) == b"secret"
    with pytest.raises(IntegrityError):
        store.unwrap_secret("access-key:B", wrapped)


def test_every_message_gets_its_own_derived_key():
    store = SoftwareKeyStore(os.urandom(32))
    ref = MaterialRef(ARN, 1, store.new_symmetric_material(ARN, 1))
    raw = store.unwrap_material(ref)
    nonce, sealed = store.encrypt(ref, b"same", lambda n: b"aad")
    assert len(nonce) == 32
    # Not encrypted under the backing material directly, with any IV:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    for iv in (nonce[:12], nonce[-12:], bytes(12)):
        with pytest.raises(Exception):  # noqa: B017 - InvalidTag
            AESGCM(raw).decrypt(iv, sealed, b"aad")
    with pytest.raises(IntegrityError):
        store.decrypt(ref, nonce[:12], sealed, b"aad")
