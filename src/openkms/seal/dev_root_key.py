"""The development root key: 256 random bits in a file, ``<data-dir>/root.key`` by default
(mode 0600). Nodes of a cluster share one file (``--root-key-file``).

It protects nothing against someone who can read the data directory, which is why a server
on it listens on loopback only. ``openkms operator init`` seals a store instead (Shamir
shares or a PKCS#11 token; ``openkms.seal.keyring``), adopting this key as generation 1.
"""

from __future__ import annotations

import os
from pathlib import Path

from openkms.seal.root_key import AesGcmRootKey

# The key file holds one key, generation 1. Rotating it is for the sealed roots of trust.
DEV_ROOT_KEY_GENERATION = 1


def open_dev_root_key(path: Path) -> AesGcmRootKey:
    return AesGcmRootKey({DEV_ROOT_KEY_GENERATION: load_or_create_dev_root_key(path)})


def load_or_create_dev_root_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = os.urandom(32)
        # O_EXCL: two servers starting at once on one data dir must not both write a key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_dev_root_key(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
    if len(key) != 32:
        raise RuntimeError(f"{path} is not a 256-bit root key")
    return key
