"""What the custom key store tests share: SoftHSM2 tokens standing in for two CloudHSM
clusters, and small boto3 helpers."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import SOFTHSM_LIBRARY, softhsm_tokens

PIN = "cks-user-pin-5917"
SO_PIN = "so-pin-8765"
CLUSTER_A = "cluster-abcdefghijk"
CLUSTER_B = "cluster-bcdefghijkl"
CLUSTER_UNCONFIGURED = "cluster-zzzzzzzzzzz"
TOKEN_A = "cks-a"
TOKEN_B = "cks-b"
ANCHOR = "-----BEGIN CERTIFICATE-----\nMIIBtrustanchor\n-----END CERTIFICATE-----"


def cluster_tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two fresh SoftHSM2 tokens, each standing in for one CloudHSM cluster: the server
    environment that configures them."""
    base = tmp_path_factory.mktemp("softhsm-cks")
    conf = softhsm_tokens(base, PIN, SO_PIN, TOKEN_A, TOKEN_B)
    return {
        "SOFTHSM2_CONF": str(conf),
        "OPENKMS_CLOUDHSM_CLUSTERS": (
            f"{CLUSTER_A}={SOFTHSM_LIBRARY}:{TOKEN_A},{CLUSTER_B}={SOFTHSM_LIBRARY}:{TOKEN_B}"
        ),
    }


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def stores(kms: Any) -> list[dict[str, Any]]:
    return list(kms.describe_custom_key_stores()["CustomKeyStores"])


def create_store(kms: Any, name: str, cluster: str = CLUSTER_A, pin: str = PIN) -> str:
    return str(
        kms.create_custom_key_store(
            CustomKeyStoreName=name,
            CloudHsmClusterId=cluster,
            TrustAnchorCertificate=ANCHOR,
            KeyStorePassword=pin,
        )["CustomKeyStoreId"]
    )


def store_state(kms: Any, store_id: str) -> dict[str, Any]:
    found = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"]
    assert len(found) == 1
    return dict(found[0])
