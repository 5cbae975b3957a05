"""The audit trail: one CloudTrail record per request, durable before the answer, no secrets,
found again with ``openkms audit lookup``."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import sqlite3
import time
import uuid
from typing import Any

import pyotp
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.audit_support import audit_command, by_request, records, request_id, trail_path
from tests.e2e.kms_management import client
from tests.e2e.test_import import wrap
from tests.support import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    REGION,
    SECRET_ACCESS_KEY,
    OpenKmsServer,
    time_travel,
)

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
KEYS = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _error(call: Any, **params: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(**params)
    return info.value


def _signed_post(server: OpenKmsServer, target: str, body: bytes) -> requests.Response:
    """A correctly signed KMS request with the body given, however malformed."""
    request = AWSRequest(
        method="POST",
        url=f"{server.endpoint}/",
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "kms", REGION).add_auth(request)
    return requests.post(request.url, data=body, headers=dict(request.headers), timeout=10)


def _session(server: OpenKmsServer, credentials: dict[str, Any], service: str = "kms") -> Any:
    import boto3

    from tests.support import CLIENT_CONFIG

    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    ).client(service, endpoint_url=server.endpoint, config=CLIENT_CONFIG)


def test_every_kind_of_request_has_one_cloudtrail_record(own_server):
    server = own_server.start()
    kms = server.client()
    created = kms.create_key(Description="audited")
    key = created["KeyMetadata"]
    encrypted = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"Dept": "A"})
    missing = _error(kms.describe_key, KeyId="alias/not-there")
    user = server.create_user(ACCOUNT_ID, _name("user"))
    denied = _error(server.client_for(user).encrypt, KeyId=key["Arn"], Plaintext=b"x")
    bad_secret = _error(server.client(secret_access_key="wrong").list_keys)
    malformed = _signed_post(server, "TrentService.Encrypt", b"{not json")
    assert malformed.status_code == 400
    identity = server.client("sts").get_caller_identity()
    server.stop()  # every answer above was durable before it left; stopping adds nothing

    found = by_request(server)
    assert all(len(events) == 1 for events in found.values())  # one each, never two

    create = found[request_id(created)][0]
    assert create["eventName"] == "CreateKey" and create["eventSource"] == "kms.amazonaws.com"
    assert create["eventVersion"] == "1.08" and create["readOnly"] is False
    assert create["requestParameters"] == {"description": "audited"}
    metadata = create["responseElements"]["keyMetadata"]
    assert metadata["keyId"] == key["KeyId"] and metadata["AWSAccountId"] == ACCOUNT_ID
    assert metadata["keyState"] == "Enabled" and metadata["arn"] == key["Arn"]
    assert create["userIdentity"] == {
        "type": "Root",
        "principalId": ACCOUNT_ID,
        "arn": ROOT,
        "accountId": ACCOUNT_ID,
        "accessKeyId": ACCESS_KEY_ID,
    }
    for member in ("eventType", "managementEvent", "recipientAccountId", "eventCategory"):
        assert create[member] == {"eventType": "AwsApiCall", "managementEvent": True,
                                  "recipientAccountId": ACCOUNT_ID,
                                  "eventCategory": "Management"}[member]  # fmt: skip
    uuid.UUID(create["eventID"])
    assert create["awsRegion"] == REGION and create["sourceIPAddress"] == "127.0.0.1"
    assert create["userAgent"].startswith("Boto3/")
    assert dt.datetime.strptime(create["eventTime"], "%Y-%m-%dT%H:%M:%SZ")

    encrypt = found[request_id(encrypted)][0]
    assert encrypt["requestParameters"] == {
        "keyId": key["KeyId"],
        "encryptionContext": {"Dept": "A"},
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }
    assert encrypt["responseElements"] is None and encrypt["readOnly"] is True
    assert encrypt["resources"] == [
        {"accountId": ACCOUNT_ID, "type": "AWS::KMS::Key", "ARN": key["Arn"]}
    ]
    assert "errorCode" not in encrypt

    not_found = found[request_id(missing)][0]
    assert not_found["errorCode"] == "NotFoundException"
    assert not_found["errorMessage"] == missing.response["Error"]["Message"]
    assert not_found["requestParameters"] == {"keyId": "alias/not-there"}

    refused = found[request_id(denied)][0]
    assert refused["errorCode"] == "AccessDeniedException"
    assert refused["userIdentity"]["type"] == "IAMUser"
    assert refused["userIdentity"]["userName"] == user["UserName"]
    assert refused["userIdentity"]["arn"] == user["Arn"]
    assert refused["userIdentity"]["accessKeyId"] == user["AccessKeyId"]

    unauthenticated = found[request_id(bad_secret)][0]
    assert unauthenticated["errorCode"] == bad_secret.response["Error"]["Code"]
    assert unauthenticated["userIdentity"]["type"] == "Unknown"

    garbled = found[malformed.headers["x-amzn-requestid"]][0]
    assert garbled["eventName"] == "Encrypt"
    assert garbled["errorCode"] == malformed.json()["__type"]

    sts = found[request_id(identity)][0]
    assert sts["eventSource"] == "sts.amazonaws.com" and sts["eventName"] == "GetCallerIdentity"


def test_role_sessions_and_session_tokens_name_their_issuer_and_mfa(server, kms):
    user = server.create_user(ACCOUNT_ID, _name("user"))
    role = json.loads(
        server.admin(
            "create-role",
            "--account-id",
            ACCOUNT_ID,
            "--role-name",
            _name("role"),
            "--assume-role-policy-document",
            _document(
                {"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"}
            ),
        )  # fmt: skip
    )
    assumed = server.client_for(user, "sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName="audited", DurationSeconds=900
    )
    session = assumed["Credentials"]
    call = _error(_session(server, session).list_keys)  # the role may do nothing: refused
    found = by_request(server)

    assume = found[request_id(assumed)][0]
    assert assume["eventSource"] == "sts.amazonaws.com" and assume["eventName"] == "AssumeRole"
    assert assume["requestParameters"] == {
        "roleArn": role["Arn"],
        "roleSessionName": "audited",
        "durationSeconds": 900,
    }
    assert assume["responseElements"]["credentials"]["accessKeyId"] == session["AccessKeyId"]
    assert "sessionToken" not in json.dumps(assume)

    used = found[request_id(call)][0]
    identity = used["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role['RoleName']}/audited"
    assert identity["principalId"] == f"{role['RoleId']}:audited"
    assert identity["accessKeyId"] == session["AccessKeyId"]
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert issuer == {
        "type": "Role",
        "principalId": role["RoleId"],
        "arn": role["Arn"],
        "accountId": ACCOUNT_ID,
        "userName": role["RoleName"],
    }
    attributes = identity["sessionContext"]["attributes"]
    assert attributes["mfaAuthenticated"] == "false"
    created = dt.datetime.strptime(attributes["creationDate"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(created.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def _secret_forms(secret: bytes | str) -> list[bytes]:
    raw = secret.encode() if isinstance(secret, str) else secret
    forms = [raw, base64.b64encode(raw), raw.hex().encode()]
    return [form for form in forms if len(form) >= 8]


def _trail_bytes(server: OpenKmsServer) -> bytes:
    """Every byte the trail holds: its SQLite files, or every row of its PostgreSQL tables."""
    if server.database_url is None:
        return b"".join(
            path.read_bytes()
            for path in server.data_dir.iterdir()
            if path.name.startswith("openkms-audit.db")
        )
    import psycopg

    base, _, query = server.database_url.partition("?")
    schema = query.rsplit("%3D", 1)[-1]
    chunks = []
    with psycopg.connect(base) as connection:
        for table in ("audit_events", "audit_digests", "audit_writers", "audit_signing_keys"):
            for row in connection.execute(f'SELECT * FROM "{schema}"."{table}"'):
                chunks += [
                    bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row
                ]
    return b"\x00".join(chunks)


def test_no_secret_reaches_any_event(own_server):
    """Drive every operation that carries a secret (in or out) and search the whole trail for
    each secret, raw, base64 and hex."""
    server = own_server.start()
    kms = server.client()
    secrets: list[bytes | str] = [SECRET_ACCESS_KEY]
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    plaintext = b"PLAINTEXT-" + os.urandom(16).hex().encode()
    secrets.append(plaintext)
    blob = kms.encrypt(KeyId=key, Plaintext=plaintext)["CiphertextBlob"]
    secrets.append(blob)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    secrets.append(kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=key)["CiphertextBlob"])
    data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    secrets += [data_key["Plaintext"], data_key["CiphertextBlob"]]
    secrets.append(
        kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=32)["CiphertextBlob"]
    )
    pair = kms.generate_data_key_pair(KeyId=key, KeyPairSpec="ECC_NIST_P256")
    secrets += [pair["PrivateKeyPlaintext"], pair["PrivateKeyCiphertextBlob"]]
    secrets.append(kms.generate_random(NumberOfBytes=32)["Plaintext"])
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    message = b"MESSAGE-" + os.urandom(16).hex().encode()
    signature = kms.sign(KeyId=signing["KeyId"], Message=message, SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"
    ]
    kms.verify(KeyId=signing["KeyId"], Message=message, Signature=signature,
               SigningAlgorithm="ECDSA_SHA_256")  # fmt: skip
    secrets += [message, signature]
    hmac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    mac = kms.generate_mac(KeyId=hmac_key["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_256")
    secrets.append(mac["Mac"])
    kms.verify_mac(KeyId=hmac_key["KeyId"], Message=message, Mac=mac["Mac"],
                   MacAlgorithm="HMAC_SHA_256")  # fmt: skip
    external = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    given = kms.get_parameters_for_import(
        KeyId=external, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    material = os.urandom(32)
    wrapped = wrap(given["PublicKey"], "RSAES_OAEP_SHA_256", material)
    kms.import_key_material(
        KeyId=external, ImportToken=given["ImportToken"], EncryptedKeyMaterial=wrapped,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )  # fmt: skip
    secrets += [material, wrapped, given["ImportToken"]]
    grant = kms.create_grant(KeyId=key, GranteePrincipal=ROOT, Operations=["Encrypt"])
    secrets.append(grant["GrantToken"])
    kms.retire_grant(GrantToken=grant["GrantToken"])

    user = server.create_user(ACCOUNT_ID, _name("user"))
    secrets.append(user["SecretAccessKey"])
    made = json.loads(server.admin(
        "create-virtual-mfa-device", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"],
        "--device-name", _name("phone"),
    ))  # fmt: skip
    serial, seed = made["SerialNumber"], made["Base32StringSeed"]
    step = int(time.time()) // 30
    totp = pyotp.TOTP(seed)
    server.admin(
        "enable-mfa-device", "--serial-number", serial,
        "--code1", totp.generate_otp(step - 2), "--code2", totp.generate_otp(step - 1),
    )  # fmt: skip
    code = totp.generate_otp(step)
    session = server.client_for(user, "sts").get_session_token(SerialNumber=serial, TokenCode=code)
    credentials = session["Credentials"]
    secrets += [seed, credentials["SecretAccessKey"], credentials["SessionToken"]]
    _error(_session(server, credentials).list_keys)  # a request signed with the session
    server.stop()

    trail = _trail_bytes(server)
    all_records = records(server)
    assert len(all_records) >= 20
    text = json.dumps(all_records).encode()
    for secret in secrets:
        for form in _secret_forms(secret):
            assert form not in trail, f"a secret ({len(form)} bytes) is in the trail"
            assert form not in text
    # The MFA code is six digits: too short to search bytes for; it is in no parameter.
    for record in all_records:
        assert code not in json.dumps(record.get("requestParameters"))


def test_lookup_by_key_event_principal_error_and_time(own_server):
    server = own_server.start()
    kms = server.client()
    first = kms.create_key()["KeyMetadata"]
    second = kms.create_key()["KeyMetadata"]
    kms.encrypt(KeyId=first["KeyId"], Plaintext=b"a")
    kms.disable_key(KeyId=second["KeyId"])
    refused = _error(kms.encrypt, KeyId=second["Arn"], Plaintext=b"b")
    with time_travel(7200, server):
        later = kms.encrypt(KeyId=first["Arn"], Plaintext=b"c")
    user = server.create_user(ACCOUNT_ID, _name("user"))
    _error(server.client_for(user).describe_key, KeyId=first["Arn"])

    on_first = records(server, "--key", first["KeyId"])
    assert sorted(r["eventName"] for r in on_first) == [
        "CreateKey", "DescribeKey", "Encrypt", "Encrypt"
    ]  # fmt: skip
    assert all(first["KeyId"] in json.dumps(r) for r in on_first)
    encrypts = records(server, "--event-name", "Encrypt")
    assert len(encrypts) == 3 and encrypts[0]["requestID"] == request_id(later)  # newest first
    errors = records(server, "--error-code", "*")
    assert {r["errorCode"] for r in errors} == {"DisabledException", "AccessDeniedException"}
    disabled = records(server, "--error-code", "DisabledException")
    assert [r["requestID"] for r in disabled] == [request_id(refused)]
    by_user = records(server, "--principal", user["Arn"])
    assert [r["eventName"] for r in by_user] == ["DescribeKey"]
    assert records(server, "--principal", user["AccessKeyId"]) == by_user
    now = dt.datetime.now(dt.UTC)
    window = records(
        server,
        "--start-time", (now + dt.timedelta(minutes=100)).isoformat(),
        "--end-time", (now + dt.timedelta(minutes=140)).isoformat(),
    )  # fmt: skip
    assert [r["requestID"] for r in window] == [request_id(later)]
    table = audit_command(server, "lookup", "--key", second["KeyId"]).stdout.splitlines()
    assert table[0].split()[:3] == ["eventTime", "eventName", "principal"]
    assert any("DisabledException" in line for line in table[1:])
    bad = audit_command(server, "lookup", "--start-time", "yesterday", check=False)
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr


def test_the_trail_is_beside_the_key_store_not_in_it(own_server):
    server = own_server.start()
    server.client().list_keys()
    server.stop()
    if server.database_url is None:
        with sqlite3.connect(trail_path(server)) as connection:
            (count,) = connection.execute("SELECT count(*) FROM audit_events").fetchone()
        assert count >= 1
        with sqlite3.connect(server.data_dir / "openkms.db") as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert not any(name.startswith("audit_") for name in tables)


def test_a_nul_in_a_request_value_neither_breaks_nor_stops_the_trail(server: Any) -> None:
    """A KeyId holding NUL is refused as any bad KeyId; its event is kept (PostgreSQL takes
    no NUL in text, so the look-up columns carry U+FFFD) and the next request is answered."""
    kms = client(server, validate=False)
    for _ in range(3):
        with pytest.raises(ClientError) as caught:
            kms.describe_key(KeyId="alias/nul\x00here")
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Keys" in kms.list_keys()
