"""What every operation is handed: who is calling, where, and the services it may use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from openkms.authz.authorizer import Authorizer
from openkms.clock import Clock
from openkms.iam.principal import Principal
from openkms.keystore import KeyStore
from openkms.keystore.clusters import TokenLocation
from openkms.keystore.token_keys import TokenKeys
from openkms.ops.key_directory import KeyDirectory
from openkms.seal import RootKey
from openkms.storage import Database

if TYPE_CHECKING:
    from openkms.audit.key_usage import KeyUsage


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: Principal
    region: str
    request_id: str
    # What the aws:SourceIp and aws:SecureTransport condition keys say.
    source_ip: str | None = None
    secure_transport: bool = False

    @property
    def account_id(self) -> str:
        return self.principal.account_id


@dataclass(slots=True)
class Services:
    db: Database
    keystore: KeyStore
    clock: Clock
    keys: KeyDirectory
    partition: str = "aws"
    # The server's authorizer, for handlers that must decide again (the lockout check).
    authorizer: Authorizer | None = None
    # GetKeyLastUsage's reader of the audit trail; None with the trail off.
    key_usage: KeyUsage | None = None
    # Custom key stores: the root key that wraps their PINs, and the PKCS#11 tokens
    # configured as CloudHSM clusters (openkms.keystore.clusters).
    root_key: RootKey | None = None
    clusters: Mapping[str, TokenLocation] = field(default_factory=dict)
    # Custody of the keys made in custom key stores (the router in ``keystore`` sends their
    # handles there too); None where the server was built without it (in-process tests).
    tokens: TokenKeys | None = None
