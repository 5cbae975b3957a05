"""The canonical encoding of an encryption context (openkms.crypto.encryption_context): the
bytes that bind a context to a ciphertext must name exactly one context."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.crypto.encryption_context import canonical_encryption_context

EMPTY = b"\x00\x00\x00\x00"


def decode(data: bytes) -> dict[str, str]:
    """Read a canonical encoding back, strictly: the encoding is a function with an inverse."""
    (count,) = struct.unpack_from(">I", data)
    offset = 4
    pairs: dict[str, str] = {}
    previous: bytes | None = None
    for _ in range(count):
        fields = []
        for _ in range(2):
            (length,) = struct.unpack_from(">I", data, offset)
            offset += 4
            fields.append(data[offset : offset + length])
            assert len(fields[-1]) == length
            offset += length
        key, value = fields
        assert previous is None or previous < key, "keys are sorted by their UTF-8 bytes"
        previous = key
        pairs[key.decode("utf-8")] = value.decode("utf-8")
    assert offset == len(data), "nothing follows the last pair"
    return pairs


def test_the_encoding_of_a_small_context():
    assert canonical_encryption_context({"b": "2", "a": "1"}) == (
        b"\x00\x00\x00\x02"
        + b"\x00\x00\x00\x01a\x00\x00\x00\x011"
        + b"\x00\x00\x00\x01b\x00\x00\x00\x012"
    )


def test_no_context_and_an_empty_context_are_the_same():
    assert canonical_encryption_context(None) == canonical_encryption_context({}) == EMPTY


def test_the_classic_ambiguities_are_not():
    pairs = [
        ({"ab": "c"}, {"a": "bc"}),
        ({"a": "b", "c": "d"}, {"a": "b,c=d"}),
        ({"a": "b", "c": "d"}, {"a": "b\x00c\x00d"}),
        ({"a": ""}, {"": "a"}),
        ({"a": "b"}, {"a=b": ""}),
        ({"": ""}, {}),
    ]
    for first, second in pairs:
        assert canonical_encryption_context(first) != canonical_encryption_context(second)


def test_keys_are_ordered_by_utf8_bytes_not_by_code_units():
    # U+FF61 sorts after U+1F600 in UTF-16 code units but before it in UTF-8 (and code points).
    context = {"\U0001f600": "emoji", "\uff61": "halfwidth", "z": "ascii"}
    encoded = canonical_encryption_context(context)
    assert decode(encoded) == context
    assert (
        encoded.index(b"z")
        < encoded.index("\uff61".encode())
        < encoded.index("\U0001f600".encode())
    )


def test_lengths_count_bytes_not_characters():
    encoded = canonical_encryption_context({"é": "€"})
    assert encoded == b"\x00\x00\x00\x01\x00\x00\x00\x02\xc3\xa9\x00\x00\x00\x03\xe2\x82\xac"


_texts = st.text(max_size=12)
_contexts = st.dictionaries(_texts, _texts, max_size=6)


@settings(max_examples=300, deadline=None)
@given(_contexts)
def test_the_encoding_decodes_to_its_context(context):
    assert decode(canonical_encryption_context(context)) == context


@settings(max_examples=300, deadline=None)
@given(_contexts, st.randoms(use_true_random=False))
def test_the_order_pairs_are_given_in_does_not_matter(context, random):
    items = list(context.items())
    random.shuffle(items)
    assert canonical_encryption_context(dict(items)) == canonical_encryption_context(context)


@settings(max_examples=500, deadline=None)
@given(_contexts, _contexts)
def test_different_contexts_encode_differently(first, second):
    if first != second:
        assert canonical_encryption_context(first) != canonical_encryption_context(second)
    else:
        assert canonical_encryption_context(first) == canonical_encryption_context(second)


@settings(max_examples=300, deadline=None)
@given(_contexts, _texts, _texts)
def test_no_encoding_is_a_prefix_of_another_with_one_more_pair(context, key, value):
    if key in context:
        return
    shorter = canonical_encryption_context(context)
    longer = canonical_encryption_context({**context, key: value})
    assert not longer.startswith(shorter)
