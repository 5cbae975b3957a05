"""End to end: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext) and
GenerateRandom, driven with boto3 against a real openkms server."""

from __future__ import annotations

import os
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import ACCESS_KEY_ID, ACCOUNT_ID, CLIENT_CONFIG, REGION, SECRET_ACCESS_KEY

INCORRECT_KEY = "The key ID in the request does not identify a CMK that can perform this operation."
DRY_RUN = "The request would succeed if DryRun wasn't specified."
EITHER = "Please specify either number of bytes or key spec."
OTHER_REGION = "eu-west-1"


def unvalidated(server, region: str = REGION):  # noqa: ANN201 - a boto3 client
    """A client that sends what it is given: boto3 checks lengths and ranges itself."""
    return boto3.session.Session().client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=CLIENT_CONFIG.merge(Config(parameter_validation=False)),
    )


def error(call, /, **kwargs) -> dict:  # noqa: ANN001
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response


def expect(call, code: str, message: str | None = None, status: int = 400, /, **kwargs) -> dict:  # noqa: ANN001
    response = error(call, **kwargs)
    assert response["Error"]["Code"] == code, response
    if message is not None:
        assert response["Error"]["Message"] == message
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    return response


def expect_invalid_ciphertext(call, /, **kwargs) -> None:  # noqa: ANN001
    # AWS sends InvalidCiphertextException with no message at all.
    response = expect(call, "InvalidCiphertextException", "", **kwargs)
    assert "message" not in response


def key_arn(key_id: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


@pytest.fixture
def key(kms) -> dict:
    return kms.create_key(Description="crypto tests")["KeyMetadata"]


@pytest.fixture
def second_key(kms) -> dict:
    return kms.create_key(Description="crypto tests, another key")["KeyMetadata"]


@pytest.fixture
def alias(kms, key) -> str:
    name = f"alias/crypto-{uuid.uuid4().hex}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    return name


FORMS = ["key id", "key ARN", "alias name", "alias ARN"]


def named(form: str, key: dict, alias: str) -> str:
    return {
        "key id": key["KeyId"],
        "key ARN": key["Arn"],
        "alias name": alias,
        "alias ARN": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}",
    }[form]


# -- Encrypt and Decrypt ------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_encrypt_then_decrypt_without_key_id(kms, key, alias, form):
    plaintext = b"attack at dawn " + os.urandom(16)
    encrypted = kms.encrypt(KeyId=named(form, key, alias), Plaintext=plaintext)
    assert encrypted["KeyId"] == key["Arn"]
    assert encrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert plaintext not in encrypted["CiphertextBlob"]

    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
    assert decrypted["Plaintext"] == plaintext
    assert decrypted["KeyId"] == key["Arn"]
    assert decrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert decrypted["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    assert len(key["CurrentKeyMaterialId"]) == 64


@pytest.mark.parametrize("form", FORMS)
def test_decrypt_with_the_key_named_in_any_form(kms, key, alias, form):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    decrypted = kms.decrypt(
        CiphertextBlob=blob, KeyId=named(form, key, alias), EncryptionAlgorithm="SYMMETRIC_DEFAULT"
    )
    assert decrypted["Plaintext"] == b"secret"
    assert decrypted["KeyId"] == key["Arn"]


def test_each_encryption_is_fresh(kms, key):
    first = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    second = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    assert first != second
    assert kms.decrypt(CiphertextBlob=first)["Plaintext"] == b"same"
    assert kms.decrypt(CiphertextBlob=second)["Plaintext"] == b"same"


def test_plaintext_of_4096_bytes_round_trips_and_4097_is_refused(server, kms, key):
    largest = os.urandom(4096)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=largest)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == largest

    response = expect(
        unvalidated(server).encrypt,
        "ValidationException",
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096",
        KeyId=key["KeyId"],
        Plaintext=b"A" * 4097,
    )
    assert "AAAA" not in str(response)  # neither the bytes nor their base64 are echoed


def test_empty_plaintext_is_refused_without_echo(server, key):
    expect(
        unvalidated(server).encrypt,
        "ValidationException",
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        KeyId=key["KeyId"],
        Plaintext=b"",
    )


def test_unicode_and_empty_string_encryption_context_round_trips(kms, key):
    context = {"département": "Île-de-France ✓", "empty": "", "": "empty key", "nul": "a\x00b"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionContext=context)[
        "CiphertextBlob"
    ]
    reordered = dict(reversed(list(context.items())))
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=reordered)["Plaintext"] == b"p"


def test_encryption_context_must_match_exactly(kms, key):
    context = {"purpose": "backup", "tenant": "t-42"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionContext=context)[
        "CiphertextBlob"
    ]
    same = {"tenant": "t-42", "purpose": "backup"}
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=same)["Plaintext"] == b"p"
    for wrong in (
        None,
        {},
        {"purpose": "backup"},
        {"purpose": "backup", "tenant": "t-43"},
        {"purpose": "backup", "tenant": "t-42", "extra": ""},
        {"Purpose": "backup", "tenant": "t-42"},
        {"purpose": "backup", "tenant": "t-42 "},
    ):
        kwargs = {"CiphertextBlob": blob}
        if wrong is not None:
            kwargs["EncryptionContext"] = wrong
        expect_invalid_ciphertext(kms.decrypt, **kwargs)
        expect_invalid_ciphertext(kms.decrypt, KeyId=key["KeyId"], **kwargs)


@pytest.mark.parametrize(
    ("sealed_with", "opened_with"),
    [
        ({"ab": "c"}, {"a": "bc"}),
        ({"a": "bc"}, {"ab": "c"}),
        ({"a": "b", "c": "d"}, {"a": "b,c=d"}),
        ({"a": "b,c=d"}, {"a": "b", "c": "d"}),
        ({"a": "b"}, {"a=b": ""}),
        ({"k": "v\x00k2\x00v2"}, {"k": "v", "k2": "v2"}),
    ],
)
def test_encryption_context_binding_is_unambiguous(kms, key, sealed_with, opened_with):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionContext=sealed_with)[
        "CiphertextBlob"
    ]
    expect_invalid_ciphertext(kms.decrypt, CiphertextBlob=blob, EncryptionContext=opened_with)
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=sealed_with)["Plaintext"] == b"p"


def test_an_empty_encryption_context_is_the_same_as_none(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionContext={})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={})["Plaintext"] == b"p"


def test_decrypt_naming_another_key_is_incorrect_key(kms, key, second_key, alias):
    blob = kms.encrypt(KeyId=second_key["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    for other in (key["KeyId"], key["Arn"], alias):
        expect(
            kms.decrypt, "IncorrectKeyException", INCORRECT_KEY, CiphertextBlob=blob, KeyId=other
        )


def test_garbage_and_truncated_ciphertexts_are_invalid(server, kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"some plaintext")["CiphertextBlob"]
    candidates = [
        b"x",
        b"\x00" * 64,
        b"\x01" * 64,
        os.urandom(200),
        blob[:1],
        blob[:33],
        blob[:48],
        blob[:53],
        blob[:68],
        blob[:-1],
        blob + b"\x00",
        blob[:1] + os.urandom(len(blob) - 1),
    ]
    client = unvalidated(server)
    for candidate in candidates:
        expect_invalid_ciphertext(client.decrypt, CiphertextBlob=candidate)
    # Naming the key changes nothing for bytes that were never its ciphertext.
    expect_invalid_ciphertext(client.decrypt, CiphertextBlob=os.urandom(100), KeyId=key["KeyId"])
    expect_invalid_ciphertext(client.decrypt, CiphertextBlob=blob[:-1], KeyId=key["KeyId"])


def test_empty_and_oversized_ciphertexts_fail_validation(server, key):
    client = unvalidated(server)
    expect(
        client.decrypt,
        "ValidationException",
        "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        CiphertextBlob=b"",
    )
    expect(
        client.decrypt,
        "ValidationException",
        "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: "
        "Member must have length less than or equal to 6144",
        CiphertextBlob=b"x" * 6145,
    )
    expect(
        client.decrypt,
        "ValidationException",
        "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
        "constraint: Member must not be null",
        KeyId=key["KeyId"],
    )


def test_unknown_keys_and_aliases_are_not_found(kms):
    missing = str(uuid.uuid4())
    expect(
        kms.encrypt,
        "NotFoundException",
        f"Key '{key_arn(missing)}' does not exist",
        KeyId=missing,
        Plaintext=b"p",
    )
    expect(
        kms.generate_data_key,
        "NotFoundException",
        f"Key '{key_arn(missing)}' does not exist",
        KeyId=key_arn(missing),
        KeySpec="AES_256",
    )
    expect(
        kms.encrypt,
        "NotFoundException",
        f"Alias arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/no-such-alias is not found.",
        KeyId="alias/no-such-alias",
        Plaintext=b"p",
    )
    expect(
        kms.encrypt,
        "NotFoundException",
        "Invalid keyId 'not-a-key'",
        KeyId="not-a-key",
        Plaintext=b"p",
    )


# -- the key's state ----------------------------------------------------------------------


def test_a_disabled_key_refuses_all_cryptographic_use(kms, key, second_key, alias):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    other_blob = kms.encrypt(KeyId=second_key["KeyId"], Plaintext=b"q")["CiphertextBlob"]
    kms.disable_key(KeyId=key["KeyId"])
    disabled = f"{key['Arn']} is disabled."
    calls = [
        (kms.encrypt, {"KeyId": key["KeyId"], "Plaintext": b"p"}),
        (kms.encrypt, {"KeyId": alias, "Plaintext": b"p"}),
        (kms.decrypt, {"CiphertextBlob": blob}),
        (kms.decrypt, {"CiphertextBlob": blob, "KeyId": key["Arn"]}),
        (kms.generate_data_key, {"KeyId": alias, "KeySpec": "AES_256"}),
        (kms.generate_data_key_without_plaintext, {"KeyId": key["KeyId"], "NumberOfBytes": 8}),
        (kms.re_encrypt, {"CiphertextBlob": blob, "DestinationKeyId": second_key["KeyId"]}),
        (kms.re_encrypt, {"CiphertextBlob": other_blob, "DestinationKeyId": key["KeyId"]}),
        (kms.encrypt, {"KeyId": key["KeyId"], "Plaintext": b"p", "DryRun": True}),
    ]
    for call, kwargs in calls:
        expect(call, "DisabledException", disabled, **kwargs)
    # Asking for both a key spec and a number of bytes is wrong before the key is looked at.
    expect(
        kms.generate_data_key,
        "ValidationException",
        EITHER,
        KeyId=key["KeyId"],
        KeySpec="AES_256",
        NumberOfBytes=32,
    )

    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"
    assert kms.encrypt(KeyId=alias, Plaintext=b"p")["KeyId"] == key["Arn"]


# -- data keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size_argument", "length"),
    [
        ({"KeySpec": "AES_256"}, 32),
        ({"KeySpec": "AES_128"}, 16),
        ({"NumberOfBytes": 1}, 1),
        ({"NumberOfBytes": 64}, 64),
        ({"NumberOfBytes": 1024}, 1024),
    ],
)
def test_generate_data_key(kms, key, alias, size_argument, length):
    context = {"bucket": "photos"}
    data_key = kms.generate_data_key(KeyId=alias, EncryptionContext=context, **size_argument)
    assert set(data_key) == {
        "CiphertextBlob",
        "Plaintext",
        "KeyId",
        "KeyMaterialId",
        "ResponseMetadata",
    }
    assert len(data_key["Plaintext"]) == length
    assert data_key["KeyId"] == key["Arn"]
    assert data_key["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    assert data_key["Plaintext"] not in data_key["CiphertextBlob"] or length == 1

    decrypted = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=context)
    assert decrypted["Plaintext"] == data_key["Plaintext"]
    assert decrypted["KeyId"] == key["Arn"]
    expect_invalid_ciphertext(kms.decrypt, CiphertextBlob=data_key["CiphertextBlob"])


def test_a_data_key_is_a_working_aes_key(kms, key):
    data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    nonce = os.urandom(12)
    sealed = AESGCM(data_key["Plaintext"]).encrypt(nonce, b"bulk data", b"header")

    # Later, with only the encrypted data key kept beside the data:
    recovered = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
    assert AESGCM(recovered).decrypt(nonce, sealed, b"header") == b"bulk data"


def test_data_keys_are_fresh(kms, key):
    keys = {
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"] for _ in range(3)
    }
    assert len(keys) == 3


def test_generate_data_key_without_plaintext(kms, key, alias):
    context = {"purpose": "later"}
    for size_argument, length in (({"KeySpec": "AES_256"}, 32), ({"NumberOfBytes": 7}, 7)):
        response = kms.generate_data_key_without_plaintext(
            KeyId=alias, EncryptionContext=context, **size_argument
        )
        assert set(response) == {"CiphertextBlob", "KeyId", "KeyMaterialId", "ResponseMetadata"}
        assert response["KeyId"] == key["Arn"]
        assert response["KeyMaterialId"] == key["CurrentKeyMaterialId"]
        decrypted = kms.decrypt(
            CiphertextBlob=response["CiphertextBlob"], EncryptionContext=context
        )
        assert len(decrypted["Plaintext"]) == length


@pytest.mark.parametrize("operation", ["generate_data_key", "generate_data_key_without_plaintext"])
def test_data_key_size_needs_exactly_one_of_key_spec_and_number_of_bytes(kms, key, operation):
    call = getattr(kms, operation)
    expect(call, "ValidationException", EITHER, KeyId=key["KeyId"])
    expect(
        call, "ValidationException", EITHER, KeyId=key["KeyId"], KeySpec="AES_128", NumberOfBytes=16
    )
    # Before the key is even looked for.
    expect(call, "ValidationException", EITHER, KeyId=str(uuid.uuid4()))


@pytest.mark.parametrize("operation", ["generate_data_key", "generate_data_key_without_plaintext"])
def test_data_key_size_limits(server, key, operation):
    call = getattr(unvalidated(server), operation)
    for number, constraint in (
        (0, "greater than or equal to 1"),
        (1025, "less than or equal to 1024"),
        (-1, "greater than or equal to 1"),
    ):
        expect(
            call,
            "ValidationException",
            f"1 validation error detected: Value '{number}' at 'numberOfBytes' failed to satisfy "
            f"constraint: Member must have value {constraint}",
            KeyId=key["KeyId"],
            NumberOfBytes=number,
        )
    expect(
        call,
        "ValidationException",
        "1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy "
        "constraint: Member must satisfy enum value set: [AES_256, AES_128]",
        KeyId=key["KeyId"],
        KeySpec="AES_512",
    )


# -- GenerateRandom -----------------------------------------------------------------------


def test_generate_random(kms):
    for size in (1, 32, 1024):
        response = kms.generate_random(NumberOfBytes=size)
        assert len(response["Plaintext"]) == size
    first = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    second = kms.generate_random(NumberOfBytes=32)["Plaintext"]
    assert first != second
    assert len(set(kms.generate_random(NumberOfBytes=1024)["Plaintext"])) > 128


def test_generate_random_limits(server, kms):
    client = unvalidated(server)
    for number, constraint in (
        (0, "greater than or equal to 1"),
        (1025, "less than or equal to 1024"),
    ):
        expect(
            client.generate_random,
            "ValidationException",
            f"1 validation error detected: Value '{number}' at 'numberOfBytes' failed to satisfy "
            f"constraint: Member must have value {constraint}",
            NumberOfBytes=number,
        )
    expect(kms.generate_random, "ValidationException", "NumberOfBytes is required.")
    expect(
        kms.generate_random,
        "CustomKeyStoreNotFoundException",
        "Custom key store 'cks-1234567890abcdef0' does not exist.",
        NumberOfBytes=8,
        CustomKeyStoreId="cks-1234567890abcdef0",
    )


# -- ReEncrypt ----------------------------------------------------------------------------


def test_re_encrypt_to_another_key_and_context(kms, key, second_key):
    source_context = {"stage": "old"}
    destination_context = {"stage": "new"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"moving", EncryptionContext=source_context)[
        "CiphertextBlob"
    ]
    moved = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext=source_context,
        DestinationKeyId=second_key["Arn"],
        DestinationEncryptionContext=destination_context,
    )
    assert moved["SourceKeyId"] == key["Arn"]
    assert moved["KeyId"] == second_key["Arn"]
    assert moved["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert moved["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert moved["SourceKeyMaterialId"] == key["CurrentKeyMaterialId"]
    assert moved["DestinationKeyMaterialId"] == second_key["CurrentKeyMaterialId"]
    assert moved["CiphertextBlob"] != blob

    decrypted = kms.decrypt(
        CiphertextBlob=moved["CiphertextBlob"], EncryptionContext=destination_context
    )
    assert decrypted == {**decrypted, "Plaintext": b"moving", "KeyId": second_key["Arn"]}
    expect_invalid_ciphertext(
        kms.decrypt, CiphertextBlob=moved["CiphertextBlob"], EncryptionContext=source_context
    )
    expect(
        kms.decrypt,
        "IncorrectKeyException",
        INCORRECT_KEY,
        CiphertextBlob=moved["CiphertextBlob"],
        KeyId=key["KeyId"],
        EncryptionContext=destination_context,
    )


def test_re_encrypt_under_the_same_key_with_the_source_named(kms, key, alias):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same key")["CiphertextBlob"]
    again = kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=alias, DestinationKeyId=alias)
    assert again["SourceKeyId"] == again["KeyId"] == key["Arn"]
    assert again["CiphertextBlob"] != blob
    assert kms.decrypt(CiphertextBlob=again["CiphertextBlob"])["Plaintext"] == b"same key"


def test_re_encrypt_failures(kms, key, second_key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionContext={"a": "b"})[
        "CiphertextBlob"
    ]
    expect(
        kms.re_encrypt,
        "IncorrectKeyException",
        INCORRECT_KEY,
        CiphertextBlob=blob,
        SourceKeyId=second_key["KeyId"],
        SourceEncryptionContext={"a": "b"},
        DestinationKeyId=second_key["KeyId"],
    )
    expect_invalid_ciphertext(
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceEncryptionContext={"a": "c"},
        DestinationKeyId=second_key["KeyId"],
    )
    expect_invalid_ciphertext(
        kms.re_encrypt, CiphertextBlob=blob, DestinationKeyId=second_key["KeyId"]
    )
    expect_invalid_ciphertext(
        kms.re_encrypt, CiphertextBlob=os.urandom(80), DestinationKeyId=second_key["KeyId"]
    )
    missing = str(uuid.uuid4())
    expect(
        kms.re_encrypt,
        "NotFoundException",
        f"Key '{key_arn(missing)}' does not exist",
        CiphertextBlob=blob,
        SourceEncryptionContext={"a": "b"},
        DestinationKeyId=missing,
    )


# -- DryRun -------------------------------------------------------------------------------


def test_dry_run_answers_412_and_does_nothing(kms, key, second_key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    calls = [
        (kms.encrypt, {"KeyId": key["KeyId"], "Plaintext": b"p"}),
        (kms.decrypt, {"CiphertextBlob": blob}),
        (kms.decrypt, {"CiphertextBlob": blob, "KeyId": key["Arn"]}),
        (kms.generate_data_key, {"KeyId": key["KeyId"], "KeySpec": "AES_256"}),
        (kms.generate_data_key_without_plaintext, {"KeyId": key["KeyId"], "NumberOfBytes": 9}),
        (kms.re_encrypt, {"CiphertextBlob": blob, "DestinationKeyId": second_key["KeyId"]}),
    ]
    for call, kwargs in calls:
        response = expect(call, "DryRunOperationException", DRY_RUN, 412, DryRun=True, **kwargs)
        assert not {"Plaintext", "CiphertextBlob", "KeyId"} & set(response)
    # DryRun=False is an ordinary request.
    assert kms.decrypt(CiphertextBlob=blob, DryRun=False)["Plaintext"] == b"p"


def test_dry_run_reports_the_error_a_real_request_would_meet(kms, key, second_key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionContext={"a": "b"})[
        "CiphertextBlob"
    ]
    missing = str(uuid.uuid4())
    expect(kms.encrypt, "NotFoundException", None, KeyId=missing, Plaintext=b"p", DryRun=True)
    expect(
        kms.decrypt,
        "IncorrectKeyException",
        INCORRECT_KEY,
        CiphertextBlob=blob,
        KeyId=second_key["KeyId"],
        DryRun=True,
    )
    expect(kms.decrypt, "InvalidCiphertextException", None, CiphertextBlob=b"x" * 60, DryRun=True)
    expect(kms.generate_data_key, "ValidationException", EITHER, KeyId=key["KeyId"], DryRun=True)


def test_dry_run_ignoring_the_ciphertext_checks_only_the_key(kms, key, second_key):
    expect(
        kms.decrypt,
        "DryRunOperationException",
        DRY_RUN,
        412,
        KeyId=key["KeyId"],
        DryRun=True,
        DryRunModifiers=["IGNORE_CIPHERTEXT"],
    )
    expect(
        kms.decrypt,
        "DryRunOperationException",
        DRY_RUN,
        412,
        KeyId=key["KeyId"],
        CiphertextBlob=b"not a ciphertext at all",
        DryRun=True,
        DryRunModifiers=["IGNORE_CIPHERTEXT"],
    )
    expect(
        kms.re_encrypt,
        "DryRunOperationException",
        DRY_RUN,
        412,
        SourceKeyId=key["KeyId"],
        DestinationKeyId=second_key["KeyId"],
        DryRun=True,
        DryRunModifiers=["IGNORE_CIPHERTEXT"],
    )
    missing = str(uuid.uuid4())
    expect(
        kms.decrypt,
        "NotFoundException",
        f"Key '{key_arn(missing)}' does not exist",
        KeyId=missing,
        DryRun=True,
        DryRunModifiers=["IGNORE_CIPHERTEXT"],
    )
    kms.disable_key(KeyId=second_key["KeyId"])
    expect(
        kms.decrypt,
        "DisabledException",
        f"{second_key['Arn']} is disabled.",
        KeyId=second_key["KeyId"],
        DryRun=True,
        DryRunModifiers=["IGNORE_CIPHERTEXT"],
    )
    # Without DryRun the modifier changes nothing: the ciphertext is needed.
    expect_invalid_ciphertext(
        kms.decrypt,
        KeyId=key["KeyId"],
        CiphertextBlob=b"not a ciphertext at all",
        DryRunModifiers=["IGNORE_CIPHERTEXT"],
    )


# -- encryption algorithms ----------------------------------------------------------------


def test_only_symmetric_default_suits_a_symmetric_key(server, kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionAlgorithm="SYMMETRIC_DEFAULT")[
        "CiphertextBlob"
    ]
    for algorithm in ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "SM2PKE"):
        message = f"Algorithm {algorithm} is incompatible with key spec SYMMETRIC_DEFAULT."
        expect(
            kms.encrypt,
            "InvalidKeyUsageException",
            message,
            KeyId=key["KeyId"],
            Plaintext=b"p",
            EncryptionAlgorithm=algorithm,
        )
        expect(
            kms.decrypt,
            "InvalidKeyUsageException",
            message,
            CiphertextBlob=blob,
            EncryptionAlgorithm=algorithm,
        )
        expect(
            kms.re_encrypt,
            "InvalidKeyUsageException",
            message,
            CiphertextBlob=blob,
            DestinationKeyId=key["KeyId"],
            DestinationEncryptionAlgorithm=algorithm,
        )
    expect(
        unvalidated(server).encrypt,
        "ValidationException",
        "1 validation error detected: Value 'AES_GCM' at 'encryptionAlgorithm' failed to satisfy "
        "constraint: Member must satisfy enum value set: "
        "[SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]",
        KeyId=key["KeyId"],
        Plaintext=b"p",
        EncryptionAlgorithm="AES_GCM",
    )


# -- who may use a key --------------------------------------------------------------------


def test_another_account_cannot_use_the_key(server, kms, key, alias, other_account):
    other = server.client_for(other_account)
    other_id = other_account["AccountId"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")["CiphertextBlob"]

    def denied(action: str, resource: str = key["Arn"]) -> str:
        return (
            f"User: arn:aws:iam::{other_id}:root is not authorized to perform: {action} on "
            f"resource: {resource} because no resource-based policy allows the {action} action"
        )

    # By key id or alias name: looked for in the caller's own account, where it is not.
    expect(
        other.encrypt,
        "NotFoundException",
        f"Key '{key_arn(key['KeyId'], account=other_id)}' does not exist",
        KeyId=key["KeyId"],
        Plaintext=b"p",
    )
    expect(
        other.generate_data_key,
        "NotFoundException",
        f"Alias arn:aws:kms:{REGION}:{other_id}:{alias} is not found.",
        KeyId=alias,
        KeySpec="AES_256",
    )
    # By ARN: the key exists, and its policy does not admit the other account.
    expect(
        other.encrypt,
        "AccessDeniedException",
        denied("kms:Encrypt"),
        KeyId=key["Arn"],
        Plaintext=b"p",
    )
    expect(
        other.generate_data_key,
        "AccessDeniedException",
        denied("kms:GenerateDataKey"),
        KeyId=key["Arn"],
        KeySpec="AES_256",
    )
    expect(
        other.generate_data_key_without_plaintext,
        "AccessDeniedException",
        denied("kms:GenerateDataKeyWithoutPlaintext"),
        KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}",
        KeySpec="AES_256",
    )
    # The first account's ciphertext does not decrypt for the other account, with or
    # without the key named.
    expect(other.decrypt, "AccessDeniedException", denied("kms:Decrypt"), CiphertextBlob=blob)
    expect(
        other.decrypt,
        "AccessDeniedException",
        denied("kms:Decrypt"),
        CiphertextBlob=blob,
        KeyId=key["Arn"],
    )
    own = other.create_key()["KeyMetadata"]
    expect(
        other.decrypt,
        "IncorrectKeyException",
        INCORRECT_KEY,
        CiphertextBlob=blob,
        KeyId=own["KeyId"],
    )
    own_blob = other.encrypt(KeyId=own["KeyId"], Plaintext=b"theirs")["CiphertextBlob"]
    expect(
        other.re_encrypt,
        "AccessDeniedException",
        denied("kms:ReEncryptTo"),
        CiphertextBlob=own_blob,
        DestinationKeyId=key["Arn"],
    )
    expect(
        other.re_encrypt,
        "AccessDeniedException",
        denied("kms:ReEncryptFrom"),
        CiphertextBlob=blob,
        DestinationKeyId=own["KeyId"],
    )
    # ... nor does the other account's ciphertext for the first.
    expect(
        kms.decrypt,
        "AccessDeniedException",
        f"User: arn:aws:iam::{ACCOUNT_ID}:root is not authorized to perform: kms:Decrypt on "
        f"resource: {own['Arn']} because no resource-based policy allows the kms:Decrypt action",
        CiphertextBlob=own_blob,
    )
    assert other.decrypt(CiphertextBlob=own_blob)["Plaintext"] == b"theirs"


def test_a_key_of_another_region_is_refused(server, kms, key, alias):
    elsewhere = server.client(region=OTHER_REGION)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    expect(
        elsewhere.encrypt,
        "NotFoundException",
        f"Invalid arn {REGION}",
        KeyId=key["Arn"],
        Plaintext=b"p",
    )
    expect(
        elsewhere.encrypt,
        "NotFoundException",
        f"Key '{key_arn(key['KeyId'], region=OTHER_REGION)}' does not exist",
        KeyId=key["KeyId"],
        Plaintext=b"p",
    )
    expect(
        elsewhere.generate_data_key,
        "NotFoundException",
        f"Alias arn:aws:kms:{OTHER_REGION}:{ACCOUNT_ID}:{alias} is not found.",
        KeyId=alias,
        KeySpec="AES_256",
    )
    expect(
        elsewhere.decrypt,
        "NotFoundException",
        f"Invalid arn {REGION}",
        CiphertextBlob=blob,
        KeyId=key["Arn"],
    )
    # Without a key named, the ciphertext names a key this region does not have.
    expect_invalid_ciphertext(elsewhere.decrypt, CiphertextBlob=blob)
    # A key made in the other region is that region's alone.
    there = elsewhere.create_key()["KeyMetadata"]
    assert there["Arn"] == key_arn(there["KeyId"], region=OTHER_REGION)
    there_blob = elsewhere.encrypt(KeyId=there["KeyId"], Plaintext=b"q")["CiphertextBlob"]
    assert elsewhere.decrypt(CiphertextBlob=there_blob)["KeyId"] == there["Arn"]
    expect_invalid_ciphertext(kms.decrypt, CiphertextBlob=there_blob)


# -- properties ---------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY_SETTINGS
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_to_a_ciphertext_is_rejected(kms, key, position, flip):
    blob = _property_blob(kms, key)
    index = position % len(blob)
    tampered = bytearray(blob)
    tampered[index] ^= flip
    expect_invalid_ciphertext(
        kms.decrypt, CiphertextBlob=bytes(tampered), EncryptionContext=_CONTEXT
    )


_CONTEXT = {"purpose": "property", "tenant": "t-1"}
_blobs: dict[str, bytes] = {}


def _property_blob(kms, key) -> bytes:  # noqa: ANN001
    if key["KeyId"] not in _blobs:
        _blobs[key["KeyId"]] = kms.encrypt(
            KeyId=key["KeyId"], Plaintext=b"property plaintext", EncryptionContext=_CONTEXT
        )["CiphertextBlob"]
    return _blobs[key["KeyId"]]


_texts = st.text(max_size=8)
_changed_contexts = st.one_of(
    st.dictionaries(_texts, _texts, max_size=4),
    # Near misses: one pair dropped, altered or added.
    st.sampled_from(sorted(_CONTEXT)).map(lambda k: {n: v for n, v in _CONTEXT.items() if n != k}),
    st.tuples(st.sampled_from(sorted(_CONTEXT)), _texts).map(lambda kv: {**_CONTEXT, kv[0]: kv[1]}),
    st.tuples(_texts, _texts).map(lambda kv: {**_CONTEXT, kv[0]: kv[1]}),
).filter(lambda context: context != _CONTEXT)


@PROPERTY_SETTINGS
@given(context=_changed_contexts)
def test_any_change_to_the_encryption_context_is_rejected(kms, key, context):
    blob = _property_blob(kms, key)
    expect_invalid_ciphertext(kms.decrypt, CiphertextBlob=blob, EncryptionContext=context)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plaintext=st.binary(min_size=1, max_size=4096),
    context=st.dictionaries(st.text(max_size=16), st.text(max_size=16), max_size=5),
)
def test_anything_encrypted_decrypts_to_itself(kms, key, plaintext, context):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionContext=context)[
        "CiphertextBlob"
    ]
    decrypted = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert decrypted["Plaintext"] == plaintext
