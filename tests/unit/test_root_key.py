"""The root-key wrapper: a format byte and the root-key generation in every wrapped value."""

from __future__ import annotations

import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.crypto.integrity import IntegrityError
from openkms.seal import AesGcmRootKey
from openkms.seal.root_key import generation_of
from openkms.seal.secrets import unwrap_secret, wrap_secret


def test_wrapped_values_start_with_format_and_generation():
    root = AesGcmRootKey({1: os.urandom(32), 3: os.urandom(32)})
    wrapped = root.wrap(b"secret", b"binding")
    assert wrapped[0] == 1
    assert struct.unpack(">I", wrapped[1:5])[0] == 3 == root.generation == generation_of(wrapped)
    assert b"secret" not in wrapped
    assert root.unwrap(wrapped, b"binding") == b"secret"


def test_the_format_is_aes_gcm_over_header_and_binding_checked_independently():
    key = os.urandom(32)
    wrapped = AesGcmRootKey({7: key}).wrap(b"value", b"bind")
    header, nonce, sealed = wrapped[:5], wrapped[5:17], wrapped[17:]
    assert AESGCM(key).decrypt(nonce, sealed, header + b"bind") == b"value"


def test_older_generations_still_unwrap_after_rotation():
    old_key = os.urandom(32)
    old = AesGcmRootKey({1: old_key}).wrap(b"kept", b"b")
    rotated = AesGcmRootKey({1: old_key, 2: os.urandom(32)})
    assert rotated.unwrap(old, b"b") == b"kept"
    assert generation_of(rotated.wrap(b"new", b"b")) == 2


def test_legacy_values_are_format_zero_under_generation_one():
    key = os.urandom(32)
    nonce = os.urandom(12)
    legacy = b"\x00" + nonce + AESGCM(key).encrypt(nonce, b"old", b"b")
    assert AesGcmRootKey({1: key}).unwrap(legacy, b"b") == b"old"
    assert generation_of(legacy) == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda w: w[:1] + b"\x00\x00\x00\x09" + w[5:],  # unknown generation
        lambda w: b"\x02" + w[1:],  # unknown format
        lambda w: w[:-1] + bytes([w[-1] ^ 1]),  # tampered tag
        lambda w: w[:5] + w[6:],  # truncated
        lambda w: b"",
    ],
)
def test_anything_else_is_an_integrity_error(mutate):
    root = AesGcmRootKey({1: os.urandom(32)})
    wrapped = root.wrap(b"value", b"b")
    with pytest.raises(IntegrityError):
        root.unwrap(mutate(wrapped), b"b")
    with pytest.raises(IntegrityError):
        root.unwrap(wrapped, b"other binding")


def test_secrets_are_bound_to_their_label():
    root = AesGcmRootKey({1: os.urandom(32)})
    wrapped = wrap_secret(root, "access-key:A", b"secret")
    assert b"secret" not in wrapped
    assert unwrap_secret(root, "access-key:A", wrapped) == b"secret"
    with pytest.raises(IntegrityError):
        unwrap_secret(root, "access-key:B", wrapped)


def test_the_wrapper_never_prints_key_material():
    key = os.urandom(32)
    root = AesGcmRootKey({1: key})
    assert key.hex() not in repr(root) and str(key) not in repr(root)
