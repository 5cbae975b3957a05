"""The root of trust: an object that wraps and unwraps every secret openkms stores.

``RootKey`` is the interface; ``AesGcmRootKey`` wraps under 256-bit root keys held in memory
(the development key file is one source of them; Shamir shares and an HSM come later).
"""

from openkms.seal.root_key import AesGcmRootKey, RootKey, WrappedFormat

__all__ = ["AesGcmRootKey", "RootKey", "WrappedFormat"]
