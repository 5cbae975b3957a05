"""How a store is sealed, as recorded in ``server_settings`` at ``openkms operator init``.

Nothing secret is in it: the seal's type and id, the Shamir parameters with each share's
digest, or where the PKCS#11 token and its PIN file are. A store without it is sealed by the
development key file (every store before sealing existed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from openkms.seal.keyring import SEAL_CONFIG_SETTING
from openkms.storage.repository import Transaction

SHAMIR = "shamir"
PKCS11 = "pkcs11"


@dataclass(frozen=True)
class Pkcs11Location:
    library: str
    token_label: str
    key_label: str
    pin_file: str


@dataclass(frozen=True)
class SealConfig:
    type: str
    seal_id: str
    shares: int = 0
    threshold: int = 0
    # SLIP-39's identifier of this split: a share of another init says so at once.
    share_set: int = 0
    share_digests: tuple[str, ...] = field(default_factory=tuple)
    pkcs11: Pkcs11Location | None = None

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> SealConfig:
        values = json.loads(data)
        pkcs11 = values.pop("pkcs11")
        values["share_digests"] = tuple(values["share_digests"])
        return cls(**values, pkcs11=Pkcs11Location(**pkcs11) if pkcs11 else None)


def read_seal_config(tx: Transaction) -> SealConfig | None:
    stored = tx.get_setting(SEAL_CONFIG_SETTING)
    return None if stored is None else SealConfig.decode(stored)
