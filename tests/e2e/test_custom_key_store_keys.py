"""Keys inside PKCS#11 custom key stores (Origin AWS_CLOUDHSM), through boto3 against a server
with two workers, on real SoftHSM2 tokens.

What openkms encrypts is opened by the token itself, from a separate process that logs in on
its own (``TokenInspector``): the ciphertext is AES-256-GCM under the key object in the
token, and the token refuses to reveal that key's value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.audit_support import records
from tests.e2e.cks_support import (
    CLUSTER_A,
    CLUSTER_B,
    PIN,
    TOKEN_A,
    cluster_tokens,
    create_store,
    error_code,
    store_state,
)
from tests.support import (
    ACCOUNT_ID,
    SOFTHSM_LIBRARY,
    OpenKmsServer,
    drop_postgres_schema,
    postgres_schema_url,
    postgres_url_or_skip,
    time_travel,
)

_HEADER_BYTES = 53  # format, key id, material version, 32-byte nonce (crypto/ciphertext_blob)
_IV = slice(21, 33)  # the nonce's first 12 bytes are the token's GCM IV
# The encoded encryption context follows the header in the associated data; an empty one is
# its count of pairs, 0, as four bytes (crypto/encryption_context).
_NO_CONTEXT = bytes(4)

_INSPECT = r"""
import json, sys
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import AttributeSensitive
from pkcs11.mechanisms import GCMParams

ask = json.loads(sys.argv[1])
token = pkcs11.lib(ask["library"]).get_token(token_label=ask["token"])
with token.open(user_pin=ask["pin"]) as session:
    found = {"labels": sorted(
        o[Attribute.LABEL] for o in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})
    )}
    if "label" in ask:
        key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=ask["label"])
        found["sensitive"] = key[Attribute.SENSITIVE]
        found["extractable"] = key[Attribute.EXTRACTABLE]
        found["bits"] = key[Attribute.VALUE_LEN] * 8
        try:
            key[Attribute.VALUE]
            found["value_readable"] = True
        except AttributeSensitive:
            found["value_readable"] = False
        if "sealed" in ask:
            params = GCMParams(bytes.fromhex(ask["iv"]), bytes.fromhex(ask["aad"]), 128)
            opened = key.decrypt(
                bytes.fromhex(ask["sealed"]), mechanism=Mechanism.AES_GCM, mechanism_param=params
            )
            found["plaintext"] = bytes(opened).hex()
print(json.dumps(found))
"""


class TokenInspector:
    """Looks into a token from a process of its own, logged in as the token's user."""

    def __init__(self, env: dict[str, str], token: str = TOKEN_A) -> None:
        self._env = env
        self._token = token

    def ask(self, **question: Any) -> dict[str, Any]:
        question = {"library": SOFTHSM_LIBRARY, "token": self._token, "pin": PIN, **question}
        done = subprocess.run(
            [sys.executable, "-c", _INSPECT, json.dumps(question)],
            env={**os.environ, "SOFTHSM2_CONF": self._env["SOFTHSM2_CONF"]},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return dict(json.loads(done.stdout))

    def labels(self) -> list[str]:
        return list(self.ask()["labels"])

    def open_blob(self, label: str, blob: bytes) -> dict[str, Any]:
        """Decrypt a ciphertext blob made without encryption context, in the token."""
        return self.ask(
            label=label,
            iv=blob[_IV].hex(),
            aad=(blob[:_HEADER_BYTES] + _NO_CONTEXT).hex(),
            sealed=blob[_HEADER_BYTES:].hex(),
        )


def _label(arn: str, version: int = 1) -> str:
    return f"openkms:{arn}#{version}"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    yield cluster_tokens(tmp_path_factory)


def _start(tmp_path: Any, tokens: dict[str, str], url: str | None = None) -> OpenKmsServer:
    return OpenKmsServer(
        tmp_path / "data", database_url=url, env=tokens, extra_args=["--workers", "2"]
    ).start()


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tokens, tmp_path) -> Iterator[OpenKmsServer]:
    url = None
    if request.param == "postgresql":
        url = postgres_schema_url(postgres_url_or_skip())
    started = _start(tmp_path, tokens, url)
    yield started
    started.stop()
    if url is not None:
        drop_postgres_schema(url)


@pytest.fixture
def sqlite_server(tokens, tmp_path) -> Iterator[OpenKmsServer]:
    started = _start(tmp_path, tokens)
    yield started
    started.stop()


def _connected_store(kms: Any, name: str, cluster: str = CLUSTER_A) -> str:
    store_id = create_store(kms, name, cluster=cluster)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id)["ConnectionState"] == "CONNECTED"
    return store_id


def _key_in(kms: Any, store_id: str) -> dict[str, Any]:
    return dict(
        kms.create_key(
            CustomKeyStoreId=store_id, Origin="AWS_CLOUDHSM", Description="in the token"
        )["KeyMetadata"]
    )


def _every_worker(server: OpenKmsServer, check: Any, rounds: int = 8) -> None:
    """Run ``check(kms)`` on fresh connections, so that both workers answer some of them."""
    for _ in range(rounds):
        check(server.client())


def test_a_key_in_a_token_works_end_to_end_and_the_token_agrees(server, tokens):
    kms = server.client()
    store_id = _connected_store(kms, "vault")
    key = _key_in(kms, store_id)
    key_id, arn = key["KeyId"], key["Arn"]
    assert key["Origin"] == "AWS_CLOUDHSM"
    assert key["CustomKeyStoreId"] == store_id
    assert key["CloudHsmClusterId"] == CLUSTER_A
    assert key["KeyState"] == "Enabled" and key["Enabled"] is True
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT" and key["KeyUsage"] == "ENCRYPT_DECRYPT"
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["CustomKeyStoreId"] == store_id
    assert described["CloudHsmClusterId"] == CLUSTER_A

    # The token made the key as sensitive and non-extractable, and will not give its value.
    inspector = TokenInspector(tokens)
    seen = inspector.ask(label=_label(arn))
    assert seen["sensitive"] is True and seen["extractable"] is False
    assert seen["value_readable"] is False
    assert seen["bits"] == 256

    # openkms's ciphertext is AES-GCM under the token's key: the token opens it on its own.
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"opened by the token")["CiphertextBlob"]
    assert bytes.fromhex(inspector.open_blob(_label(arn), blob)["plaintext"]) == (
        b"opened by the token"
    )

    context = {"purpose": "e2e"}
    sealed = kms.encrypt(KeyId=arn, Plaintext=b"secret", EncryptionContext=context)
    assert sealed["KeyId"] == arn and sealed["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    opened = kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)
    assert opened["Plaintext"] == b"secret" and opened["KeyId"] == arn
    assert (
        error_code(kms.decrypt, CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext={})
        == "InvalidCiphertextException"
    )
    tampered = bytearray(sealed["CiphertextBlob"])
    tampered[-1] ^= 1
    assert (
        error_code(kms.decrypt, CiphertextBlob=bytes(tampered), EncryptionContext=context)
        == "InvalidCiphertextException"
    )

    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert len(data_key["Plaintext"]) == 32
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    )
    hidden = kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=24)
    assert len(kms.decrypt(CiphertextBlob=hidden["CiphertextBlob"])["Plaintext"]) == 24

    # ReEncrypt between a token key and a software key, both ways.
    software = kms.create_key()["KeyMetadata"]["KeyId"]
    moved = kms.re_encrypt(
        CiphertextBlob=sealed["CiphertextBlob"],
        SourceEncryptionContext=context,
        DestinationKeyId=software,
    )
    back = kms.re_encrypt(CiphertextBlob=moved["CiphertextBlob"], DestinationKeyId=key_id)
    assert back["SourceKeyId"].endswith(software) and back["KeyId"] == arn
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"secret"

    random_bytes = {
        kms.generate_random(NumberOfBytes=32, CustomKeyStoreId=store_id)["Plaintext"]
        for _ in range(3)
    }
    assert len(random_bytes) == 3 and all(len(r) == 32 for r in random_bytes)

    # Keys in custom key stores do not rotate (AWS).
    for call in (kms.enable_key_rotation, kms.rotate_key_on_demand):
        assert error_code(call, KeyId=key_id) == "UnsupportedOperationException"

    # Disconnected, the key is Unavailable on every worker and nothing can use it.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)

    def refused(client: Any) -> None:
        metadata = client.describe_key(KeyId=key_id)["KeyMetadata"]
        assert metadata["KeyState"] == "Unavailable" and metadata["Enabled"] is False
        with pytest.raises(ClientError) as caught:
            client.encrypt(KeyId=key_id, Plaintext=b"x")
        assert caught.value.response["Error"]["Code"] == "KMSInvalidStateException"
        assert caught.value.response["Error"]["Message"] == f"{arn} is unavailable."
        assert (
            error_code(client.decrypt, CiphertextBlob=data_key["CiphertextBlob"])
            == "KMSInvalidStateException"
        )
        assert (
            error_code(client.generate_random, NumberOfBytes=8, CustomKeyStoreId=store_id)
            == "CustomKeyStoreInvalidStateException"
        )

    _every_worker(server, refused)
    assert (
        error_code(kms.create_key, CustomKeyStoreId=store_id, Origin="AWS_CLOUDHSM")
        == "CustomKeyStoreInvalidStateException"
    )
    # Managed while Unavailable: disabling it is kept for when the store is back.
    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Unavailable"
    # A store with keys cannot be deleted.
    assert (
        error_code(kms.delete_custom_key_store, CustomKeyStoreId=store_id)
        == "CustomKeyStoreHasCMKsException"
    )

    kms.connect_custom_key_store(CustomKeyStoreId=store_id)

    def disabled(client: Any) -> None:
        assert client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"

    _every_worker(server, disabled)
    kms.enable_key(KeyId=key_id)

    def usable_again(client: Any) -> None:
        # Ciphertexts from before the disconnect decrypt again, on every worker.
        assert (
            client.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
            == data_key["Plaintext"]
        )

    _every_worker(server, usable_again)


def test_deleting_a_key_destroys_its_object_in_the_token(sqlite_server, tokens):
    server = sqlite_server
    kms = server.client()
    store_id = _connected_store(kms, "short-lived", cluster=CLUSTER_B)
    inspector = TokenInspector(tokens, token="cks-b")
    key = _key_in(kms, store_id)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"doomed")["CiphertextBlob"]
    assert _label(key["Arn"]) in inspector.labels()

    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    # Pending deletion still counts as a key of the store.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert (
        error_code(kms.delete_custom_key_store, CustomKeyStoreId=store_id)
        == "CustomKeyStoreHasCMKsException"
    )
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    with time_travel(8 * 86400, server):
        server.wait_for_log(f"deleted key {key['KeyId']}")
    assert _label(key["Arn"]) not in inspector.labels()
    assert error_code(kms.decrypt, CiphertextBlob=blob) in (
        "NotFoundException",
        "InvalidCiphertextException",
    )

    # A key whose store is disconnected when its window ends is deleted all the same (and
    # its DeleteKey service event written); its object stays in the token, as AWS leaves it.
    orphan = _key_in(kms, store_id)
    kms.schedule_key_deletion(KeyId=orphan["KeyId"], PendingWindowInDays=7)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    with time_travel(8 * 86400, server):
        server.wait_for_log(f"deleted key {orphan['KeyId']}")
    assert error_code(kms.describe_key, KeyId=orphan["KeyId"]) == "NotFoundException"
    assert f"{_label(orphan['Arn'])} of custom key store {store_id} was left" in server.log()
    assert _label(orphan["Arn"]) in inspector.labels()
    deleted = [r for r in records(server) if r["eventName"] == "DeleteKey"]
    assert {r["resources"][0]["ARN"] for r in deleted} == {key["Arn"], orphan["Arn"]}

    kms.delete_custom_key_store(CustomKeyStoreId=store_id)


def test_bad_input_gets_aws_errors_and_makes_nothing(sqlite_server, tokens):
    server = sqlite_server
    kms = server.client()
    store_id = _connected_store(kms, "strict")
    inspector = TokenInspector(tokens)
    keys_before = kms.list_keys()["Keys"]
    objects_before = inspector.labels()

    def create(**kwargs: Any) -> str:
        return error_code(kms.create_key, **kwargs)

    in_store = {"CustomKeyStoreId": store_id, "Origin": "AWS_CLOUDHSM"}
    assert (
        create(**in_store, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
        == "UnsupportedOperationException"
    )
    assert (
        create(**in_store, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
        == "UnsupportedOperationException"
    )
    assert create(**in_store, MultiRegion=True) == "UnsupportedOperationException"
    assert create(CustomKeyStoreId=store_id) == "ValidationException"  # Origin AWS_KMS
    assert create(CustomKeyStoreId=store_id, Origin="EXTERNAL") == "ValidationException"
    assert create(Origin="AWS_CLOUDHSM") == "ValidationException"  # no store named
    missing = "cks-0123456789abcdef0"
    assert (
        create(CustomKeyStoreId=missing, Origin="AWS_CLOUDHSM") == "CustomKeyStoreNotFoundException"
    )
    assert (
        error_code(kms.generate_random, NumberOfBytes=8, CustomKeyStoreId=missing)
        == "CustomKeyStoreNotFoundException"
    )
    # A lockout policy is refused before anything is made in the token.
    lockout = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
        f'{{"AWS":"arn:aws:iam::{ACCOUNT_ID}:root"}},"Action":"kms:Encrypt","Resource":"*"}}]}}'
    )
    assert create(**in_store, Policy=lockout) == "MalformedPolicyDocumentException"
    # Another account cannot use this account's store.
    other = server.client_for(server.create_account("111122223333"))
    assert error_code(other.create_key, **in_store) == "CustomKeyStoreNotFoundException"
    assert kms.list_keys()["Keys"] == keys_before
    assert inspector.labels() == objects_before


def test_a_caller_who_is_not_allowed_is_refused_and_nothing_is_made(sqlite_server, tokens):
    server = sqlite_server
    kms = server.client()
    store_id = _connected_store(kms, "guarded")
    key = _key_in(kms, store_id)
    inspector = TokenInspector(tokens)
    objects_before = inspector.labels()
    user = server.create_user(ACCOUNT_ID, "no-token-use")
    server.put_user_policy(
        user,
        "describe-only",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Action":["kms:DescribeKey","kms:DescribeCustomKeyStores"],"Resource":"*"}]}',
    )
    denied = server.client_for(user)
    assert denied.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CustomKeyStoreId"] == store_id
    assert (
        error_code(denied.create_key, CustomKeyStoreId=store_id, Origin="AWS_CLOUDHSM")
        == "AccessDeniedException"
    )
    assert error_code(denied.encrypt, KeyId=key["KeyId"], Plaintext=b"x") == (
        "AccessDeniedException"
    )
    assert (
        error_code(denied.generate_random, NumberOfBytes=8, CustomKeyStoreId=store_id)
        == "AccessDeniedException"
    )
    assert inspector.labels() == objects_before
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key["KeyId"]]


def test_concurrent_requests_share_each_workers_sessions(sqlite_server, tokens):
    """More requests at once than a worker has sessions: each waits for one, none fails,
    and every answer is right."""
    server = sqlite_server
    kms = server.client()
    store_id = _connected_store(kms, "busy")
    key_id = _key_in(kms, store_id)["KeyId"]

    def round_trips(worker: int) -> int:
        client = server.client()
        for n in range(10):
            plaintext = f"{worker}:{n}".encode()
            blob = client.encrypt(KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
            assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
        return worker

    with ThreadPoolExecutor(24) as pool:
        assert sorted(pool.map(round_trips, range(24))) == list(range(24))


def test_the_clusters_can_come_from_the_config_file(tokens, tmp_path):
    """``cloudhsm-clusters`` in the TOML file (the --cloudhsm-clusters option) configures the
    tokens as the environment variable does."""
    config = tmp_path / "openkms.toml"
    config.write_text(f'cloudhsm-clusters = "{tokens["OPENKMS_CLOUDHSM_CLUSTERS"]}"\n')
    server = OpenKmsServer(
        tmp_path / "data",
        env={"SOFTHSM2_CONF": tokens["SOFTHSM2_CONF"]},
        extra_args=["--config", str(config)],
    ).start()
    try:
        kms = server.client()
        store_id = _connected_store(kms, "from-the-file", cluster=CLUSTER_B)
        assert kms.generate_random(NumberOfBytes=4, CustomKeyStoreId=store_id)["Plaintext"]
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    finally:
        server.stop()
