"""Two openkms processes on one PostgreSQL database serve the same keys."""

from __future__ import annotations

import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support import OpenKmsServer


def _two_nodes(tmp_path, database_url_factory, cache_seconds: str):  # noqa: ANN001, ANN202
    url = database_url_factory("postgresql")  # skips without PostgreSQL
    root_key = tmp_path / "cluster-root.key"
    nodes = [
        OpenKmsServer(
            tmp_path / f"node{i}", url, ["--cache-seconds", cache_seconds], root_key_file=root_key
        )
        for i in (1, 2)
    ]
    for node in nodes:
        node.start()
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture
def cluster(tmp_path, database_url_factory):
    yield from _two_nodes(tmp_path, database_url_factory, "0.5")


def test_a_key_made_on_one_node_is_used_on_the_other(cluster):
    a, b = (node.client() for node in cluster)
    key_id = a.create_key(Description="shared")["KeyMetadata"]["KeyId"]
    blob = a.encrypt(KeyId=key_id, Plaintext=b"across nodes")["CiphertextBlob"]
    assert b.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across nodes"
    assert b.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "shared"

    alias = f"alias/cluster-{uuid.uuid4().hex[:8]}"
    b.create_alias(AliasName=alias, TargetKeyId=key_id)
    blob = a.encrypt(KeyId=alias, Plaintext=b"via alias")["CiphertextBlob"]
    assert b.decrypt(CiphertextBlob=blob, KeyId=alias)["Plaintext"] == b"via alias"
    with pytest.raises(ClientError) as error:
        a.create_alias(AliasName=alias, TargetKeyId=key_id)
    assert error.value.response["Error"]["Code"] == "AlreadyExistsException"


def test_disabling_on_one_node_reaches_the_other_within_the_cache_time(cluster):
    a, b = (node.client() for node in cluster)
    key_id = a.create_key()["KeyMetadata"]["KeyId"]
    b.encrypt(KeyId=key_id, Plaintext=b"warm the cache")
    a.disable_key(KeyId=key_id)
    deadline = time.monotonic() + 10
    while True:
        try:
            b.encrypt(KeyId=key_id, Plaintext=b"still enabled?")
        except ClientError as error:
            assert error.response["Error"]["Code"] == "DisabledException"
            break
        assert time.monotonic() < deadline, "node 2 never saw the key disabled"
        time.sleep(0.1)


def test_a_node_with_another_root_key_refuses_to_join(cluster, tmp_path):
    stranger = OpenKmsServer(tmp_path / "stranger", cluster[0].database_url)
    with pytest.raises(RuntimeError, match="root key does not match this database"):
        stranger.start(timeout=20)


@pytest.fixture
def long_cache_cluster(tmp_path, database_url_factory):
    """Nodes that would trust their caches for an hour: only the change feed can tell them."""
    yield from _two_nodes(tmp_path, database_url_factory, "3600")


@pytest.mark.parametrize("change", ["disable", "alias"])
def test_a_change_on_one_node_reaches_the_other_within_a_second(long_cache_cluster, change):
    a, b = (node.client() for node in long_cache_cluster)
    key_id = a.create_key()["KeyMetadata"]["KeyId"]
    other_id = a.create_key()["KeyMetadata"]["KeyId"]
    alias = f"alias/moves-{uuid.uuid4().hex[:8]}"
    a.create_alias(AliasName=alias, TargetKeyId=key_id)
    for _ in range(5):  # warm node 2's caches on every process
        b.encrypt(KeyId=alias, Plaintext=b"warm")
    if change == "disable":
        a.disable_key(KeyId=key_id)
    else:
        a.update_alias(AliasName=alias, TargetKeyId=other_id)
    changed_at = time.monotonic()
    while True:
        try:
            answer = b.encrypt(KeyId=alias, Plaintext=b"after the change")
        except ClientError as error:
            assert change == "disable"
            assert error.response["Error"]["Code"] == "DisabledException"
            break
        if change == "alias" and other_id in answer["KeyId"]:
            break
        assert time.monotonic() - changed_at < 1.0, "node 2 did not see the change within 1 s"
        time.sleep(0.02)
    assert time.monotonic() - changed_at < 1.0
