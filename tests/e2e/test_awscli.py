"""The AWS CLI, unchanged but for its endpoint URL, against a real server."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY


def _aws_executable() -> str:
    beside_python = Path(sys.executable).with_name("aws")
    found = str(beside_python) if beside_python.exists() else shutil.which("aws")
    if not found:
        pytest.skip("the AWS CLI is not installed (pip install awscli)")
    return found


def aws(server, *args: str, expect_failure: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    result = subprocess.run(
        [_aws_executable(), "--endpoint-url", server.endpoint, "--output", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if expect_failure:
        assert result.returncode != 0
        return {"stderr": result.stderr}
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_cli_create_encrypt_restart_decrypt(own_server, tmp_path):
    own_server.start()
    key = aws(own_server, "kms", "create-key", "--description", "from the cli")["KeyMetadata"]
    assert key["Description"] == "from the cli"
    plaintext = tmp_path / "plain.txt"
    plaintext.write_bytes(b"hello from the AWS CLI")
    encrypted = aws(
        own_server,
        "kms",
        "encrypt",
        "--key-id",
        key["KeyId"],
        "--plaintext",
        f"fileb://{plaintext}",
        "--encryption-context",
        "purpose=test",
    )
    blob_file = tmp_path / "blob"
    blob_file.write_bytes(base64.b64decode(encrypted["CiphertextBlob"]))

    own_server.restart()

    decrypted = aws(
        own_server,
        "kms",
        "decrypt",
        "--ciphertext-blob",
        f"fileb://{blob_file}",
        "--encryption-context",
        "purpose=test",
    )
    assert base64.b64decode(decrypted["Plaintext"]) == b"hello from the AWS CLI"
    assert decrypted["KeyId"] == key["Arn"]


def test_cli_aliases_data_keys_and_listing(server):
    key = aws(server, "kms", "create-key")["KeyMetadata"]
    alias = f"alias/cli-{key['KeyId'][:8]}"
    aws(server, "kms", "create-alias", "--alias-name", alias, "--target-key-id", key["KeyId"])
    described = aws(server, "kms", "describe-key", "--key-id", alias)["KeyMetadata"]
    assert described["KeyId"] == key["KeyId"]
    data_key = aws(server, "kms", "generate-data-key", "--key-id", alias, "--key-spec", "AES_128")
    assert len(base64.b64decode(data_key["Plaintext"])) == 16
    listed = aws(server, "kms", "list-keys")["Keys"]
    assert key["KeyId"] in {k["KeyId"] for k in listed}
    identity = aws(server, "sts", "get-caller-identity")
    assert identity["Account"] == "123456789012"


def test_cli_reports_aws_errors(server):
    failure = aws(server, "kms", "describe-key", "--key-id", "alias/missing", expect_failure=True)
    assert "NotFoundException" in failure["stderr"]
    assert "alias/missing is not found." in failure["stderr"]


def test_cli_rotates_lists_rotations_and_schedules_deletion(server):
    key = aws(server, "kms", "create-key")["KeyMetadata"]
    aws(
        server,
        "kms",
        "enable-key-rotation",
        "--key-id",
        key["KeyId"],
        "--rotation-period-in-days",
        "180",
    )
    status = aws(server, "kms", "get-key-rotation-status", "--key-id", key["KeyId"])
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 180)
    assert (
        aws(server, "kms", "rotate-key-on-demand", "--key-id", key["KeyId"])["KeyId"] == key["Arn"]
    )
    # The CLI pages through ListKeyRotations itself (--page-size 1: one entry per request).
    listed = aws(
        server,
        "kms",
        "list-key-rotations",
        "--key-id",
        key["KeyId"],
        "--include-key-material",
        "ALL_KEY_MATERIAL",
        "--page-size",
        "1",
    )["Rotations"]
    assert [r["KeyMaterialState"] for r in listed] == ["NON_CURRENT", "CURRENT"]
    scheduled = aws(
        server,
        "kms",
        "schedule-key-deletion",
        "--key-id",
        key["KeyId"],
        "--pending-window-in-days",
        "7",
    )
    assert (scheduled["KeyState"], scheduled["PendingWindowInDays"]) == ("PendingDeletion", 7)
    refused = aws(
        server,
        "kms",
        "schedule-key-deletion",
        "--key-id",
        key["KeyId"],
        "--pending-window-in-days",
        "3",
        expect_failure=True,
    )
    assert "PendingWindowInDays must be between 7 and 30" in refused["stderr"]
    assert (
        aws(server, "kms", "cancel-key-deletion", "--key-id", key["KeyId"])["KeyId"] == key["Arn"]
    )


def test_cli_signs_what_openssl_verifies_and_macs(server, tmp_path):
    """AWS's documented workflow for asymmetric keys: sign with the CLI, fetch the public key
    with the CLI, verify with OpenSSL."""
    key = aws(
        server, "kms", "create-key", "--key-spec", "ECC_NIST_P384", "--key-usage", "SIGN_VERIFY"
    )["KeyMetadata"]
    message = tmp_path / "message.txt"
    message.write_bytes(b"signed through the AWS CLI")
    signed = aws(
        server, "kms", "sign", "--key-id", key["KeyId"], "--message", f"fileb://{message}",
        "--message-type", "RAW", "--signing-algorithm", "ECDSA_SHA_384",
    )  # fmt: skip
    (tmp_path / "signature.der").write_bytes(base64.b64decode(signed["Signature"]))
    public = aws(server, "kms", "get-public-key", "--key-id", key["KeyId"])
    (tmp_path / "public.der").write_bytes(base64.b64decode(public["PublicKey"]))
    verified = subprocess.run(
        [
            "openssl", "dgst", "-sha384", "-verify", "public.der", "-keyform", "DER",
            "-signature", "signature.der", "message.txt",
        ],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert verified.returncode == 0 and "Verified OK" in verified.stdout, verified.stderr
    check = aws(
        server, "kms", "verify", "--key-id", key["KeyId"], "--message", f"fileb://{message}",
        "--signature", f"fileb://{tmp_path / 'signature.der'}",
        "--signing-algorithm", "ECDSA_SHA_384",
    )  # fmt: skip
    assert check["SignatureValid"] is True

    mac_key = aws(
        server, "kms", "create-key", "--key-spec", "HMAC_384",
        "--key-usage", "GENERATE_VERIFY_MAC",
    )["KeyMetadata"]  # fmt: skip
    mac = aws(
        server, "kms", "generate-mac", "--key-id", mac_key["KeyId"],
        "--message", f"fileb://{message}", "--mac-algorithm", "HMAC_SHA_384",
    )  # fmt: skip
    assert len(base64.b64decode(mac["Mac"])) == 48
    (tmp_path / "tampered.bin").write_bytes(b"\x00" * 48)
    refused = aws(
        server, "kms", "verify-mac", "--key-id", mac_key["KeyId"],
        "--message", f"fileb://{message}", "--mac-algorithm", "HMAC_SHA_384",
        "--mac", f"fileb://{tmp_path / 'tampered.bin'}", expect_failure=True,
    )  # fmt: skip
    assert "KMSInvalidMacException" in refused["stderr"]


def test_cli_gets_and_puts_a_key_policy_that_is_then_enforced(server, tmp_path):
    key = aws(server, "kms", "create-key")["KeyMetadata"]
    got = aws(server, "kms", "get-key-policy", "--key-id", key["KeyId"], "--policy-name", "default")
    assert json.loads(got["Policy"])["Statement"][0]["Sid"] == "Enable IAM User Permissions"
    root = key["Arn"].split(":")[4]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{root}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{root}:root"},
             "Action": "kms:GenerateDataKey", "Resource": "*"},
        ],
    }  # fmt: skip
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    aws(
        server, "kms", "put-key-policy", "--key-id", key["KeyId"], "--policy-name", "default",
        "--policy", f"file://{tmp_path / 'policy.json'}",
    )  # fmt: skip
    listed = aws(server, "kms", "list-key-policies", "--key-id", key["KeyId"])
    assert listed["PolicyNames"] == ["default"]
    refused = aws(
        server, "kms", "generate-data-key", "--key-id", key["KeyId"], "--key-spec", "AES_256",
        expect_failure=True,
    )  # fmt: skip
    assert "AccessDeniedException" in refused["stderr"]
    assert "with an explicit deny in a resource-based policy" in refused["stderr"]
