"""Logging in to a cluster's PKCS#11 token, as ConnectCustomKeyStore does, with the answer
as AWS's ConnectionErrorCode when it fails. Never carries the PIN."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pkcs11
from pkcs11 import Attribute
from pkcs11.exceptions import (
    NoSuchToken,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)

from openkms.keystore.clusters import TokenLocation

# python-pkcs11 initialises a PKCS#11 library with C_Initialize(NULL), which tells it that
# no two threads will call it at once, and SoftHSM2 then fails (CKR_GENERAL_ERROR) when they
# do. So a process makes one call into a token at a time: every session opened, used or
# closed here holds this lock. Worker processes are separate, so a node's token still sees
# one caller per worker.
TOKEN_CALLS = threading.RLock()


# How openkms makes every AES key inside a token (the seal key, keys in custom key stores):
# its value can never be read out, not even wrapped, and it can only encrypt and decrypt.
SEALED_AES_KEY = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
}


class LoginFailed(Exception):
    """``code`` is AWS's ConnectionErrorCode for why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def open_session(location: TokenLocation, pin: str | None) -> Any:
    """A read-write session on the token, logged in with ``pin`` (None: the application is
    logged in already, through another of its sessions)."""
    with TOKEN_CALLS:
        return _open_session(location, pin)


def _open_session(location: TokenLocation, pin: str | None) -> Any:
    try:
        library = pkcs11.lib(location.library)
        token = library.get_token(token_label=location.token_label)
    except (NoSuchToken, PKCS11Error, OSError, RuntimeError):
        raise LoginFailed("CLUSTER_NOT_FOUND") from None
    try:
        if pin is None:
            return token.open(rw=True)
        return token.open(user_pin=pin, rw=True)
    except (PinIncorrect, PinInvalid, PinLenRange):
        raise LoginFailed("INVALID_CREDENTIALS") from None
    except PinLocked:
        raise LoginFailed("USER_LOCKED_OUT") from None
    except UserAlreadyLoggedIn:
        raise LoginFailed("USER_LOGGED_IN") from None
    except PKCS11Error:
        raise LoginFailed("INTERNAL_ERROR") from None


def check_login(location: TokenLocation, pin: str) -> None:
    """Raise ``LoginFailed`` unless the token accepts ``pin``."""
    with TOKEN_CALLS:
        session = _open_session(location, pin)
        with contextlib.suppress(PKCS11Error):
            session.close()
