"""boto3 finds openkms through AWS_ENDPOINT_URL_KMS, with no code change at all."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import ACCESS_KEY_ID, SECRET_ACCESS_KEY

PROGRAM = """
import boto3
kms = boto3.client("kms")
key = kms.create_key(Description="env endpoint")["KeyMetadata"]
blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"env")["CiphertextBlob"]
assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"env"
print(key["Arn"])
"""


def test_boto3_uses_aws_endpoint_url_kms(server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ENDPOINT_URL_KMS": server.endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("arn:aws:kms:eu-central-1:123456789012:key/")
