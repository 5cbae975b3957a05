"""The ciphertext blob format (openkms.crypto.ciphertext_blob) and sealing with it
(openkms.ops.symmetric) under a real software key store."""

from __future__ import annotations

import datetime as dt
import os
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.clock import ManualClock
from openkms.crypto.ciphertext_blob import (
    FORMAT_VERSION,
    HEADER_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    CiphertextBlob,
    MalformedBlob,
)
from openkms.crypto.encryption_context import canonical_encryption_context
from openkms.errors import InvalidCiphertextException
from openkms.keystore import SoftwareKeyStore
from openkms.ops.context import Services
from openkms.ops.key_directory import LoadedKey
from openkms.ops.symmetric import open_blob, parse_blob, seal
from openkms.storage import KeyRecord, MaterialRecord
from tests.key_material import root_key_from

KEY_ID = "0b0f9b58-3c2c-4b8e-9a55-1b7d0d3c1a11"

_key_ids = st.uuids().map(str)
_versions = st.integers(min_value=0, max_value=2**32 - 1)
_nonces = st.binary(min_size=NONCE_SIZE, max_size=NONCE_SIZE)
_sealed = st.binary(min_size=TAG_SIZE, max_size=200)


# -- the format ---------------------------------------------------------------------------


def test_the_header_layout():
    nonce = bytes(range(NONCE_SIZE))
    header = CiphertextBlob.header_for(KEY_ID, 0x01020304, nonce)
    assert HEADER_SIZE == len(header) == 53
    assert header[0] == FORMAT_VERSION == 1
    assert header[1:17] == uuid.UUID(KEY_ID).bytes
    assert header[17:21] == b"\x01\x02\x03\x04"
    assert header[21:53] == nonce


def test_parse_reads_what_was_written():
    nonce = os.urandom(NONCE_SIZE)
    sealed = os.urandom(40)
    blob = CiphertextBlob.parse(CiphertextBlob.header_for(KEY_ID, 7, nonce) + sealed)
    assert blob == CiphertextBlob(KEY_ID, 7, nonce, sealed)
    assert blob.header == CiphertextBlob.header_for(KEY_ID, 7, nonce)
    assert blob.to_bytes() == blob.header + sealed
    assert blob.associated_data(b"ctx") == blob.header + b"ctx"


def test_the_shortest_blob_is_a_header_and_a_tag():
    header = CiphertextBlob.header_for(KEY_ID, 1, os.urandom(NONCE_SIZE))
    assert CiphertextBlob.parse(header + os.urandom(TAG_SIZE)).sealed
    for length in (0, 1, HEADER_SIZE, HEADER_SIZE + TAG_SIZE - 1):
        with pytest.raises(MalformedBlob):
            CiphertextBlob.parse((header + os.urandom(TAG_SIZE))[:length])


@pytest.mark.parametrize("version", [0, 2, 255])
def test_an_unknown_format_version_is_refused(version):
    data = bytearray(CiphertextBlob.header_for(KEY_ID, 1, os.urandom(NONCE_SIZE)) + os.urandom(20))
    data[0] = version
    with pytest.raises(MalformedBlob):
        CiphertextBlob.parse(bytes(data))


def test_parse_accepts_memoryviews_and_bytearrays():
    data = CiphertextBlob.header_for(KEY_ID, 3, bytes(NONCE_SIZE)) + bytes(16)
    assert CiphertextBlob.parse(bytearray(data)) == CiphertextBlob.parse(memoryview(data))
    assert isinstance(CiphertextBlob.parse(memoryview(data)).sealed, bytes)


@settings(max_examples=300, deadline=None)
@given(key_id=_key_ids, version=_versions, nonce=_nonces, sealed=_sealed)
def test_any_blob_round_trips(key_id, version, nonce, sealed):
    blob = CiphertextBlob(key_id, version, nonce, sealed)
    data = blob.to_bytes()
    assert len(data) == HEADER_SIZE + len(sealed)
    assert CiphertextBlob.parse(data) == blob
    assert struct.unpack(">I", data[17:21]) == (version,)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_parse_refuses_only_with_malformed_blob(data):
    try:
        blob = CiphertextBlob.parse(data)
    except MalformedBlob:
        assert len(data) < HEADER_SIZE + TAG_SIZE or data[0] != FORMAT_VERSION
    else:
        assert blob.to_bytes() == data


# -- sealing and opening ------------------------------------------------------------------


class _Sealing:
    """A key with two versions of real backing material, under a software key store."""

    def __init__(self, key_id: str = KEY_ID) -> None:
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self.keystore = SoftwareKeyStore(root_key_from(os.urandom(32)))
        self.services = Services(db=None, keystore=self.keystore, clock=ManualClock(now), keys=None)  # type: ignore[arg-type]
        arn = f"arn:aws:kms:us-east-1:111122223333:key/{key_id}"
        materials = {
            version: MaterialRecord(
                key_id=key_id,
                version=version,
                material_id=f"{version:064x}",
                wrapped_material=self.keystore.generate("SYMMETRIC_DEFAULT", arn, version),
                created_at=now,
            )
            for version in (1, 2)
        }
        record = KeyRecord(
            key_id=key_id,
            account_id="111122223333",
            region="us-east-1",
            arn=arn,
            description="",
            key_usage="ENCRYPT_DECRYPT",
            key_spec="SYMMETRIC_DEFAULT",
            origin="AWS_KMS",
            key_manager="CUSTOMER",
            key_state="Enabled",
            creation_date=now,
            policy="{}",
            multi_region=False,
            current_version=2,
        )
        self.key = LoadedKey(record, materials)

    def seal(self, plaintext: bytes, context: dict[str, str] | None = None) -> bytes:
        blob, material = seal(self.services, self.key, plaintext, context)
        assert material.version == 2
        return blob

    def open(self, data: bytes, context: dict[str, str] | None = None) -> bytes:
        plaintext, _ = open_blob(self.services, self.key, parse_blob(data), context)
        return plaintext


SEALING = _Sealing()
CONTEXT = {"purpose": "unit", "tenant": "t-1"}


def test_a_sealed_blob_names_its_key_and_version_and_opens():
    data = SEALING.seal(b"plaintext", CONTEXT)
    blob = CiphertextBlob.parse(data)
    assert (blob.key_id, blob.material_version) == (KEY_ID, 2)
    assert len(blob.sealed) == len(b"plaintext") + TAG_SIZE
    assert b"plaintext" not in data
    assert SEALING.open(data, dict(reversed(CONTEXT.items()))) == b"plaintext"


def test_nonces_are_fresh():
    nonces = {CiphertextBlob.parse(SEALING.seal(b"same")).nonce for _ in range(50)}
    assert len(nonces) == 50


def test_the_version_in_the_header_is_authenticated():
    data = bytearray(SEALING.seal(b"p"))
    data[17:21] = struct.pack(">I", 1)
    with pytest.raises(InvalidCiphertextException):  # the header is authenticated
        SEALING.open(bytes(data))
    data[17:21] = struct.pack(">I", 3)
    with pytest.raises(InvalidCiphertextException):
        SEALING.open(bytes(data))


def test_another_keys_material_cannot_open():
    other = _Sealing()
    with pytest.raises(InvalidCiphertextException):
        other.open(SEALING.seal(b"p"))


def test_malformed_bytes_are_invalid_ciphertext():
    for data in (b"", b"\x01" * 48, b"\x02" + bytes(60)):
        with pytest.raises(InvalidCiphertextException) as info:
            parse_blob(data)
        assert info.value.message is None


_PROPERTY_PLAINTEXT = b"a property plaintext"
_PROPERTY_BLOB = SEALING.seal(_PROPERTY_PLAINTEXT, CONTEXT)


@settings(max_examples=500, deadline=None)
@given(index=st.integers(0, len(_PROPERTY_BLOB) - 1), flip=st.integers(1, 255))
def test_any_single_byte_change_is_rejected(index, flip):
    data = bytearray(_PROPERTY_BLOB)
    data[index] ^= flip
    with pytest.raises(InvalidCiphertextException):
        SEALING.open(bytes(data), CONTEXT)
    assert SEALING.open(_PROPERTY_BLOB, CONTEXT) == _PROPERTY_PLAINTEXT


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, len(_PROPERTY_BLOB) - 1), extra=st.binary(min_size=1, max_size=8))
def test_truncation_and_extension_are_rejected(cut, extra):
    for data in (_PROPERTY_BLOB[:cut], _PROPERTY_BLOB + extra):
        with pytest.raises(InvalidCiphertextException):
            SEALING.open(data, CONTEXT)


_texts = st.text(max_size=6)


@settings(max_examples=300, deadline=None)
@given(context=st.dictionaries(_texts, _texts, max_size=4).filter(lambda c: c != CONTEXT))
def test_any_other_context_is_rejected(context):
    with pytest.raises(InvalidCiphertextException):
        SEALING.open(_PROPERTY_BLOB, context)


@settings(max_examples=200, deadline=None)
@given(
    plaintext=st.binary(max_size=4096),
    context=st.none() | st.dictionaries(_texts, _texts, max_size=5),
)
def test_anything_sealed_opens_to_itself(plaintext, context):
    data = SEALING.seal(plaintext, context)
    assert SEALING.open(data, context) == plaintext
    assert len(data) == HEADER_SIZE + len(plaintext) + TAG_SIZE
    # The header and the canonical context are the associated data.
    blob = CiphertextBlob.parse(data)
    assert blob.associated_data(canonical_encryption_context(context)).startswith(blob.header)
