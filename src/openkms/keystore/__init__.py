"""The protected boundary: the only code that ever holds unwrapped key material."""

from openkms.keystore.base import KeyStore, MaterialRef
from openkms.keystore.software import SoftwareKeyStore

__all__ = ["KeyStore", "MaterialRef", "SoftwareKeyStore"]
