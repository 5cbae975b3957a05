"""Request quotas per account and Region, as AWS KMS applies them: when a class of requests
comes faster than its quota, the excess is answered ``ThrottlingException`` instead of
queueing without bound.

Classes follow AWS's shared quotas: symmetric cryptographic operations (Encrypt, Decrypt,
ReEncrypt, GenerateDataKey*, GenerateRandom, GenerateMac, VerifyMac), RSA and ECC
cryptographic operations (by the key's type), and management operations. The defaults are
AWS's for the crypto classes; management operations share one generous quota (AWS has one
per operation, 5 to 2,000 per second). Each worker process enforces its share (quota / N),
so the node as a whole enforces the quota.
"""

from __future__ import annotations

from openkms.errors import THROTTLED_MESSAGE, ThrottlingException
from openkms.token_buckets import TokenBuckets

SYMMETRIC, RSA, ECC, MANAGEMENT = "symmetric", "rsa", "ecc", "management"

DEFAULT_QUOTAS: dict[str, float] = {
    SYMMETRIC: 10_000.0,
    RSA: 500.0,
    ECC: 300.0,
    MANAGEMENT: 1_000.0,
}

_CRYPTOGRAPHIC = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateRandom",
        "GenerateMac",
        "VerifyMac",
        "Sign",
        "Verify",
        "DeriveSharedSecret",
        "Encapsulate",
        "Decapsulate",
    }
)


def quota_class(operation: str, key_spec: str | None) -> str:
    if operation not in _CRYPTOGRAPHIC:
        return MANAGEMENT
    if key_spec is not None and key_spec.startswith("RSA_"):
        return RSA
    if key_spec is not None and (key_spec.startswith("ECC_") or key_spec == "SM2"):
        return ECC
    return SYMMETRIC


def parse_quotas(items: tuple[str, ...] | list[str]) -> dict[str, float]:
    """``CLASS=N`` settings over AWS's defaults; raises ValueError on anything else."""
    quotas = dict(DEFAULT_QUOTAS)
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in quotas:
            raise ValueError(f"a quota is CLASS=N with CLASS one of {', '.join(quotas)}")
        rate = float(value)
        if rate <= 0:
            raise ValueError("a quota is a positive number of requests per second")
        quotas[name] = rate
    return quotas


class RequestQuotas:
    def __init__(self, quotas: dict[str, float], workers: int = 1) -> None:
        self._rates = {name: rate / max(1, workers) for name, rate in quotas.items()}
        self._buckets = TokenBuckets()

    def charge(self, account_id: str, region: str, operation: str, key_spec: str | None) -> None:
        cls = quota_class(operation, key_spec)
        if not self._buckets.take((account_id, region, cls), self._rates[cls]):
            raise ThrottlingException(THROTTLED_MESSAGE)
