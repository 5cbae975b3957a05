"""The crypto modules against published vectors and against other implementations.

End-to-end tests verify openkms's signatures with the openssl command line and
``cryptography``; two pieces have no independent verifier on this machine's OpenSSL 3.0, so
they are pinned here: Ed25519ph by RFC 8032's own test vector, and ML-KEM-512 (PQClean for
encapsulation, kyber-py for key generation) by each doing the other's half.
"""

from __future__ import annotations

import os

import pytest
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


def test_imported_keys_of_other_algorithms_or_unknown_ones_are_refused(tmp_path) -> None:
    """An RSASSA-PSS-only key (as OpenSSL makes one) is not an RSA_2048 key's material:
    cryptography loads it as a plain RSA key, and re-encoded it would lose its restriction.
    A key of an algorithm cryptography does not know is refused, not a crash."""
    import subprocess

    from cryptography.hazmat.primitives.asymmetric import rsa

    pss_file = tmp_path / "pss.der"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048",
         "-outform", "DER", "-out", str(pss_file)],
        check=True, capture_output=True,
    )  # fmt: skip
    pss = pss_file.read_bytes()
    assert isinstance(serialization.load_der_private_key(pss, None), rsa.RSAPrivateKey)
    plain = rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert key_pairs.material_from_pkcs8("RSA_2048", plain)
    rsa_encryption = bytes.fromhex("06092a864886f70d010101")
    unknown = plain.replace(rsa_encryption, rsa_encryption[:-1] + b"\x7f", 1)
    for material in (pss, unknown):
        with pytest.raises(key_pairs.NotKeyMaterial):
            key_pairs.material_from_pkcs8("RSA_2048", material)


def test_a_peer_key_of_an_unknown_algorithm_is_refused_not_a_crash() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    peer = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    # Well-formed OIDs nobody assigned: cryptography raises UnsupportedAlgorithm for them.
    p256, ec_public_key = bytes.fromhex("06082a8648ce3d030107"), bytes.fromhex("06072a8648ce3d0201")
    unknown_curve = peer.replace(p256, p256[:-1] + b"\x7f")
    unknown_type = peer.replace(ec_public_key, ec_public_key[:-1] + b"\x7f")
    mine = ec.generate_private_key(ec.SECP256R1())
    for data in (unknown_curve, unknown_type):
        with pytest.raises(key_agreement.PeerKeyError):
            key_agreement.derive_shared_secret(mine, data)


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
    key = key_pairs.load_private_key("ML_KEM_512", key_pairs.generate_material("ML_KEM_512"))
    seed = key.seed
    ours = key_pairs.pkcs8_der(key)
    theirs = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert len(ours) == len(theirs) == 86
    assert ours.endswith(seed) and theirs.endswith(seed)
    # The same structure, only the algorithm OID's last arc differs (4.4.1 against 4.4.2).
    assert [a ^ b for a, b in zip(ours, theirs, strict=True)].count(0) == 85
    public, expanded = ML_KEM_512.key_derive(seed)
    assert (key.public_bytes_raw, key.expanded) == (public, expanded)
    spki = key_pairs.public_key_der("ML_KEM_512", key)
    assert spki.endswith(public) and len(spki) == 822
