"""Key and alias ARNs: building them and taking them apart."""

from __future__ import annotations

from dataclasses import dataclass


def key_arn(partition: str, region: str, account_id: str, key_id: str) -> str:
    return f"arn:{partition}:kms:{region}:{account_id}:key/{key_id}"


def alias_arn(partition: str, region: str, account_id: str, alias_name: str) -> str:
    return f"arn:{partition}:kms:{region}:{account_id}:{alias_name}"


@dataclass(frozen=True, slots=True)
class KmsArn:
    partition: str
    region: str
    account_id: str
    resource_type: str  # "key" or "alias"
    resource: str  # the key id, or the whole alias name ("alias/...")


def parse_kms_arn(text: str) -> KmsArn | None:
    """Split a KMS key or alias ARN; ``None`` when it is not one."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms":
        return None
    _, partition, _, region, account_id, resource = parts
    if resource.startswith("key/"):
        return KmsArn(partition, region, account_id, "key", resource[len("key/") :])
    if resource.startswith("alias/"):
        return KmsArn(partition, region, account_id, "alias", resource)
    return None
