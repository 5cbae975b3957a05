"""The one table of key specs: what each KeySpec is for and which algorithms it runs.

CreateKey's validation, DescribeKey's metadata and every operation's usage and algorithm
checks read this table, so a spec's capabilities are written down once (as Vault's
``keysutil`` answers "can this key type sign?" from one table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class KeySpec(StrEnum):
    SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    ECC_NIST_P256 = "ECC_NIST_P256"
    ECC_NIST_P384 = "ECC_NIST_P384"
    ECC_NIST_P521 = "ECC_NIST_P521"
    ECC_SECG_P256K1 = "ECC_SECG_P256K1"
    ECC_NIST_EDWARDS25519 = "ECC_NIST_EDWARDS25519"
    HMAC_224 = "HMAC_224"
    HMAC_256 = "HMAC_256"
    HMAC_384 = "HMAC_384"
    HMAC_512 = "HMAC_512"
    SM2 = "SM2"
    ML_DSA_44 = "ML_DSA_44"
    ML_DSA_65 = "ML_DSA_65"
    ML_DSA_87 = "ML_DSA_87"
    ML_KEM_512 = "ML_KEM_512"
    ML_KEM_768 = "ML_KEM_768"
    ML_KEM_1024 = "ML_KEM_1024"


class KeyUsage(StrEnum):
    ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
    SIGN_VERIFY = "SIGN_VERIFY"
    GENERATE_VERIFY_MAC = "GENERATE_VERIFY_MAC"
    KEY_AGREEMENT = "KEY_AGREEMENT"
    ENCAPSULATE_DECAPSULATE = "ENCAPSULATE_DECAPSULATE"


class EncryptionAlgorithm(StrEnum):
    SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
    RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"
    RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
    SM2PKE = "SM2PKE"


class SigningAlgorithm(StrEnum):
    RSASSA_PSS_SHA_256 = "RSASSA_PSS_SHA_256"
    RSASSA_PSS_SHA_384 = "RSASSA_PSS_SHA_384"
    RSASSA_PSS_SHA_512 = "RSASSA_PSS_SHA_512"
    RSASSA_PKCS1_V1_5_SHA_256 = "RSASSA_PKCS1_V1_5_SHA_256"
    RSASSA_PKCS1_V1_5_SHA_384 = "RSASSA_PKCS1_V1_5_SHA_384"
    RSASSA_PKCS1_V1_5_SHA_512 = "RSASSA_PKCS1_V1_5_SHA_512"
    ECDSA_SHA_256 = "ECDSA_SHA_256"
    ECDSA_SHA_384 = "ECDSA_SHA_384"
    ECDSA_SHA_512 = "ECDSA_SHA_512"
    SM2DSA = "SM2DSA"
    ML_DSA_SHAKE_256 = "ML_DSA_SHAKE_256"
    ED25519_SHA_512 = "ED25519_SHA_512"
    ED25519_PH_SHA_512 = "ED25519_PH_SHA_512"


class MacAlgorithm(StrEnum):
    HMAC_SHA_224 = "HMAC_SHA_224"
    HMAC_SHA_256 = "HMAC_SHA_256"
    HMAC_SHA_384 = "HMAC_SHA_384"
    HMAC_SHA_512 = "HMAC_SHA_512"


class KeyAgreementAlgorithm(StrEnum):
    ECDH = "ECDH"


class EncapsulationAlgorithm(StrEnum):
    ML_KEM = "ML_KEM"


class DataKeySpec(StrEnum):
    AES_256 = "AES_256"
    AES_128 = "AES_128"


# Bytes of plaintext data key per DataKeySpec.
DATA_KEY_BYTES: dict[DataKeySpec, int] = {DataKeySpec.AES_256: 32, DataKeySpec.AES_128: 16}


class DataKeyPairSpec(StrEnum):
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    ECC_NIST_P256 = "ECC_NIST_P256"
    ECC_NIST_P384 = "ECC_NIST_P384"
    ECC_NIST_P521 = "ECC_NIST_P521"
    ECC_SECG_P256K1 = "ECC_SECG_P256K1"
    ECC_NIST_EDWARDS25519 = "ECC_NIST_EDWARDS25519"
    SM2 = "SM2"
    ML_KEM_512 = "ML_KEM_512"
    ML_KEM_768 = "ML_KEM_768"
    ML_KEM_1024 = "ML_KEM_1024"


class AlgorithmFamily(StrEnum):
    """Which algorithm list of a spec an operation's algorithm parameter is checked against."""

    ENCRYPTION = "encryption"
    SIGNING = "signing"
    MAC = "mac"
    KEY_AGREEMENT = "key_agreement"
    ENCAPSULATION = "encapsulation"


@dataclass(frozen=True, slots=True)
class SpecInfo:
    """What one key spec can do. An algorithm list is empty where the usage does not apply."""

    usages: tuple[KeyUsage, ...]
    encryption: tuple[EncryptionAlgorithm, ...] = ()
    signing: tuple[SigningAlgorithm, ...] = ()
    mac: tuple[MacAlgorithm, ...] = ()
    key_agreement: tuple[KeyAgreementAlgorithm, ...] = ()
    encapsulation: tuple[EncapsulationAlgorithm, ...] = ()
    symmetric: bool = False
    # Whether this server makes such keys (the table is AWS's; SM2 is served only in AWS's
    # China Regions, and openkms does not serve it: docs/behaviour.md).
    supported: bool = field(default=True)

    def algorithms(self, family: AlgorithmFamily) -> tuple[StrEnum, ...]:
        algorithms: tuple[StrEnum, ...] = getattr(self, family.value)
        return algorithms


_RSA_SIGNING = (
    SigningAlgorithm.RSASSA_PSS_SHA_256,
    SigningAlgorithm.RSASSA_PSS_SHA_384,
    SigningAlgorithm.RSASSA_PSS_SHA_512,
    SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_256,
    SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_384,
    SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_512,
)
_RSA = SpecInfo(
    usages=(KeyUsage.ENCRYPT_DECRYPT, KeyUsage.SIGN_VERIFY),
    encryption=(EncryptionAlgorithm.RSAES_OAEP_SHA_1, EncryptionAlgorithm.RSAES_OAEP_SHA_256),
    signing=_RSA_SIGNING,
)


def _ecc(signing: SigningAlgorithm, key_agreement: bool = True) -> SpecInfo:
    if not key_agreement:
        return SpecInfo(usages=(KeyUsage.SIGN_VERIFY,), signing=(signing,))
    return SpecInfo(
        usages=(KeyUsage.SIGN_VERIFY, KeyUsage.KEY_AGREEMENT),
        signing=(signing,),
        key_agreement=(KeyAgreementAlgorithm.ECDH,),
    )


def _hmac(algorithm: MacAlgorithm) -> SpecInfo:
    return SpecInfo(usages=(KeyUsage.GENERATE_VERIFY_MAC,), mac=(algorithm,), symmetric=True)


_ML_DSA = SpecInfo(usages=(KeyUsage.SIGN_VERIFY,), signing=(SigningAlgorithm.ML_DSA_SHAKE_256,))
_ML_KEM = SpecInfo(
    usages=(KeyUsage.ENCAPSULATE_DECAPSULATE,), encapsulation=(EncapsulationAlgorithm.ML_KEM,)
)

KEY_SPECS: dict[KeySpec, SpecInfo] = {
    KeySpec.SYMMETRIC_DEFAULT: SpecInfo(
        usages=(KeyUsage.ENCRYPT_DECRYPT,),
        encryption=(EncryptionAlgorithm.SYMMETRIC_DEFAULT,),
        symmetric=True,
    ),
    KeySpec.RSA_2048: _RSA,
    KeySpec.RSA_3072: _RSA,
    KeySpec.RSA_4096: _RSA,
    KeySpec.ECC_NIST_P256: _ecc(SigningAlgorithm.ECDSA_SHA_256),
    KeySpec.ECC_NIST_P384: _ecc(SigningAlgorithm.ECDSA_SHA_384),
    KeySpec.ECC_NIST_P521: _ecc(SigningAlgorithm.ECDSA_SHA_512),
    # secp256k1 signs only: AWS offers no key agreement on it.
    KeySpec.ECC_SECG_P256K1: _ecc(SigningAlgorithm.ECDSA_SHA_256, key_agreement=False),
    KeySpec.ECC_NIST_EDWARDS25519: SpecInfo(
        usages=(KeyUsage.SIGN_VERIFY,),
        signing=(SigningAlgorithm.ED25519_SHA_512, SigningAlgorithm.ED25519_PH_SHA_512),
    ),
    KeySpec.HMAC_224: _hmac(MacAlgorithm.HMAC_SHA_224),
    KeySpec.HMAC_256: _hmac(MacAlgorithm.HMAC_SHA_256),
    KeySpec.HMAC_384: _hmac(MacAlgorithm.HMAC_SHA_384),
    KeySpec.HMAC_512: _hmac(MacAlgorithm.HMAC_SHA_512),
    KeySpec.SM2: SpecInfo(
        usages=(KeyUsage.ENCRYPT_DECRYPT, KeyUsage.SIGN_VERIFY, KeyUsage.KEY_AGREEMENT),
        encryption=(EncryptionAlgorithm.SM2PKE,),
        signing=(SigningAlgorithm.SM2DSA,),
        key_agreement=(KeyAgreementAlgorithm.ECDH,),
        supported=False,
    ),
    KeySpec.ML_DSA_44: _ML_DSA,
    KeySpec.ML_DSA_65: _ML_DSA,
    KeySpec.ML_DSA_87: _ML_DSA,
    KeySpec.ML_KEM_512: _ML_KEM,
    KeySpec.ML_KEM_768: _ML_KEM,
    KeySpec.ML_KEM_1024: _ML_KEM,
}


# By plain string, so the hot path builds no enum member to look a spec up.
_BY_NAME: dict[str, SpecInfo] = {spec.value: info for spec, info in KEY_SPECS.items()}


def spec_info(key_spec: str) -> SpecInfo:
    return _BY_NAME[key_spec]


def metadata_algorithms(key_spec: str, key_usage: str) -> dict[str, list[str]]:
    """The algorithm lists DescribeKey reports for a key of this spec and usage."""
    info = spec_info(key_spec)
    usage = KeyUsage(key_usage)
    lists: dict[str, list[str]] = {}
    if usage is KeyUsage.ENCRYPT_DECRYPT:
        lists["EncryptionAlgorithms"] = [a.value for a in info.encryption]
    elif usage is KeyUsage.SIGN_VERIFY:
        lists["SigningAlgorithms"] = [a.value for a in info.signing]
    elif usage is KeyUsage.GENERATE_VERIFY_MAC:
        lists["MacAlgorithms"] = [a.value for a in info.mac]
    elif usage is KeyUsage.KEY_AGREEMENT:
        lists["KeyAgreementAlgorithms"] = [a.value for a in info.key_agreement]
    elif usage is KeyUsage.ENCAPSULATE_DECAPSULATE:
        lists["EncapsulationAlgorithms"] = [a.value for a in info.encapsulation]
    return lists
