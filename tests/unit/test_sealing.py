"""The sharp parts of sealing in isolation: Shamir shares and their checks, the keyring's
seal and rotation, the sealable root key, the node's shared state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openkms.crypto.integrity import IntegrityError
from openkms.errors import ServiceSealed
from openkms.seal import shamir
from openkms.seal.keyring import (
    Keyring,
    SealKey,
    follow_upgrades,
    open_keyring,
    seal_keyring,
    wrap_upgrade,
)
from openkms.seal.node_state import NodeSealState, NodeState
from openkms.seal.operator import check_share
from openkms.seal.seal_config import SHAMIR, SealConfig
from openkms.seal.sealable import SealableRootKey


def _config(texts: list[str], seal_id: str = "seal-1") -> SealConfig:
    parsed = [shamir.parse(t) for t in texts]
    digests = tuple(shamir.share_digest(p, seal_id) for p in parsed)
    return SealConfig(
        SHAMIR, seal_id, len(texts), parsed[0].threshold, parsed[0].identifier, digests
    )


def test_any_threshold_of_shares_combine_and_fewer_do_not() -> None:
    secret = os.urandom(32)
    texts = shamir.split(secret, 5, 3)
    parsed = [shamir.parse(t) for t in texts]
    assert shamir.combine([parsed[4], parsed[0], parsed[2]]) == secret
    assert shamir.combine(parsed[1:4]) == secret
    with pytest.raises(shamir.BadShare):
        shamir.combine(parsed[:2])


def test_every_bad_share_is_refused_at_once_without_quoting_it() -> None:
    texts = shamir.split(os.urandom(32), 5, 3)
    config = _config(texts)
    other = shamir.split(os.urandom(32), 5, 3)
    for bad, why in [
        (other[0], "another seal"),
        (" ".join(texts[0].split()[:-1] + ["academic"]), "malformed"),
        (" ".join(texts[0].split()[:20]), "malformed"),
        ("", "malformed"),
    ]:
        with pytest.raises(shamir.BadShare, match=why) as caught:
            check_share(config, bad)
        assert bad not in str(caught.value) or not bad
    # A well-formed share of the same split that is not one of the seal's digests.
    forged = _config(texts[:4] + texts[:1])
    with pytest.raises(shamir.BadShare, match="not one of"):
        check_share(forged, texts[4])
    assert check_share(config, texts[3].upper() + "  ").index == shamir.parse(texts[3]).index


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError):
        shamir.split(os.urandom(32), 2, 3)
    with pytest.raises(ValueError):
        shamir.split(os.urandom(32), 3, 1)
    assert len(shamir.split(os.urandom(32), 1, 1)) == 1


def test_the_keyring_opens_only_with_its_seal_and_seal_id() -> None:
    keyring = Keyring.new()
    seal = SealKey(os.urandom(32))
    sealed = seal_keyring(keyring, seal, "a")
    assert open_keyring(sealed, seal, "a") == keyring
    with pytest.raises(IntegrityError):
        open_keyring(sealed, SealKey(os.urandom(32)), "a")
    with pytest.raises(IntegrityError):
        open_keyring(sealed, seal, "b")
    assert keyring.generations[1].hex() not in repr(keyring)
    assert repr(seal) == "SealKey()"


def test_rotation_keeps_old_generations_and_upgrades_lead_to_new_ones() -> None:
    keyring = Keyring.new()
    old = keyring.root_key().wrap(b"v1", b"b")
    rotated = keyring.rotated().rotated()
    assert rotated.newest == 3
    new = rotated.root_key().wrap(b"v3", b"b")
    upgrades = {g: wrap_upgrade(rotated, g) for g in (2, 3)}
    learned = follow_upgrades(keyring, upgrades)
    assert learned == rotated
    assert learned.root_key().unwrap(old, b"b") == b"v1"
    assert learned.root_key().unwrap(new, b"b") == b"v3"


def test_a_sealed_root_key_wraps_nothing_and_learns_newer_generations() -> None:
    root = SealableRootKey(SHAMIR)
    with pytest.raises(ServiceSealed):
        root.wrap(b"x", b"b")
    keyring = Keyring.new()
    rotated = keyring.rotated()
    root.unseal(keyring, None)
    newer = rotated.root_key().wrap(b"new", b"b")
    root.find_newer = lambda current: follow_upgrades(current, {2: wrap_upgrade(rotated, 2)})
    assert root.unwrap(newer, b"b") == b"new"
    assert root.generation == 2
    root.seal()
    with pytest.raises(ServiceSealed):
        root.unwrap(newer, b"b")


def test_the_node_state_is_noise_under_another_boot_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    state = NodeSealState(tmp_path, key)
    before = state.epoch()
    state.update(lambda _: NodeState(False, [], b"k" * 32))
    assert state.epoch() == before + 1
    assert state.read().seal_key == b"k" * 32
    assert b"k" * 32 not in (tmp_path / "seal.state").read_bytes()
    other = NodeSealState(tmp_path, os.urandom(32))
    assert other.read() == NodeState()
    # A change that fails changes nothing.
    with pytest.raises(RuntimeError):
        state.update(lambda _: (_ for _ in ()).throw(RuntimeError()))
    assert state.read().seal_key == b"k" * 32
