"""The seal key split into Shamir shares (SLIP-39 mnemonics, through ``shamir-mnemonic``).

SLIP-39 gives each share what an operator needs to be told at once that a share is bad: a
Reed-Solomon checksum (a mistyped or truncated share is malformed), the set's identifier (a
share of another ``init`` is refused) and its index and threshold. Combined shares are checked
by SLIP-39's digest, and then by the keyring's AEAD tag. On top of that each share's own
digest is stored (a share is 256 bits of the polynomial, so its SHA-256 tells nothing), so a
well-formed share that is simply wrong is refused when it arrives, not when the threshold is
reached and a whole round of shares has been wasted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import shamir_mnemonic
from shamir_mnemonic import MnemonicError, Share

# PBKDF2 hardens SLIP-39 passphrases; openkms uses none (the secret is 256 random bits), so
# the cheapest setting.
_ITERATION_EXPONENT = 0
MAX_SHARES = 16


class BadShare(ValueError):
    """A share is malformed, of another seal, a repeat, or wrong. Never carries the share."""


@dataclass(frozen=True)
class ParsedShare:
    text: str
    identifier: int
    index: int
    threshold: int


def split(secret: bytes, shares: int, threshold: int) -> list[str]:
    if not 1 <= threshold <= shares <= MAX_SHARES:
        raise ValueError(f"need 1 <= threshold <= shares <= {MAX_SHARES}")
    if threshold == 1 and shares > 1:
        # SLIP-39 allows a threshold of 1 only as one share: each share would be the secret.
        raise ValueError("a threshold of 1 means one share (--shares 1)")
    groups = shamir_mnemonic.generate_mnemonics(
        1, [(threshold, shares)], secret, extendable=True, iteration_exponent=_ITERATION_EXPONENT
    )
    return list(groups[0])


def parse(text: str) -> ParsedShare:
    normalised = " ".join(text.lower().split())
    try:
        share = Share.from_mnemonic(normalised)
    except (MnemonicError, ValueError, KeyError):
        raise BadShare("the share is malformed (check for a mistyped or missing word)") from None
    return ParsedShare(normalised, share.identifier, share.index, share.member_threshold)


def combine(shares: list[ParsedShare]) -> bytes:
    try:
        return shamir_mnemonic.combine_mnemonics([share.text for share in shares])
    except (MnemonicError, ValueError):
        raise BadShare("the shares do not combine into the seal key") from None


def share_digest(share: ParsedShare, seal_id: str) -> str:
    return hashlib.sha256(f"openkms/share/v1\x00{seal_id}\x00{share.text}".encode()).hexdigest()
