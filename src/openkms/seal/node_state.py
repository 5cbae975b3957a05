"""The seal state one node's worker processes share: sealed or not, the shares given so far.

An operator's unseal calls may land on any worker, and every worker must unseal (or seal)
together. So the state lives in ``<data-dir>/seal.state``, encrypted under a *boot key* that
only exists in the memory of this node's processes (the parent makes it and hands it to the
workers it spawns): the file holds shares and, once unsealed, the seal key, but after a
restart (or to anyone who copies the data directory) it is noise. ``seal.epoch`` is an 8-byte
counter mapped into every worker, bumped on each change, so a worker notices a change with
one memory read per request; it is also the lock writers take.
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BOOT_KEY_ENV = "OPENKMS_SEAL_BOOT_KEY"
STATE_FILE = "seal.state"
EPOCH_FILE = "seal.epoch"
_COUNTER = struct.Struct(">Q")
_AAD = b"openkms/node-seal-state/v1"


@dataclass
class NodeState:
    sealed: bool = True
    # The shares given so far (SLIP-39 text), in the order given.
    shares: list[str] = field(default_factory=list)
    # The combined seal key (Shamir), once unsealed, for the other workers.
    seal_key: bytes | None = None

    def __repr__(self) -> str:
        return f"NodeState(sealed={self.sealed}, progress={len(self.shares)})"


class NodeSealState:
    def __init__(self, data_dir: Path, boot_key: bytes) -> None:
        self._state_path = data_dir / STATE_FILE
        self._cipher = AESGCM(boot_key)
        fd = os.open(data_dir / EPOCH_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(fd).st_size < _COUNTER.size:
            os.write(fd, bytes(_COUNTER.size))
        self._map = mmap.mmap(fd, _COUNTER.size)
        self._lock_fd = fd

    def epoch(self) -> int:
        return int(_COUNTER.unpack_from(self._map, 0)[0])

    def read(self) -> NodeState:
        try:
            data = self._state_path.read_bytes()
            plain = self._cipher.decrypt(data[:12], data[12:], _AAD)
        except (OSError, InvalidTag, ValueError):
            # No file, or one from an earlier boot (another boot key): nothing was given.
            return NodeState()
        values = json.loads(plain)
        key = values["seal_key"]
        return NodeState(values["sealed"], values["shares"], bytes.fromhex(key) if key else None)

    def update(self, change: Callable[[NodeState], NodeState]) -> NodeState:
        with self._locked():
            state = change(self.read())
            self._write(state)
            _COUNTER.pack_into(self._map, 0, self.epoch() + 1)
            return state

    def close(self) -> None:
        self._map.close()
        os.close(self._lock_fd)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _write(self, state: NodeState) -> None:
        plain = json.dumps(
            {
                "sealed": state.sealed,
                "shares": state.shares,
                "seal_key": state.seal_key.hex() if state.seal_key else None,
            }
        ).encode()
        nonce = os.urandom(12)
        temporary = self._state_path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(nonce + self._cipher.encrypt(nonce, plain, _AAD))
        os.replace(temporary, self._state_path)


def boot_key_from_environment() -> bytes | None:
    value = os.environ.get(BOOT_KEY_ENV)
    return bytes.fromhex(value) if value else None
