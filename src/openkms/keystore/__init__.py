"""The protected boundary: the only code that ever holds unwrapped key material."""

from openkms.keystore.base import IntegrityError, KeyHandle, KeyStore, UnsupportedByKeyStore
from openkms.keystore.software import SoftwareKeyStore

__all__ = ["IntegrityError", "KeyHandle", "KeyStore", "SoftwareKeyStore", "UnsupportedByKeyStore"]
