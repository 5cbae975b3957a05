"""The dispatcher's order of checks, seen from outside: authorisation, then key state, then
key usage / ciphertext binding / algorithm, then the dry run, then the operation. And what an
audit record is given about a request."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator

import pytest

from openkms.audit import AuditFacts
from openkms.errors import KmsError
from openkms.storage.changes import Change
from tests.inprocess.conftest import START, Kms, assert_error, set_state

BAD_ALGORITHM = "RSAES_OAEP_SHA_256"
ALGORITHM_MESSAGE = f"Algorithm {BAD_ALGORITHM} is incompatible with key spec SYMMETRIC_DEFAULT."
_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|BEGIN\s+IMMEDIATE)\b", re.IGNORECASE)
INCORRECT_KEY = "The key ID in the request does not identify a CMK that can perform this operation."


def _denied(other: Kms, action: str, arn: str) -> str:
    # AWS's words for a caller no policy admits.
    return (
        f"User: {other.principal.arn} is not authorized to perform: {action} on resource: "
        f"{arn} because no resource-based policy allows the {action} action"
    )


def _key_in(kms: Kms, state: str) -> dict:
    key = kms.create_key()
    if state != "Enabled":
        set_state(kms.runtime, key["KeyId"], state)
    return key


# Every test here makes its own keys and aliases, so they share one runtime (fast).
@pytest.fixture
def kms(module_kms: Kms) -> Kms:
    return module_kms


@pytest.fixture
def other_kms(module_other_kms: Kms) -> Kms:
    return module_other_kms


@pytest.fixture
def changes(kms: Kms) -> Iterator[list[Change]]:
    """Every change a committed transaction publishes while the test runs."""
    seen: list[Change] = []
    listening = [True]

    def record(published) -> None:  # noqa: ANN001
        if listening[0]:
            seen.extend(published)

    kms.runtime.services.db.add_change_listener(record)  # (listeners cannot be removed)
    yield seen
    listening[0] = False


@pytest.fixture
def statements(kms: Kms) -> Iterator[list[str]]:
    """Every SQL statement the runtime's engine executes while the test runs."""
    from sqlalchemy import event

    seen: list[str] = []
    engine = kms.runtime.services.db.engine

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


# -- (a) authorisation before state ---------------------------------------------------------


@pytest.mark.parametrize("state", ["Disabled", "PendingDeletion"])
def test_another_account_is_refused_before_the_state_is_checked(
    kms: Kms, other_kms: Kms, state: str
) -> None:
    key = _key_in(kms, state)
    with other_kms.refused("AccessDeniedException", _denied(other_kms, "kms:Encrypt", key["Arn"])):
        other_kms.call("Encrypt", KeyId=key["Arn"], Plaintext=b"x")
    # The owner, by contrast, is told the state.
    with kms.refused("DisabledException" if state == "Disabled" else "KMSInvalidStateException"):
        kms.call("Encrypt", KeyId=key["Arn"], Plaintext=b"x")


def test_another_account_decrypting_a_ciphertext_of_a_disabled_key_is_refused_first(
    kms: Kms, other_kms: Kms
) -> None:
    key = kms.create_key()
    blob = kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    set_state(kms.runtime, key["KeyId"], "Disabled")
    with other_kms.refused("AccessDeniedException", _denied(other_kms, "kms:Decrypt", key["Arn"])):
        other_kms.call("Decrypt", CiphertextBlob=blob)


# -- (b) state before usage, spec and algorithm ---------------------------------------------


def test_a_disabled_key_says_disabled_whatever_the_algorithm(kms: Kms) -> None:
    key = _key_in(kms, "Disabled")
    with kms.refused("DisabledException", f"{key['Arn']} is disabled."):
        kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm=BAD_ALGORITHM)


def test_a_key_pending_deletion_says_so_whatever_the_algorithm(kms: Kms) -> None:
    key = _key_in(kms, "PendingDeletion")
    with kms.refused("KMSInvalidStateException", f"{key['Arn']} is pending deletion."):
        kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm=BAD_ALGORITHM)


def test_an_enabled_key_refuses_an_algorithm_of_another_key_spec(kms: Kms) -> None:
    key = kms.create_key()
    with kms.refused("InvalidKeyUsageException", ALGORITHM_MESSAGE):
        kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm=BAD_ALGORITHM)


# -- (c) usage and algorithm before the dry run; a dry run changes nothing -------------------


def test_a_dry_run_with_a_bad_algorithm_reports_the_algorithm(kms: Kms) -> None:
    key = kms.create_key()
    with kms.refused("InvalidKeyUsageException", ALGORITHM_MESSAGE):
        kms.call(
            "Encrypt",
            KeyId=key["KeyId"],
            Plaintext=b"x",
            EncryptionAlgorithm=BAD_ALGORITHM,
            DryRun=True,
        )


def test_a_dry_run_of_a_disabled_key_reports_the_state(kms: Kms) -> None:
    key = _key_in(kms, "Disabled")
    with kms.refused("DisabledException", f"{key['Arn']} is disabled."):
        kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x", DryRun=True)


def test_a_dry_run_of_another_accounts_key_is_denied(kms: Kms, other_kms: Kms) -> None:
    key = kms.create_key()
    with other_kms.refused("AccessDeniedException", _denied(other_kms, "kms:Encrypt", key["Arn"])):
        other_kms.call("Encrypt", KeyId=key["Arn"], Plaintext=b"x", DryRun=True)


def test_a_good_dry_run_answers_dry_run_and_changes_nothing(
    kms: Kms, changes: list[Change], statements: list[str]
) -> None:
    key = kms.create_key()
    blob = kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    other = kms.create_key()
    before = kms.call("DescribeKey", KeyId=key["KeyId"])["KeyMetadata"]
    changes.clear()
    statements.clear()

    requests = [
        ("Encrypt", {"KeyId": key["KeyId"], "Plaintext": b"x"}),
        (
            "Encrypt",
            {"KeyId": key["KeyId"], "Plaintext": b"x", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"},
        ),
        ("Decrypt", {"CiphertextBlob": blob}),
        ("Decrypt", {"CiphertextBlob": blob, "KeyId": key["Arn"]}),
        ("ReEncrypt", {"CiphertextBlob": blob, "DestinationKeyId": other["KeyId"]}),
        ("GenerateDataKey", {"KeyId": key["KeyId"], "KeySpec": "AES_256"}),
        ("GenerateDataKeyWithoutPlaintext", {"KeyId": key["KeyId"], "NumberOfBytes": 64}),
    ]
    for operation, params in requests:
        with pytest.raises(KmsError) as caught:
            kms.call(operation, DryRun=True, **params)
        assert caught.value.code == "DryRunOperationException", operation
        assert caught.value.status == 412, operation

    assert changes == []  # no committed write
    # Nothing written, no write transaction begun (SQLite writers BEGIN IMMEDIATE).
    writes = [s for s in statements if _WRITE.match(s)]
    assert writes == []
    assert kms.call("DescribeKey", KeyId=key["KeyId"])["KeyMetadata"] == before


def test_a_dry_run_ignoring_the_ciphertext_checks_only_the_named_key(kms: Kms) -> None:
    key = kms.create_key()
    with pytest.raises(KmsError) as caught:
        kms.call(
            "Decrypt",
            KeyId=key["KeyId"],
            DryRun=True,
            DryRunModifiers=["IGNORE_CIPHERTEXT"],
        )
    assert caught.value.code == "DryRunOperationException"
    set_state(kms.runtime, key["KeyId"], "Disabled")
    with kms.refused("DisabledException", f"{key['Arn']} is disabled."):
        kms.call(
            "Decrypt",
            KeyId=key["KeyId"],
            DryRun=True,
            DryRunModifiers=["IGNORE_CIPHERTEXT"],
        )


# -- (d) Decrypt with a named key: state before the ciphertext is matched --------------------


def test_a_disabled_named_key_is_reported_before_a_garbage_ciphertext(kms: Kms) -> None:
    key = _key_in(kms, "Disabled")
    with kms.refused("DisabledException", f"{key['Arn']} is disabled."):
        kms.call("Decrypt", KeyId=key["KeyId"], CiphertextBlob=os.urandom(80))


def test_an_enabled_named_key_then_finds_the_garbage(kms: Kms) -> None:
    key = kms.create_key()
    with kms.refused("InvalidCiphertextException"):
        kms.call("Decrypt", KeyId=key["KeyId"], CiphertextBlob=os.urandom(80))


def test_an_enabled_named_key_refuses_another_keys_ciphertext(kms: Kms) -> None:
    key, other = kms.create_key(), kms.create_key()
    blob = kms.call("Encrypt", KeyId=other["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    with kms.refused("IncorrectKeyException", INCORRECT_KEY):
        kms.call("Decrypt", KeyId=key["KeyId"], CiphertextBlob=blob)
    # Named by its ARN or alias, the right key decrypts it.
    kms.call("CreateAlias", AliasName="alias/right", TargetKeyId=other["KeyId"])
    for name in (other["Arn"], "alias/right"):
        assert kms.call("Decrypt", KeyId=name, CiphertextBlob=blob)["Plaintext"] == b"x"


def test_re_encrypt_with_a_named_source_key_binds_the_ciphertext_after_the_state(
    kms: Kms,
) -> None:
    source, other, destination = kms.create_key(), kms.create_key(), kms.create_key()
    blob = kms.call("Encrypt", KeyId=other["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    params = {"CiphertextBlob": blob, "SourceKeyId": source["KeyId"]}
    with kms.refused("IncorrectKeyException", INCORRECT_KEY):
        kms.call("ReEncrypt", DestinationKeyId=destination["KeyId"], **params)
    set_state(kms.runtime, source["KeyId"], "Disabled")
    with kms.refused("DisabledException", f"{source['Arn']} is disabled."):
        kms.call("ReEncrypt", DestinationKeyId=destination["KeyId"], **params)


# -- (e) another account learns nothing about a key -----------------------------------------

STATES = [
    "Enabled",
    "Disabled",
    "PendingDeletion",
    "PendingReplicaDeletion",
    "PendingImport",
    "Unavailable",
    "Creating",
    "Updating",
]
# (operation, action, request) for a key ARN.
CROSS_ACCOUNT = [
    ("Encrypt", "kms:Encrypt", lambda arn: {"KeyId": arn, "Plaintext": b"x"}),
    ("DescribeKey", "kms:DescribeKey", lambda arn: {"KeyId": arn}),
    ("DisableKey", "kms:DisableKey", lambda arn: {"KeyId": arn}),
    ("GenerateDataKey", "kms:GenerateDataKey", lambda arn: {"KeyId": arn, "NumberOfBytes": 32}),
    ("TagResource", "kms:TagResource", lambda arn: {"KeyId": arn, "Tags": []}),
]


@pytest.mark.parametrize(("operation", "action", "request_for"), CROSS_ACCOUNT)
def test_another_account_gets_one_answer_whatever_the_key_state(
    kms: Kms, other_kms: Kms, operation: str, action: str, request_for
) -> None:  # noqa: ANN001
    answers = set()
    for state in STATES:
        key = _key_in(kms, state)
        error = other_kms.error(operation, **request_for(key["Arn"]))
        assert_error(error, "AccessDeniedException", _denied(other_kms, action, key["Arn"]))
        answers.add((error.code, error.status, error.message.replace(key["Arn"], "<arn>")))
        assert kms.key_state(key["KeyId"]) == state  # and nothing was done to the key
    assert len(answers) == 1, answers


# -- (f) audit facts ------------------------------------------------------------------------


def _facts() -> AuditFacts:
    return AuditFacts("req-1", "kms", START)


def test_audit_facts_carry_the_declared_parameters_and_never_the_plaintext(kms: Kms) -> None:
    key = kms.create_key()
    secret = b"attack at dawn, the plaintext"
    facts = _facts()
    kms.call(
        "Encrypt",
        facts=facts,
        KeyId=key["KeyId"],
        Plaintext=secret,
        EncryptionContext={"purpose": "audit"},
        EncryptionAlgorithm="SYMMETRIC_DEFAULT",
    )
    assert facts.operation == "Encrypt"
    assert facts.principal == kms.principal
    assert facts.region == "us-east-1"
    assert facts.read_only is True
    assert facts.resources == [("key", key["Arn"])]
    # What CloudTrail records for Encrypt: the key as named, the context, the algorithm.
    assert facts.parameters == {
        "KeyId": key["KeyId"],
        "EncryptionContext": {"purpose": "audit"},
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }
    text = repr(facts)
    for shape in (secret, base64.b64encode(secret)):
        assert shape.decode() not in text


def test_audit_facts_of_a_refused_request_name_the_key_and_its_parameters(kms: Kms) -> None:
    key = _key_in(kms, "Disabled")
    kms.call("CreateAlias", AliasName="alias/audited", TargetKeyId=key["KeyId"])
    facts = _facts()
    with pytest.raises(KmsError):
        kms.call("Encrypt", facts=facts, KeyId="alias/audited", Plaintext=b"secret!")
    assert facts.operation == "Encrypt"
    assert facts.resources == [("key", key["Arn"])]  # the key the alias named
    assert facts.parameters == {"KeyId": "alias/audited"}


def test_audit_facts_of_re_encrypt_name_both_keys_and_no_ciphertext(kms: Kms) -> None:
    source, destination = kms.create_key(), kms.create_key()
    blob = kms.call("Encrypt", KeyId=source["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    facts = _facts()
    kms.call("ReEncrypt", facts=facts, CiphertextBlob=blob, DestinationKeyId=destination["Arn"])
    assert sorted(facts.resources) == sorted(
        [("source", source["Arn"]), ("destination", destination["Arn"])]
    )
    assert facts.parameters == {"DestinationKeyId": destination["Arn"]}
    assert "CiphertextBlob" not in facts.parameters


def test_audit_facts_of_generate_data_key_carry_no_key_material(kms: Kms) -> None:
    key = kms.create_key()
    facts = _facts()
    result = kms.call("GenerateDataKey", facts=facts, KeyId=key["KeyId"], NumberOfBytes=32)
    assert facts.parameters == {"KeyId": key["KeyId"], "NumberOfBytes": 32}
    text = repr(facts)
    for value in (result["Plaintext"], result["CiphertextBlob"]):
        assert base64.b64encode(value).decode() not in text
        assert repr(value) not in text
