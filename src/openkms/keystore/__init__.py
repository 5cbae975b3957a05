"""The protected boundary: the only code that ever holds unwrapped key material."""

from openkms.keystore.base import (
    ImportRejected,
    ImportTokenExpired,
    ImportTokenInvalid,
    IntegrityError,
    KeyHandle,
    KeyStore,
    StagedImport,
    UnsupportedByKeyStore,
)
from openkms.keystore.software import SoftwareKeyStore

__all__ = [
    "ImportRejected",
    "ImportTokenExpired",
    "ImportTokenInvalid",
    "IntegrityError",
    "KeyHandle",
    "KeyStore",
    "SoftwareKeyStore",
    "StagedImport",
    "UnsupportedByKeyStore",
]
