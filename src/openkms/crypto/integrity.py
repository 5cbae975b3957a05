"""The one failure of authenticated decryption."""

from __future__ import annotations


class IntegrityError(Exception):
    """Authenticated decryption failed: wrong key, wrong binding or tampered bytes.

    Deliberately carries no detail: which part of a forgery was wrong is never an oracle.
    """
