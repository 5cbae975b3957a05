"""The root of trust: an object that wraps and unwraps every secret openkms stores.

``RootKey`` is the interface; ``AesGcmRootKey`` wraps under 256-bit root keys held in memory:
the development key file's, or a keyring's generations (``keyring``) unwrapped by a seal
(Shamir shares or a PKCS#11 token) and held by a ``SealableRootKey``.
"""

from openkms.seal.root_key import AesGcmRootKey, RootKey, WrappedFormat

__all__ = ["AesGcmRootKey", "RootKey", "WrappedFormat"]
