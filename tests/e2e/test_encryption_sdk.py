"""The AWS Encryption SDK (Python), unchanged, with openkms as its KMS."""

from __future__ import annotations

import os

import botocore.session
import pytest
from botocore.exceptions import ClientError

from tests.support import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, eventually, time_travel

aws_encryption_sdk = pytest.importorskip("aws_encryption_sdk")


def _provider(server, key_arns):
    session = botocore.session.Session()
    session.set_credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    session.set_config_variable("region", REGION)
    os.environ["AWS_ENDPOINT_URL_KMS"] = server.endpoint
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=key_arns, botocore_session=session
    )


@pytest.fixture
def endpoint_env():
    saved = os.environ.get("AWS_ENDPOINT_URL_KMS")
    yield
    if saved is None:
        os.environ.pop("AWS_ENDPOINT_URL_KMS", None)
    else:
        os.environ["AWS_ENDPOINT_URL_KMS"] = saved


def test_encryption_sdk_round_trip_with_two_keys(server, kms, endpoint_env):
    arns = [kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2)]
    client = aws_encryption_sdk.EncryptionSDKClient()
    plaintext = os.urandom(10_000)
    context = {"purpose": "encryption-sdk-test"}
    ciphertext, header = client.encrypt(
        source=plaintext, key_provider=_provider(server, arns), encryption_context=context
    )
    assert header.encryption_context["purpose"] == "encryption-sdk-test"
    assert len(header.encrypted_data_keys) == 2

    # Either key alone decrypts: the data key was encrypted under each.
    for arn in arns:
        decrypted, _ = client.decrypt(source=ciphertext, key_provider=_provider(server, [arn]))
        assert decrypted == plaintext

    kms.disable_key(KeyId=arns[0])
    decrypted, _ = client.decrypt(source=ciphertext, key_provider=_provider(server, arns))
    assert decrypted == plaintext
    kms.disable_key(KeyId=arns[1])
    with pytest.raises(aws_encryption_sdk.exceptions.DecryptKeyError):
        client.decrypt(source=ciphertext, key_provider=_provider(server, arns))


def test_encryption_sdk_messages_survive_rotation_and_die_with_the_key(server, kms, endpoint_env):
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    client = aws_encryption_sdk.EncryptionSDKClient()
    before, _ = client.encrypt(source=b"before rotation", key_provider=_provider(server, [arn]))
    kms.rotate_key_on_demand(KeyId=arn)
    after, _ = client.encrypt(source=b"after rotation", key_provider=_provider(server, [arn]))
    for message, expected in ((before, b"before rotation"), (after, b"after rotation")):
        decrypted, _ = client.decrypt(source=message, key_provider=_provider(server, [arn]))
        assert decrypted == expected

    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    with time_travel(7 * 86_400 + 60, server):

        def gone() -> None:
            with pytest.raises(aws_encryption_sdk.exceptions.DecryptKeyError):
                client.decrypt(source=before, key_provider=_provider(server, [arn]))
            with pytest.raises(ClientError) as refused:
                kms.describe_key(KeyId=arn)
            assert refused.value.response["Error"]["Code"] == "NotFoundException"

        eventually(gone)
