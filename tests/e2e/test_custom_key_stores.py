"""PKCS#11 custom key stores (AWS_CLOUDHSM) through boto3, on real SoftHSM2 tokens made for the
test: the store's lifecycle, connecting with the right and a wrong PIN, AWS's errors for bad
input (each changing nothing), a caller who is not allowed, and the PIN nowhere in plaintext."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.audit_support import records, trail_path
from tests.e2e.cks_support import (
    ANCHOR,
    CLUSTER_A,
    CLUSTER_B,
    CLUSTER_UNCONFIGURED,
    PIN,
    cluster_tokens,
    create_store,
    error_code,
    store_state,
    stores,
)
from tests.e2e.test_secrets_at_rest import _database_bytes
from tests.support import (
    ACCOUNT_ID,
    OpenKmsServer,
    drop_postgres_schema,
    postgres_schema_url,
    postgres_url_or_skip,
)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield cluster_tokens(tmp_path_factory)


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tokens, tmp_path) -> Iterator[OpenKmsServer]:
    url = None
    if request.param == "postgresql":
        url = postgres_schema_url(postgres_url_or_skip())
    started = OpenKmsServer(
        tmp_path / "data", database_url=url, env=tokens, extra_args=["--workers", "2"]
    ).start()
    yield started
    started.stop()
    if url is not None:
        drop_postgres_schema(url)


def test_store_lifecycle_on_a_real_token(server):
    kms = server.client()
    store_id = create_store(kms, "vault")
    assert store_id.startswith("cks-")
    store = store_state(kms, store_id)
    assert store["CustomKeyStoreName"] == "vault"
    assert store["CloudHsmClusterId"] == CLUSTER_A
    assert store["TrustAnchorCertificate"] == ANCHOR
    assert store["ConnectionState"] == "DISCONNECTED"
    assert store["CustomKeyStoreType"] == "AWS_CLOUDHSM"
    assert "KeyStorePassword" not in store and "ConnectionErrorCode" not in store
    assert (
        kms.describe_custom_key_stores(CustomKeyStoreName="vault")["CustomKeyStores"][0][
            "CustomKeyStoreId"
        ]
        == store_id
    )

    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id)["ConnectionState"] == "CONNECTED"
    # Connecting a connected store is not an error (AWS).
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    # A connected store cannot be updated or deleted.
    assert (
        error_code(
            kms.update_custom_key_store, CustomKeyStoreId=store_id, NewCustomKeyStoreName="x"
        )
        == "CustomKeyStoreInvalidStateException"
    )
    assert (
        error_code(kms.delete_custom_key_store, CustomKeyStoreId=store_id)
        == "CustomKeyStoreInvalidStateException"
    )
    assert store_state(kms, store_id)["CustomKeyStoreName"] == "vault"

    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id)["ConnectionState"] == "DISCONNECTED"
    assert (
        error_code(kms.disconnect_custom_key_store, CustomKeyStoreId=store_id)
        == "CustomKeyStoreInvalidStateException"
    )
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id, NewCustomKeyStoreName="vault-2", CloudHsmClusterId=CLUSTER_B
    )
    store = store_state(kms, store_id)
    assert (store["CustomKeyStoreName"], store["CloudHsmClusterId"]) == ("vault-2", CLUSTER_B)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id)["ConnectionState"] == "CONNECTED"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)

    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert stores(kms) == []
    assert (
        error_code(kms.describe_custom_key_stores, CustomKeyStoreId=store_id)
        == "CustomKeyStoreNotFoundException"
    )


def test_a_wrong_pin_fails_with_invalid_credentials_and_a_new_password_fixes_it(server):
    kms = server.client()
    store_id = create_store(kms, "wrong-pin", pin="not-the-pin-000")
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    store = store_state(kms, store_id)
    assert store["ConnectionState"] == "FAILED"
    assert store["ConnectionErrorCode"] == "INVALID_CREDENTIALS"
    # A FAILED store must be disconnected before it is connected again (AWS).
    assert (
        error_code(kms.connect_custom_key_store, CustomKeyStoreId=store_id)
        == "CustomKeyStoreInvalidStateException"
    )
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert "ConnectionErrorCode" not in store_state(kms, store_id)
    kms.update_custom_key_store(CustomKeyStoreId=store_id, KeyStorePassword=PIN)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id)["ConnectionState"] == "CONNECTED"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)


def test_bad_input_gets_aws_errors_and_changes_nothing(server):
    kms = server.client()
    store_id = create_store(kms, "taken")
    before = stores(kms)

    def create(**overrides: Any) -> str:
        request = {
            "CustomKeyStoreName": "fresh",
            "CloudHsmClusterId": CLUSTER_B,
            "TrustAnchorCertificate": ANCHOR,
            "KeyStorePassword": PIN,
            **overrides,
        }
        return error_code(kms.create_custom_key_store, **request)

    assert create(CustomKeyStoreName="taken") == "CustomKeyStoreNameInUseException"
    assert create(CloudHsmClusterId=CLUSTER_UNCONFIGURED) == "CloudHsmClusterNotFoundException"
    assert create(CloudHsmClusterId=CLUSTER_A) == "CloudHsmClusterInUseException"
    assert create(CustomKeyStoreType="EXTERNAL_KEY_STORE") == "UnsupportedOperationException"
    assert create(XksProxyUriPath="/kms/xks/v1") == "ValidationException"
    assert (
        error_code(
            kms.create_custom_key_store,
            CustomKeyStoreName="fresh",
            CloudHsmClusterId=CLUSTER_B,
            TrustAnchorCertificate=ANCHOR,
        )
        == "ValidationException"
    )
    # An id with NUL is a missing store too (PostgreSQL once answered it 500; the fuzzer).
    for missing in ("cks-0123456789abcdef0", "cks-\x00"):
        for call in (
            kms.connect_custom_key_store,
            kms.disconnect_custom_key_store,
            kms.delete_custom_key_store,
        ):
            assert error_code(call, CustomKeyStoreId=missing) == "CustomKeyStoreNotFoundException"
        assert (
            error_code(
                kms.update_custom_key_store, CustomKeyStoreId=missing, NewCustomKeyStoreName="n"
            )
            == "CustomKeyStoreNotFoundException"
        )
    second = create_store(kms, "second", cluster=CLUSTER_B)
    assert (
        error_code(
            kms.update_custom_key_store, CustomKeyStoreId=second, NewCustomKeyStoreName="taken"
        )
        == "CustomKeyStoreNameInUseException"
    )
    assert (
        error_code(
            kms.update_custom_key_store, CustomKeyStoreId=second, CloudHsmClusterId=CLUSTER_A
        )
        == "CloudHsmClusterInUseException"
    )
    assert (
        error_code(
            kms.update_custom_key_store,
            CustomKeyStoreId=second,
            CloudHsmClusterId=CLUSTER_UNCONFIGURED,
        )
        == "CloudHsmClusterNotFoundException"
    )
    assert (
        error_code(kms.describe_custom_key_stores, CustomKeyStoreName="nope")
        == "CustomKeyStoreNotFoundException"
    )
    assert error_code(kms.describe_custom_key_stores, Marker="bogus") == "InvalidMarkerException"
    kms.delete_custom_key_store(CustomKeyStoreId=second)
    assert stores(kms) == before
    assert store_state(kms, store_id)["ConnectionState"] == "DISCONNECTED"


def test_describe_pages_with_limit_and_marker(server):
    kms = server.client()
    made = sorted([create_store(kms, "one"), create_store(kms, "two", cluster=CLUSTER_B)])
    first = kms.describe_custom_key_stores(Limit=1)
    assert first["Truncated"] is True
    second = kms.describe_custom_key_stores(Limit=1, Marker=first["NextMarker"])
    assert second["Truncated"] is False
    seen = [s["CustomKeyStoreId"] for s in first["CustomKeyStores"] + second["CustomKeyStores"]]
    assert seen == made


def test_a_caller_who_is_not_allowed_is_refused_and_changes_nothing(server):
    kms = server.client()
    store_id = create_store(kms, "guarded")
    user = server.create_user(ACCOUNT_ID, "no-stores")
    server.put_user_policy(
        user,
        "describe-only",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Action":"kms:DescribeCustomKeyStores","Resource":"*"}]}',
    )
    denied = server.client_for(user)
    assert len(stores(denied)) == 1
    assert (
        error_code(
            denied.create_custom_key_store,
            CustomKeyStoreName="mine",
            CloudHsmClusterId=CLUSTER_B,
            TrustAnchorCertificate=ANCHOR,
            KeyStorePassword=PIN,
        )
        == "AccessDeniedException"
    )
    for call in (
        denied.connect_custom_key_store,
        denied.disconnect_custom_key_store,
        denied.delete_custom_key_store,
    ):
        assert error_code(call, CustomKeyStoreId=store_id) == "AccessDeniedException"
    assert store_state(kms, store_id)["ConnectionState"] == "DISCONNECTED"
    assert [s["CustomKeyStoreName"] for s in stores(kms)] == ["guarded"]


def test_the_pin_is_nowhere_in_plaintext(server):
    kms = server.client()
    store_id = create_store(kms, "secret-pin")
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    kms.update_custom_key_store(CustomKeyStoreId=store_id, KeyStorePassword=PIN)
    # The trail has the calls, without the password.
    names = {r["eventName"] for r in records(server)}
    assert {"CreateCustomKeyStore", "ConnectCustomKeyStore", "UpdateCustomKeyStore"} <= names
    for record in records(server):
        assert PIN not in str(record)
    assert PIN.encode() not in _database_bytes(server)
    if server.database_url is None:
        assert PIN.encode() not in trail_path(server).read_bytes()
    assert PIN not in server.log()
