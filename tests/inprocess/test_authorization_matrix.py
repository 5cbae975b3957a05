"""The authorisation matrix: every operation on a key (the key-state table's list, each with a
request that succeeds), asked by an IAM user of the key's account, by a role session of the
key's account and by another account.

For the user, under the default key policy (which delegates to the account): refused
without an identity policy ("no identity-based policy allows"), done with one that allows,
refused again when it also has an explicit Deny ("… in an identity-based policy"). For
another account: refused while the key policy does not share the key, and, once it does,
done for the operations AWS lets other accounts use and refused for every other. For a role
session (made by STS AssumeRole, opened from its session token as the authenticator opens
one): as the user through its role's identity policy, and also allowed by a key policy naming
the role's ARN, and refused by an explicit Deny there ("… in a resource-based policy").
"""

from __future__ import annotations

import json
import uuid

import pytest

from openkms.errors import KmsError
from openkms.iam.principal import Principal
from openkms.iam.roles import create_role, put_role_policy
from tests.inprocess.conftest import (
    ACCOUNT_ID,
    OTHER_ACCOUNT_ID,
    REGION,
    Kms,
    iam_user,
    set_state,
)
from tests.inprocess.test_key_state_table import (
    _COLUMN,
    EXPECTED,
    OK,
    OPERATIONS,
    STATES,
    Subject,
)

ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
    }
)
DENY_TOO = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "kms:*", "Resource": "*"},
        ],
    }
)
# AWS: what another account can do with a key its policy shares.
CROSS_ACCOUNT = {
    "DescribeKey",
    "Encrypt",
    "Decrypt",
    "ReEncrypt (source)",
    "ReEncrypt (destination)",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GetKeyRotationStatus",
    "GetPublicKey",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
    "CreateGrant",
    "ListGrants",
    "RetireGrant",
    "RevokeGrant",
}
# Operations whose request names the key by id (so another account cannot even find it) or
# that also need a resource of the caller's own (an alias, a second key of its own):
# they are tested for the user only.
NOT_BY_ARN = {
    "CreateAlias (target)",
    "UpdateAlias (new target)",
    "UpdateAlias (old target)",
    "DeleteAlias",
    "ListAliases (KeyId filter)",
    "ReEncrypt (source)",
    "ReEncrypt (destination)",
    "Decrypt",
}


def _subject(root: Kms, operation: str) -> Subject:
    """The key-state table's subject, in the first state where the operation succeeds
    (Enabled, but for CancelKeyDeletion)."""
    op = OPERATIONS[operation]
    state = next(s for s in STATES if EXPECTED[operation][_COLUMN[s]] == OK)
    key = root.create_key(**op.key)
    subject = Subject(root, key["KeyId"], key["Arn"], state)
    op.prepare(subject)
    if state != "Enabled":
        set_state(root.runtime, subject.key_id, state)
    return subject


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_user_is_decided_by_its_identity_policy(module_kms: Kms, operation: str) -> None:
    op = OPERATIONS[operation]
    for policy, expected in (
        (None, "no identity-based policy allows"),
        (DENY_TOO, "with an explicit deny in an identity-based policy"),
    ):
        subject = _subject(module_kms, operation)
        subject.kms = iam_user(module_kms, policy)
        with pytest.raises(KmsError) as caught:
            op.act(subject)
        assert caught.value.code == "AccessDeniedException", caught.value.message
        assert caught.value.message is not None and expected in caught.value.message
        assert caught.value.message.startswith(f"User: {subject.kms.principal.arn} ")
        subject.kms = module_kms
        op.untouched(subject)
    subject = _subject(module_kms, operation)
    subject.kms = iam_user(module_kms, ALLOW_ALL)
    op.done(subject, op.act(subject))


@pytest.mark.parametrize("operation", sorted(set(OPERATIONS) - NOT_BY_ARN))
def test_another_account_is_decided_by_the_key_policy_and_aws_cross_account_list(
    module_kms: Kms, operation: str
) -> None:
    op = OPERATIONS[operation]
    other = Kms(
        module_kms.runtime,
        Principal(
            OTHER_ACCOUNT_ID, f"arn:aws:iam::{OTHER_ACCOUNT_ID}:root", OTHER_ACCOUNT_ID, "OTHERKEY"
        ),
    )
    subject = _subject(module_kms, operation)
    by_arn = Subject(other, subject.arn, subject.arn, subject.state, subject.extra)
    with pytest.raises(KmsError) as caught:
        op.act(by_arn)
    assert caught.value.code == "AccessDeniedException"
    assert "because no resource-based policy allows" in (caught.value.message or "")
    shared = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": OTHER_ACCOUNT_ID},
                    "Action": "kms:*",
                    "Resource": "*",
                },
            ],
        }
    )
    module_kms.call("PutKeyPolicy", KeyId=subject.key_id, Policy=shared)
    if operation in CROSS_ACCOUNT:
        op.done(subject, op.act(by_arn))
        return
    with pytest.raises(KmsError) as caught:
        op.act(by_arn)
    assert caught.value.code == "AccessDeniedException", operation
    op.untouched(subject)


ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
# A role allowed by key policies alone still needs its identity policy for the resources a
# key policy cannot speak for: aliases (and listing them).
ALIASES_ONLY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "kms:*",
                "Resource": f"arn:aws:kms:*:{ACCOUNT_ID}:alias/*",
            },
            {"Effect": "Allow", "Action": "kms:ListAliases", "Resource": "*"},
        ],
    }
)


def _role_session(root: Kms, policy: str | None) -> tuple[Kms, str]:
    """A session of a new role of the key's account (with ``policy`` as its one inline
    policy), assumed by a user its trust policy names, as boto3 would get it from STS; and
    the role's ARN."""
    services = root.runtime.services
    assumer = iam_user(root)
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": assumer.principal.arn},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    name = f"matrix-{uuid.uuid4().hex[:10]}"
    role = create_role(services.db, services.clock, ACCOUNT_ID, name, trust)
    if policy is not None:
        put_role_policy(services.db, ACCOUNT_ID, name, "p", policy)
    sts = root.runtime.sts
    assert sts is not None
    issued = sts.assume_role(
        assumer.principal, {"RoleArn": role.arn, "RoleSessionName": "matrix"}, REGION
    )
    opened = root.runtime.authenticator.session_tokens.open(
        issued.session_token, issued.access_key_id
    )
    assert opened is not None
    assert opened.principal.arn == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{name}/matrix"
    return Kms(root.runtime, opened.principal), role.arn


def _name_role_in_key_policies(root: Kms, subject: Subject, role: str, deny: bool) -> None:
    """Key policies naming the role: on the key under test (with a Deny too if ``deny``) and
    on every other key the operation uses."""
    admin = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    allow = {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "kms:*", "Resource": "*"}
    extra_keys = [v["KeyId"] for v in subject.extra.values() if isinstance(v, dict) and "Arn" in v]
    for key_id in (subject.key_id, *extra_keys):
        statements = [admin, allow]
        if deny and key_id == subject.key_id:
            statements.append({**allow, "Effect": "Deny"})
        policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
        root.call("PutKeyPolicy", KeyId=key_id, Policy=policy)


def _refused(subject: Subject, operation: str, expected: str) -> None:
    op = OPERATIONS[operation]
    caller = subject.kms
    with pytest.raises(KmsError) as caught:
        op.act(subject)
    assert caught.value.code == "AccessDeniedException", caught.value.message
    message = caught.value.message or ""
    assert expected in message, message
    # A refusal names the session, not its role (AWS).
    assert message.startswith(f"User: {caller.principal.arn} "), message


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_role_session_is_decided_by_its_role_s_policies_and_the_key_policy(
    module_kms: Kms, operation: str
) -> None:
    op = OPERATIONS[operation]
    # Refused: no policy allows (the default key policy delegates, the role has none), or the
    # role's identity policy denies.
    for policy, expected in (
        (None, "no identity-based policy allows"),
        (DENY_TOO, "with an explicit deny in an identity-based policy"),
    ):
        subject = _subject(module_kms, operation)
        subject.kms, _ = _role_session(module_kms, policy)
        _refused(subject, operation, expected)
        subject.kms = module_kms
        op.untouched(subject)
    # Refused: the key policy names the role in a Deny (beside an Allow).
    subject = _subject(module_kms, operation)
    session, role = _role_session(module_kms, ALIASES_ONLY)
    _name_role_in_key_policies(module_kms, subject, role, deny=True)
    subject.kms = session
    _refused(subject, operation, "with an explicit deny in a resource-based policy")
    subject.kms = module_kms
    op.untouched(subject)
    # Allowed: by the role's identity policy through the default key policy's delegation.
    subject = _subject(module_kms, operation)
    subject.kms, _ = _role_session(module_kms, ALLOW_ALL)
    op.done(subject, op.act(subject))
    # Allowed: by a key policy naming the role's ARN (no identity policy for the key).
    subject = _subject(module_kms, operation)
    session, role = _role_session(module_kms, ALIASES_ONLY)
    _name_role_in_key_policies(module_kms, subject, role, deny=False)
    subject.kms = session
    op.done(subject, op.act(subject))
