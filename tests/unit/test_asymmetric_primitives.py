"""The crypto modules against published vectors and against other implementations.

End-to-end tests verify openkms's signatures with the openssl command line and
``cryptography``; two pieces have no independent verifier on this machine's OpenSSL 3.0, so
they are pinned here: Ed25519ph by RFC 8032's own test vector, and ML-KEM-512 (PQClean for
encapsulation, kyber-py for key generation) by each doing the other's half.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem
from kyber_py.ml_kem import ML_KEM_512, ML_KEM_768

from openkms.crypto import key_agreement, key_pairs, signatures


def test_ed25519ph_matches_rfc_8032_test_abc() -> None:
    """RFC 8032 section 7.3, "TEST abc". AWS's ED25519_PH_SHA_512 signs the caller's digest D
    as Ed25519ph's message (the input is hashed twice), so D = b"abc" gives the RFC's
    signature."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
    )
    assert key.public_key().public_bytes_raw().hex() == (
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"
    )
    signature = signatures.sign(key, "ED25519_PH_SHA_512", "DIGEST", b"abc")
    assert signature.hex() == (
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
        "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
    )
    assert signatures.verify(key.public_key(), "ED25519_PH_SHA_512", "DIGEST", b"abc", signature)
    assert not signatures.verify(
        key.public_key(), "ED25519_PH_SHA_512", "DIGEST", b"abd", signature
    )


def test_kyber_py_expands_seeds_as_cryptography_does() -> None:
    """The seed layout (d || z) kyber-py uses for ML-KEM-512 keys is FIPS 203's, as
    cryptography reads it for ML-KEM-768."""
    seed = os.urandom(64)
    public, _ = ML_KEM_768.key_derive(seed)
    assert public == mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()


def test_ml_kem_512_interoperates_with_kyber_py_both_ways() -> None:
    key = key_pairs.load_private_key("ML_KEM_512", key_pairs.generate_material("ML_KEM_512"))
    secret, ciphertext = ML_KEM_512.encaps(key.public_bytes_raw)
    assert key_agreement.decapsulate(key, ciphertext) == secret
    ciphertext, secret = key_agreement.encapsulate(key)
    assert (len(ciphertext), len(secret)) == (768, 32)
    assert ML_KEM_512.decaps(key.expanded, ciphertext) == secret


def test_ml_kem_512_keys_export_in_the_seed_form_cryptography_writes() -> None:
    """GenerateDataKeyPair's PKCS#8 for ML-KEM-512 has the layout cryptography gives
    ML-KEM-768 (AWS: "the private key in seed format ... the same length for all ML-KEM key
    pair specs"), and its SPKI carries the raw public key."""
    seed = os.urandom(64)
    ours = key_pairs.pkcs8_der(key_pairs.load_private_key("ML_KEM_512", seed))
    theirs = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert len(ours) == len(theirs) == 86
    assert ours.endswith(seed) and theirs.endswith(seed)
    # The same structure, only the algorithm OID's last arc differs (4.4.1 against 4.4.2).
    assert [a ^ b for a, b in zip(ours, theirs, strict=True)].count(0) == 85
    public, _ = ML_KEM_512.key_derive(seed)
    spki = key_pairs.public_key_der("ML_KEM_512", key_pairs.load_private_key("ML_KEM_512", seed))
    assert spki.endswith(public) and len(spki) == 822
