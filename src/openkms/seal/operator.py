"""The operator's work on a store's seal: initialise (Shamir or PKCS#11), open the keyring,
rotate the root key, rekey the Shamir seal. One transaction each, under the start-up lock."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from openkms.crypto.integrity import IntegrityError
from openkms.seal import shamir
from openkms.seal.dev_root_key import DEV_ROOT_KEY_GENERATION
from openkms.seal.keyring import (
    KEYRING_SETTING,
    SEAL_CONFIG_SETTING,
    Keyring,
    SealCipher,
    SealKey,
    follow_upgrades,
    open_keyring,
    seal_keyring,
    upgrade_setting,
    wrap_upgrade,
)
from openkms.seal.pkcs11_seal import Pkcs11Seal
from openkms.seal.root_key import AesGcmRootKey
from openkms.seal.seal_config import PKCS11, SHAMIR, Pkcs11Location, SealConfig, read_seal_config
from openkms.seal.secrets import unwrap_secret
from openkms.storage import Database
from openkms.storage.repository import Transaction

# The development root key's check value (openkms.server.runtime writes it).
ROOT_CHECK_SETTING = "root-key-check"
ROOT_CHECK_VALUE = b"openkms root key check"


class SealError(ValueError):
    """The operation is refused; the message says why. Never carries a secret."""


def init_shamir(
    db: Database, shares: int, threshold: int, dev_key_file: Path
) -> tuple[list[str], Keyring]:
    seal_key = os.urandom(32)
    try:
        texts = shamir.split(seal_key, shares, threshold)
    except ValueError as error:
        raise SealError(str(error)) from None
    parsed = [shamir.parse(text) for text in texts]
    seal_id = str(uuid.uuid4())
    config = SealConfig(
        SHAMIR,
        seal_id,
        shares,
        threshold,
        parsed[0].identifier,
        tuple(shamir.share_digest(share, seal_id) for share in parsed),
    )
    keyring = _initialise(db, config, SealKey(seal_key), dev_key_file)
    return texts, keyring


def init_pkcs11(db: Database, location: Pkcs11Location, dev_key_file: Path) -> Keyring:
    token = Pkcs11Seal(location, create=True)
    try:
        return _initialise(db, SealConfig(PKCS11, str(uuid.uuid4()), pkcs11=location), token,
                           dev_key_file)  # fmt: skip
    finally:
        token.close()


def _initialise(
    db: Database, config: SealConfig, cipher: SealCipher, dev_key_file: Path
) -> Keyring:
    with db.transaction() as tx:
        tx.serialise_startup()
        if read_seal_config(tx) is not None:
            raise SealError("this store is already initialised (openkms operator init ran)")
        keyring = _adopted_dev_keyring(tx, dev_key_file) or Keyring.new()
        tx.put_setting(SEAL_CONFIG_SETTING, config.encode())
        tx.put_setting(KEYRING_SETTING, seal_keyring(keyring, cipher, config.seal_id))
    return keyring


def _adopted_dev_keyring(tx: Transaction, dev_key_file: Path) -> Keyring | None:
    """A store with data under the development key file keeps it: the file's key becomes
    generation 1 of the keyring, so everything stored stays readable (delete the file after)."""
    check = tx.get_setting(ROOT_CHECK_SETTING)
    if check is None:
        return None
    try:
        key = dev_key_file.read_bytes()
        unwrap_secret(AesGcmRootKey({DEV_ROOT_KEY_GENERATION: key}), ROOT_CHECK_SETTING, check)
    except (OSError, ValueError, IntegrityError):
        raise SealError(
            f"this store has data under a development key file, and {dev_key_file} is not "
            "that key: give --root-key-file"
        ) from None
    return Keyring({DEV_ROOT_KEY_GENERATION: key})


def read_keyring(tx: Transaction, config: SealConfig, cipher: SealCipher) -> Keyring:
    """The keyring, with every generation rotation added; ``IntegrityError`` for a wrong seal."""
    sealed = tx.get_setting(KEYRING_SETTING)
    if sealed is None:
        raise SealError("the store has a seal but no keyring")
    return newer_generations(tx, open_keyring(sealed, cipher, config.seal_id))


def newer_generations(tx: Transaction, keyring: Keyring) -> Keyring:
    upgrades: dict[int, bytes] = {}
    generation = keyring.newest + 1
    while (entry := tx.get_setting(upgrade_setting(generation))) is not None:
        upgrades[generation] = entry
        generation += 1
    return follow_upgrades(keyring, upgrades) if upgrades else keyring


def rotate(db: Database, keyring: Keyring, cipher: SealCipher, seal_id: str) -> Keyring:
    """A new root-key generation: new values are wrapped by it, old ones still unwrap."""
    with db.transaction() as tx:
        tx.serialise_startup()
        config = read_seal_config(tx)
        if config is None or config.seal_id != seal_id:
            raise SealError(
                "the store was rekeyed since this node unsealed: seal and unseal it first"
            )
        rotated = newer_generations(tx, keyring).rotated()
        tx.put_setting(upgrade_setting(rotated.newest), wrap_upgrade(rotated, rotated.newest))
        tx.replace_setting(KEYRING_SETTING, seal_keyring(rotated, cipher, seal_id))
    return rotated


def rekey_shamir(db: Database, given: list[str], shares: int, threshold: int) -> list[str]:
    """New shares (and threshold) for the same keyring, from a quorum of the current ones."""
    with db.transaction() as tx:
        tx.serialise_startup()
        config = read_seal_config(tx)
        if config is None or config.type != SHAMIR:
            raise SealError("this store is not sealed with Shamir shares")
        parsed = [check_share(config, text) for text in given]
        if len({share.index for share in parsed}) < config.threshold:
            raise SealError(f"{config.threshold} different shares are needed")
        try:
            keyring = read_keyring(tx, config, SealKey(shamir.combine(parsed)))
        except (shamir.BadShare, IntegrityError):
            raise SealError("the shares do not open this store's keyring") from None
        seal_key = os.urandom(32)
        try:
            texts = shamir.split(seal_key, shares, threshold)
        except ValueError as error:
            raise SealError(str(error)) from None
        new_parsed = [shamir.parse(text) for text in texts]
        seal_id = str(uuid.uuid4())
        new_config = SealConfig(
            SHAMIR,
            seal_id,
            shares,
            threshold,
            new_parsed[0].identifier,
            tuple(shamir.share_digest(share, seal_id) for share in new_parsed),
        )
        tx.replace_setting(SEAL_CONFIG_SETTING, new_config.encode())
        tx.replace_setting(KEYRING_SETTING, seal_keyring(keyring, SealKey(seal_key), seal_id))
    return texts


def check_share(config: SealConfig, text: str) -> shamir.ParsedShare:
    """The share, if it is one of this seal's; ``BadShare`` saying why not."""
    share = shamir.parse(text)
    if share.identifier != config.share_set:
        raise shamir.BadShare("the share belongs to another seal (another openkms operator init)")
    if shamir.share_digest(share, config.seal_id) not in config.share_digests:
        raise shamir.BadShare("the share is not one of this seal's shares")
    return share
