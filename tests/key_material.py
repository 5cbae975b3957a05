"""The test-only path to raw key material: tests that prove material never leaks must know what
it is. Production code has no verb that returns it; this unwraps stored values with the root
key directly, as only a test (or an attacker holding the root key) could."""

from __future__ import annotations

from openkms.keystore.software import material_binding
from openkms.seal import AesGcmRootKey, RootKey
from openkms.seal.dev_root_key import DEV_ROOT_KEY_GENERATION


def root_key_from(raw: bytes) -> AesGcmRootKey:
    return AesGcmRootKey({DEV_ROOT_KEY_GENERATION: raw})


def unwrap_material(root_key: RootKey | bytes, key_arn: str, version: int, wrapped: bytes) -> bytes:
    root = root_key_from(root_key) if isinstance(root_key, bytes) else root_key
    return root.unwrap(wrapped, material_binding(key_arn, version))
