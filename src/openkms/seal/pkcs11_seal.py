"""The HSM seal: an AES-256 key inside a PKCS#11 token that wraps the keyring (AES-GCM through
C_Encrypt / C_Decrypt), so the keyring opens only where the token and its PIN are.

The key is made in the token as sensitive and non-extractable: its value can never be read
out, not even wrapped, so the database and every file on disk decrypt nothing without it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pkcs11
from pkcs11 import KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import NoSuchKey, PKCS11Error
from pkcs11.mechanisms import GCMParams

from openkms.crypto.integrity import IntegrityError
from openkms.keystore.token_login import SEALED_AES_KEY, TOKEN_CALLS
from openkms.seal.seal_config import Pkcs11Location

_NONCE = 12
_TAG_BITS = 128
_FORMAT = 1


class TokenError(RuntimeError):
    """The token cannot be used: its library, label, PIN or key. Never carries the PIN."""


def read_pin(pin_file: str) -> str:
    try:
        return Path(pin_file).read_text().strip()
    except OSError as error:
        raise TokenError(f"cannot read the PIN file {pin_file}: {error.strerror}") from None


class Pkcs11Seal:
    """An open session on the token, logged in as its user, and the seal key's handle."""

    def __init__(self, location: Pkcs11Location, create: bool = False) -> None:
        pin = read_pin(location.pin_file)
        try:
            library = pkcs11.lib(location.library)
        except (PKCS11Error, OSError, RuntimeError) as error:
            raise TokenError(
                f"cannot load the PKCS#11 library {location.library}: {type(error).__name__}"
            ) from None
        try:
            token = library.get_token(token_label=location.token_label)
        except (NoSuchKey, PKCS11Error, RuntimeError) as error:
            raise TokenError(
                f"no PKCS#11 token labelled {location.token_label!r} ({type(error).__name__})"
            ) from None
        try:
            self._session = token.open(user_pin=pin, rw=True)
        except PKCS11Error as error:
            # PinIncorrect, PinLocked, …: the exception's name says which; never the PIN.
            raise TokenError(f"cannot log in to the token: {type(error).__name__}") from None
        # python-pkcs11's types: a found key is a Key; encrypting is a mixin's.
        self._key: Any = self._find_or_make(location.key_label, create)

    def __repr__(self) -> str:
        return "Pkcs11Seal()"

    def _find_or_make(self, label: str, create: bool) -> Any:
        try:
            return self._session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=label)
        except NoSuchKey:
            if not create:
                raise TokenError(f"the token has no AES key labelled {label!r}") from None
        except PKCS11Error as error:
            raise TokenError(f"cannot find the seal key: {type(error).__name__}") from None
        return self._session.generate_key(
            KeyType.AES,
            256,
            label=label,
            store=True,
            template=SEALED_AES_KEY,
        )

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        # One call into the library at a time in a process (keystore.token_login).
        with TOKEN_CALLS:
            sealed = self._key.encrypt(
                plaintext,
                mechanism=Mechanism.AES_GCM,
                mechanism_param=GCMParams(nonce, aad, _TAG_BITS),
            )
        return bytes([_FORMAT]) + nonce + bytes(sealed)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) <= 1 + _NONCE or sealed[0] != _FORMAT:
            raise IntegrityError()
        nonce = sealed[1 : 1 + _NONCE]
        try:
            with TOKEN_CALLS:
                return bytes(
                    self._key.decrypt(
                        sealed[1 + _NONCE :],
                        mechanism=Mechanism.AES_GCM,
                        mechanism_param=GCMParams(nonce, aad, _TAG_BITS),
                    )
                )
        except PKCS11Error:
            raise IntegrityError() from None

    def close(self) -> None:
        with TOKEN_CALLS, contextlib.suppress(PKCS11Error):
            self._session.close()
