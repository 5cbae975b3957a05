"""Secrets other than key material (access-key secrets, check values), wrapped by the root key
and bound to a label naming what they are."""

from __future__ import annotations

from openkms.seal.root_key import RootKey

_SECRET_LABEL = b"openkms/secret/v1\x00"


def wrap_secret(root_key: RootKey, label: str, secret: bytes) -> bytes:
    return root_key.wrap(secret, _SECRET_LABEL + label.encode())


def unwrap_secret(root_key: RootKey, label: str, wrapped: bytes) -> bytes:
    return root_key.unwrap(wrapped, _SECRET_LABEL + label.encode())
