"""One node's seal: status, unsealing with shares (or the token), sealing, root-key rotation.

Every worker process has a ``SealControl``; they agree through the node's shared state
(``openkms.seal.node_state``): a worker that takes the last share writes the seal key there
(under the boot key) and each other worker opens the keyring with it on its next request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from openkms.crypto.integrity import IntegrityError
from openkms.seal import shamir
from openkms.seal.keyring import SealCipher, SealKey
from openkms.seal.node_state import NodeSealState, NodeState
from openkms.seal.operator import SealError, check_share, read_keyring, rotate
from openkms.seal.pkcs11_seal import Pkcs11Seal, TokenError
from openkms.seal.seal_config import PKCS11, SealConfig, read_seal_config
from openkms.seal.sealable import SealableRootKey
from openkms.storage import Database

log = logging.getLogger(__name__)


class AlreadyUnsealed(SealError):
    pass


class SealControl:
    def __init__(
        self,
        db: Database,
        root: SealableRootKey,
        state: NodeSealState,
        forget_secrets: Callable[[], None],
    ) -> None:
        self._db = db
        self._root = root
        self._state = state
        self._forget = forget_secrets
        self._applied = -1
        self._lock = threading.Lock()

    @property
    def sealed(self) -> bool:
        return self._root.sealed

    def is_behind(self) -> bool:
        return self._state.epoch() != self._applied

    def refresh(self) -> None:
        """Follow the node's state: seal, or unseal with the key another worker combined."""
        with self._lock:
            epoch = self._state.epoch()
            if epoch == self._applied:
                return
            state = self._state.read()
            if state.sealed and not self._root.sealed:
                self._drop()
            elif not state.sealed and self._root.sealed:
                self._open(state)
            elif not state.sealed and self._root.find_newer is not None:
                # Another worker rotated the root key: take the new generation now, so this
                # worker too wraps new values with it.
                self._root.unseal(self._root.find_newer(self._root.keyring), self._root.cipher)
            self._applied = epoch

    def status(self) -> dict[str, Any]:
        config = self._config()
        state = self._state.read()
        return {
            "sealed": self._root.sealed,
            "type": config.type,
            "threshold": config.threshold,
            "shares": config.shares,
            "progress": len(state.shares) if state.sealed else 0,
            "generation": None if self._root.sealed else self._root.keyring.newest,
        }

    def submit(self, text: str | None) -> dict[str, Any]:
        config = self._config()
        if config.type == PKCS11:
            # Nothing an unauthenticated caller sends can stand for the operator here (a sealed
            # node cannot check a signature), so an operator's seal holds until the server is
            # restarted, which unseals through the token (as Vault's auto-unseal does).
            if self._root.sealed:
                raise SealError("a PKCS#11 store unseals through its token at start: restart it")
            raise AlreadyUnsealed("the service is already unsealed")
        if text is None:
            raise shamir.BadShare("give a share")
        share = check_share(config, text)

        def add(state: NodeState) -> NodeState:
            if not state.sealed:
                raise AlreadyUnsealed("the service is already unsealed")
            given = [shamir.parse(t) for t in state.shares]
            if any(g.index == share.index for g in given):
                raise shamir.BadShare("this share was already given")
            given.append(share)
            if len(given) < config.threshold:
                return NodeState(True, [g.text for g in given])
            seal_key = shamir.combine(given)
            with self._db.transaction() as tx:
                read_keyring(tx, config, SealKey(seal_key))  # the AEAD tag checks the combination
            return NodeState(False, [], seal_key)

        try:
            self._state.update(add)
        except IntegrityError:
            raise shamir.BadShare("the shares do not open this store's keyring") from None
        self.refresh()
        return self.status()

    def reset(self) -> dict[str, Any]:
        def clear(state: NodeState) -> NodeState:
            return state if not state.sealed else NodeState(True, [])

        self._state.update(clear)
        return self.status()

    def seal(self) -> None:
        self._state.update(lambda state: NodeState(sealed=True))
        self.refresh()

    def rotate(self) -> int:
        cipher = self._root.cipher
        if cipher is None:
            raise SealError("the service is sealed")
        keyring = rotate(self._db, self._root.keyring, cipher, self._config().seal_id)
        self._root.unseal(keyring, cipher)
        self._state.update(lambda state: state)  # the other workers follow
        return keyring.newest

    def _config(self) -> SealConfig:
        with self._db.transaction() as tx:
            config = read_seal_config(tx)
        if config is None:
            raise SealError("this store has no seal (it uses the development key file)")
        return config

    def _open(self, state: NodeState) -> None:
        config = self._config()
        cipher: SealCipher
        try:
            if config.type == PKCS11:
                assert config.pkcs11 is not None
                cipher = Pkcs11Seal(config.pkcs11)
            elif state.seal_key is not None:
                cipher = SealKey(state.seal_key)
            else:
                return
            with self._db.transaction() as tx:
                keyring = read_keyring(tx, config, cipher)
        except (TokenError, IntegrityError, SealError) as error:
            # The message names the library, label or the failure's kind; never a PIN or key.
            log.error("cannot unseal: %s", error if str(error) else type(error).__name__)
            return
        self._root.unseal(keyring, cipher)
        log.info("unsealed (root key generation %d)", keyring.newest)

    def _drop(self) -> None:
        cipher = self._root.cipher
        self._root.seal()
        if isinstance(cipher, Pkcs11Seal):
            cipher.close()
        self._forget()
        log.warning("sealed: the root key and every cached key are dropped from memory")
